/**
 * The fonts of one document: text split into runs, each drawn with the first font of the FontSet
 * that has its characters (DejaVu, then Droid Sans Fallback), a character none has shown as the
 * replacement character. A font is embedded (subsetted: only the glyphs drawn) the first time a run
 * needs it, so a German mail carries no CJK font. Without font files, pdf-lib's Helvetica (WinAnsi).
 *
 * Untrusted input: the text drawn (already passed through text.ts). Secrets: none.
 */
import { randomBytes } from 'node:crypto';
import { PDFHexString, StandardFonts, type PDFDocument, type PDFFont } from 'pdf-lib';
import type { Font, Glyph } from 'pdf-lib/cjs/types/fontkit.js';
import { advance, cachedFontkit, type FontFace, type FontSet } from './fonts.js';
import { embedStaticFont, inStaticSubset, staticSubset, type StaticSubset } from './static-font.js';
import { REPLACEMENT } from './text.js';

/** A run of text drawn with one font; `width` in 1/1000 em. */
export interface Run {
  text: string;
  /** Index of the face in the fallback list, or STATIC for the first face's prebuilt subset. */
  face: number;
  width: number;
}

const STATIC = -1;

/** What pdf-lib's subsetting embedder keeps of the glyphs a document uses (pdf-lib 1.17 internals). */
interface SubsetState {
  font: Font;
  subset: { includeGlyph(glyph: number): number; _addGlyph(gid: number): number; glyf: Uint8Array[]; offset: number };
  glyphs: Glyph[];
  glyphIdMap: Map<number, number>;
  glyphCache: { invalidate(): void };
  encodeText(text: string): PDFHexString;
}

/**
 * Text to glyphs one code point at a time, instead of pdf-lib's fontkit layout(): OpenType shaping
 * (GSUB/GPOS lookups) was three quarters of the time of a whole 4 KB mail, and what it adds is
 * not wanted here: ligatures extract wrongly in some readers and would make drawn text narrower
 * than it was measured, kerning pdf-lib never draws. Scripts that need shaping (Arabic, Indic)
 * are drawn unshaped, as they were before (there is no bidi either).
 */
function drawGlyphByGlyph(font: PDFFont): void {
  const embedder = (font as unknown as { embedder: SubsetState }).embedder;
  if (!embedder?.subset || !(embedder.glyphIdMap instanceof Map)) return;
  padGlyphs(embedder.subset);
  embedder.encodeText = (text: string) => {
    let hex = '';
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      const glyph = embedder.font.glyphForCodePoint(cp);
      const id = embedder.subset.includeGlyph(glyph.id);
      // What pdf-lib reads back for /W and /ToUnicode. Not the fontkit glyph itself: fontkit caches
      // glyphs per font, and one first made as a component of a composite glyph ("A" in "Ä") has
      // no code points, which would drop the character from the text readers extract.
      if (!embedder.glyphs[id - 1]) embedder.glyphs[id - 1] = { id: glyph.id, codePoints: [cp], advanceWidth: glyph.advanceWidth } as Glyph;
      embedder.glyphIdMap.set(glyph.id, id);
      hex += id.toString(16).padStart(4, '0');
    }
    embedder.glyphCache.invalidate();
    return PDFHexString.of(hex);
  };
}

/**
 * fontkit's TrueType subsetter copies each glyph's bytes as they are and then, when the subset is
 * under 128 KB, writes the short loca format, which stores offsets halved: a glyph of odd length
 * (Droid Sans Fallback and Nanum Gothic have them; DejaVu pads its own) shifts every glyph after it
 * by a byte, and readers draw those glyphs blank ("invalid outline") while the text still extracts.
 * Padding each glyph to four bytes, as the TrueType spec recommends, keeps every offset even.
 */
function padGlyphs(subset: Pick<SubsetState['subset'], '_addGlyph' | 'glyf' | 'offset'>): void {
  const add = subset._addGlyph.bind(subset);
  subset._addGlyph = (gid: number) => {
    const id = add(gid);
    const last = subset.glyf.length - 1;
    const glyph = subset.glyf[last]!;
    const pad = (4 - (glyph.length % 4)) % 4;
    if (pad) {
      const padded = (glyph.constructor as unknown as { alloc(n: number): Uint8Array }).alloc(glyph.length + pad);
      padded.set(glyph, 0);
      subset.glyf[last] = padded;
      subset.offset += pad;
    }
    return id;
  };
}

export class Faces {
  private readonly regular: FontFace[];
  private readonly bold: FontFace[];
  private readonly embedded = new Map<FontFace, PDFFont>();
  private readonly staticFonts = new Map<FontFace, PDFFont>();
  private staticRegular: StaticSubset | null = null;
  private staticBold: StaticSubset | null = null;
  private standard: { regular: PDFFont; bold: PDFFont; chars: Set<number> } | null = null;

