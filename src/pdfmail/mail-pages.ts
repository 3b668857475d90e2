/**
 * The message pages: the subject as the title, the header fields, the text; a forwarded message
 * indented under a heading that names the .eml it is attached as; and the Attachments page, each
 * file with its paperclip annotation, type and size.
 *
 * Untrusted input: every string drawn here is from the message (made drawable by text.ts).
 */
import { fileAnnotation, type EmbeddedFile } from './attachments.js';
import { BODY, COLOURS, PAGE, type TextStyle, type Writer } from './layout.js';
import type { MailFile, MailSection } from './mail-content.js';
import { oneLine } from './text.js';

/** "512 bytes", "4.2 KB", "47 KB", "30 MB": as a file manager shows a size. */
export function readableSize(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const [value, unit] = n < 1024 * 1024 ? [n / 1024, 'KB'] : [n / (1024 * 1024), 'MB'];
  return `${value < 10 ? value.toFixed(1).replace(/\.0$/, '') : Math.round(value)} ${unit}`;
}

const LABEL_WIDTH = 58;
const INDENT = 16;
const SMALL: TextStyle = { size: 8.5, colour: COLOURS.muted, leading: 1.4 };

async function headerBlock(w: Writer, section: MailSection): Promise<void> {
  for (const h of section.headers) await w.field(`${h.label}:`, h.value, LABEL_WIDTH, h.label === 'Subject' ? { ...BODY, bold: true } : BODY);
}

async function sectionBody(w: Writer, section: MailSection): Promise<void> {
  for (const part of section.parts) {
    if (part.kind === 'text') {
      await w.paragraph(part.text.replace(/\s+$/, ''));
      w.gap(8);
    } else if (part.kind === 'note') {
      await w.paragraph(`[${oneLine(part.text)}]`, SMALL);
      w.gap(6);
    } else if (part.kind === 'links') {
      w.ensure(30);
      await w.paragraph('Links', { size: 9, bold: true, colour: COLOURS.muted });
      for (const [i, url] of part.links.entries()) await w.paragraph(`[${i + 1}] ${oneLine(url)}`, SMALL);
      w.gap(8);
    } else {
      await forwarded(w, part.section);
    }
  }
}

async function forwarded(w: Writer, section: MailSection): Promise<void> {
  w.ensure(60);
  w.gap(6);
  w.rule(COLOURS.accent, 0.8);
  const heading = section.attachedAs ? `Forwarded message (attached as ${oneLine(section.attachedAs.name)})` : 'Forwarded message';
  await w.paragraph(heading, { size: 9.5, bold: true, colour: COLOURS.accent });
  const indent = w.indent;
  w.indent = Math.min(indent + INDENT, INDENT * 4);
  await headerBlock(w, section);
  w.gap(6);
  await sectionBody(w, section);
  w.indent = indent;
}

/** The message: subject as title, header fields, a rule, then the text and forwarded messages. */
export async function drawMail(w: Writer, main: MailSection): Promise<void> {
  w.section = 'Message';
  w.newPage();
  const subject = main.headers.find((h) => h.label === 'Subject')?.value;
  await w.paragraph(subject || '(no subject)', { size: 15, bold: true, colour: COLOURS.text, leading: 1.3 });
  w.gap(8);
  await headerBlock(w, main);
  w.gap(4);
  w.rule();
  w.gap(4);
  await sectionBody(w, main);
}

/** One line per file: the paperclip (a file-attachment annotation), the name, its type and size. */
export async function drawAttachmentsPage(w: Writer, embedded: readonly EmbeddedFile[], files: readonly MailFile[]): Promise<void> {
  w.section = 'Attachments';
  w.newPage();
  await w.paragraph(`Attachments (${files.length})`, { size: 15, bold: true, leading: 1.3 });
  w.gap(4);
  await w.paragraph('Each file is embedded in this document. Click the paperclip, or open your reader’s attachments panel, to save it.', SMALL);
  w.gap(10);
  for (const [i, file] of files.entries()) {
    w.ensure(30);
    const top = w.y;
    const icon = 14;
    w.page.drawRectangle({ x: PAGE.margin, y: top - 18, width: icon, height: icon, borderColor: COLOURS.accent, borderWidth: 0.8, color: COLOURS.white });
    fileAnnotation(w.doc, w.page, embedded[i]!, PAGE.margin, top - 18, icon);
    w.indent = icon + 10;
    await w.paragraph(file.name, { size: 10, bold: true, leading: 1.3 });
    await w.paragraph(`${oneLine(file.type)} · ${readableSize(file.data.length)}`, SMALL);
    w.indent = 0;
    w.gap(7);
  }
}
