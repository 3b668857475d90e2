/**
 * Pages of a letter: A4, generous margins, a running head with the organisation's name, a footer
 * with the page number, and a cursor that moves down the page and starts a new one when text
 * reaches the bottom margin. Text is wrapped with the fonts' own widths (faces.ts).
 *
 * Untrusted input: the text drawn (passed through text.ts first). Secrets: none.
 */
import { deflateSync } from 'node:zlib';
import { PageSizes, rgb, type PDFDocument, type PDFFont, type PDFPage, type RGB } from 'pdf-lib';
import type { Faces } from './faces.js';
import { textLines, wrapLine } from './text.js';

export const PAGE = { width: PageSizes.A4[0], height: PageSizes.A4[1], margin: 62, top: 78, bottom: 70 };
export const CONTENT_WIDTH = PAGE.width - 2 * PAGE.margin;

export const COLOURS = {
  accent: rgb(0.16, 0.31, 0.5),
  text: rgb(0.13, 0.13, 0.15),
  muted: rgb(0.42, 0.44, 0.48),
  rule: rgb(0.8, 0.82, 0.86),
  white: rgb(1, 1, 1),
};

export interface TextStyle {
  size: number;
  bold?: boolean;
  colour?: RGB;
  /** Line height as a multiple of the size. */
  leading?: number;
}

/** A number as PDF content writes it: at most two decimals, no exponent, no trailing zeros. */
const num = (n: number) => String(Math.round(n * 100) / 100);

export const BODY: TextStyle = { size: 10, leading: 1.42 };

export class Writer {
  page!: PDFPage;
  /** Baseline of the next line; moves down. */
  y = 0;
  /** Left edge of text, moves right for forwarded messages. */
  indent = 0;
  /** What the running head names on pages begun from now on ("Message", "Attachments"). */
  section = '';
  /** Pages that get the running head and footer (not the cover), with their section. */
  readonly framed: { page: PDFPage; section: string }[] = [];

  private readonly textOps = new Map<PDFPage, string[]>();
  private readonly fontKeys = new Map<PDFPage, Map<PDFFont, string>>();

  constructor(
    readonly doc: PDFDocument,
    readonly faces: Faces,
  ) {}

  get left(): number {
    return PAGE.margin + this.indent;
  }

  get width(): number {
    return CONTENT_WIDTH - this.indent;
  }

  newPage(framed = true): PDFPage {
    this.page = this.doc.addPage([PAGE.width, PAGE.height]);
    this.y = PAGE.height - (framed ? PAGE.top : PAGE.margin);
    if (framed) this.framed.push({ page: this.page, section: this.section });
    return this.page;
  }

  /** Room for `height` points below the cursor, or a new page. */
  ensure(height: number): void {
    if (this.y - height < PAGE.bottom) this.newPage();
  }

  /**
   * One line of text at (x, y), no wrapping; returns its width. Text is written as PDF operators
   * into a stream of its own per page (finish() adds it above the page's graphics): pdf-lib's
   * drawText builds and checks a dozen operator objects per call and adds a font resource on every
   * font change, which for text in runs of several fonts was most of the drawing time.
   */
  async draw(text: string, x: number, y: number, style: TextStyle, page: PDFPage = this.page): Promise<number> {
    const bold = !!style.bold;
    const c = style.colour ?? COLOURS.text;
    let ops = `BT ${num(c.red)} ${num(c.green)} ${num(c.blue)} rg`;
    let at = x;
    for (const run of this.faces.runs(text, bold)) {
      const font = await this.faces.font(run, bold);
      ops += ` ${this.fontKey(page, font)} ${num(style.size)} Tf 1 0 0 1 ${num(at)} ${num(y)} Tm <${font.encodeText(run.text).asString()}> Tj`;
      at += (run.width * style.size) / 1000;
    }
    let list = this.textOps.get(page);
    if (!list) this.textOps.set(page, (list = []));
    list.push(`${ops} ET`);
    return at - x;
  }

  private fontKey(page: PDFPage, font: PDFFont): string {
    let keys = this.fontKeys.get(page);
    if (!keys) this.fontKeys.set(page, (keys = new Map()));
    let key = keys.get(font);
    if (!key) keys.set(font, (key = page.node.newFontDictionary(font.name, font.ref).toString()));
    return key;
  }

  /** Each page's text as its last content stream, deflated (four hex digits a character shrink well). */
  finish(): void {
    for (const [page, ops] of this.textOps) {
      const stream = this.doc.context.stream(deflateSync(Buffer.from(ops.join('\n'), 'latin1'), { level: 1 }), { Filter: 'FlateDecode' });
      page.node.addContentStream(this.doc.context.register(stream));
    }
    this.textOps.clear();
  }

  /** Text wrapped to the width from `x` (relative to the left edge), paginating as it goes. */
  async paragraph(text: string, style: TextStyle = BODY, x = 0): Promise<void> {
    const lineHeight = style.size * (style.leading ?? 1.35);
    const measure = (s: string) => this.faces.width(s, style.size, !!style.bold);
    for (const line of textLines(text)) {
      for (const piece of wrapLine(line, this.width - x, measure)) {
        this.ensure(lineHeight);
        this.y -= lineHeight;
        if (piece.trim() !== '') await this.draw(piece, this.left + x, this.y, style);
      }
    }
  }

  gap(points: number): void {
    this.y -= points;
  }

  /** A thin line across the text width. */
  rule(colour = COLOURS.rule, thickness = 0.6): void {
    this.ensure(8);
    this.y -= 6;
    this.page.drawLine({ start: { x: this.left, y: this.y }, end: { x: this.left + this.width, y: this.y }, thickness, color: colour });
    this.y -= 6;
  }

  /**
   * Label and value in two columns ("From:  Anna <anna@example.com>"), the value wrapped in its
   * column; returns nothing, the cursor is below the field.
   */
  async field(label: string, value: string, labelWidth: number, valueStyle: TextStyle = BODY): Promise<void> {
    const lineHeight = valueStyle.size * (valueStyle.leading ?? 1.35);
    const measure = (s: string) => this.faces.width(s, valueStyle.size, !!valueStyle.bold);
    const lines = wrapLine(value, this.width - labelWidth, measure);
    for (const [i, piece] of lines.entries()) {
      this.ensure(lineHeight);
      this.y -= lineHeight;
      if (i === 0) await this.draw(label, this.left, this.y, { size: valueStyle.size, bold: true, colour: COLOURS.muted });
      await this.draw(piece, this.left + labelWidth, this.y, valueStyle);
    }
  }

  /** Running head and "Page n of N" on every framed page, once the number of pages is known. */
  async frame(organisation: string): Promise<void> {
    const pages = this.doc.getPages();
    const small: TextStyle = { size: 8, colour: COLOURS.muted };
    for (const { page, section: title } of this.framed) {
      const n = pages.indexOf(page) + 1;
      const headY = PAGE.height - 44;
      await this.draw(organisation, PAGE.margin, headY, { size: 8, bold: true, colour: COLOURS.accent }, page);
      const tw = this.faces.width(title, 8, false);
      await this.draw(title, PAGE.width - PAGE.margin - tw, headY, small, page);
      page.drawLine({ start: { x: PAGE.margin, y: headY - 8 }, end: { x: PAGE.width - PAGE.margin, y: headY - 8 }, thickness: 0.6, color: COLOURS.rule });
      const label = `Page ${n} of ${pages.length}`;
      await this.draw(label, PAGE.width - PAGE.margin - this.faces.width(label, 8, false), 38, small, page);
    }
  }
}