  private constructor(
    private readonly doc: PDFDocument,
    fonts: FontSet,
  ) {
    this.regular = fonts.families.map((f) => f.regular);
    this.bold = fonts.families.map((f) => f.bold);
  }

  static async for(doc: PDFDocument, fonts: FontSet): Promise<Faces> {
    const faces = new Faces(doc, fonts);
    if (fonts.families.length) {
      doc.registerFontkit(cachedFontkit);
      faces.staticRegular = await staticSubset(fonts.families[0]!.regular, padGlyphs);
      faces.staticBold = await staticSubset(fonts.families[0]!.bold, padGlyphs);
    } else {
      const regular = await doc.embedFont(StandardFonts.Helvetica);
      const bold = await doc.embedFont(StandardFonts.HelveticaBold);
      faces.standard = { regular, bold, chars: new Set(regular.getCharacterSet()) };
    }
    return faces;
  }

  /** The text as runs of one font each; characters no font has become the replacement character. */
  runs(text: string, bold: boolean): Run[] {
    const runs: Run[] = [];
    const push = (ch: string, face: number, w: number) => {
      const last = runs[runs.length - 1];
      if (last && last.face === face) {
        last.text += ch;
        last.width += w;
      } else runs.push({ text: ch, face, width: w });
    };
    if (this.standard) {
      const font = bold ? this.standard.bold : this.standard.regular;
      for (const ch of text) {
        const c = this.standard.chars.has(ch.codePointAt(0)!) ? ch : '?';
        push(c, 0, font.widthOfTextAtSize(c, 1000));
      }
      return runs;
    }
    const list = bold ? this.bold : this.regular;
    const prebuilt = bold ? this.staticBold : this.staticRegular;
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      if (prebuilt && inStaticSubset(prebuilt, cp)) {
        push(ch, STATIC, advance(list[0]!, cp));
        continue;
      }
      let placed = false;
      for (let i = 0; i < list.length; i++) {
        const w = advance(list[i]!, cp);
        if (w >= 0) {
          push(ch, i, w);
          placed = true;
          break;
        }
      }
      if (!placed) {
        const i = list.findIndex((f) => advance(f, 0xfffd) >= 0);
        if (i >= 0) push(REPLACEMENT, i, advance(list[i]!, 0xfffd));
        else push('?', 0, Math.max(0, advance(list[0]!, 0x3f)));
      }
    }
    return runs;
  }

  /** Width of a text in points at `size`. */
  width(text: string, size: number, bold: boolean): number {
    if (this.standard) return (bold ? this.standard.bold : this.standard.regular).widthOfTextAtSize(text.replace(/[^\x20-\x7e]/g, (c) => (this.standard!.chars.has(c.codePointAt(0)!) ? c : '?')), size);
    // The widths runs() would sum, without building the runs: wrapping measures every word.
    const list = bold ? this.bold : this.regular;
    let w = 0;
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      let cw = -1;
      for (let i = 0; i < list.length && cw < 0; i++) cw = advance(list[i]!, cp);
      if (cw < 0) cw = this.replacementWidth(list);
      w += cw;
    }
    return (w * size) / 1000;
  }

  private replacementWidth(list: readonly FontFace[]): number {
    for (const f of list) if (advance(f, 0xfffd) >= 0) return advance(f, 0xfffd);
    return Math.max(0, advance(list[0]!, 0x3f));
  }

  /** The PDF font of a run, embedded on first use. */
  async font(run: Run, bold: boolean): Promise<PDFFont> {
    if (this.standard) return bold ? this.standard.bold : this.standard.regular;
    if (run.face === STATIC) {
      const face = (bold ? this.bold : this.regular)[0]!;
      let font = this.staticFonts.get(face);
      if (!font) {
        font = embedStaticFont(this.doc, face, (bold ? this.staticBold : this.staticRegular)!);
        this.staticFonts.set(face, font);
      }
      return font;
    }
    const face = (bold ? this.bold : this.regular)[run.face]!;
    let font = this.embedded.get(face);
    if (!font) {
      // ISO 32000 9.6.4: a subset's name carries a six-letter tag, which readers show ("sub yes").
      const tag = Array.from(randomBytes(6), (b) => String.fromCharCode(65 + (b % 26))).join('');
      font = await this.doc.embedFont(face.bytes, { subset: true, customName: `${tag}+${face.font.postscriptName || 'Font'}` });
      drawGlyphByGlyph(font);
      this.embedded.set(face, font);
    }
    return font;
  }
}
