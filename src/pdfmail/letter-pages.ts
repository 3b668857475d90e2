/**
 * The pages in the organisation's design around the message: the cover (logo, name, the cover
 * text from config) and the last page (how to reply, and the Reply button: a drawn button under a
 * link annotation to the portal).
 *
 * Untrusted input: none from the message; the look comes from config, the logo from a file the admin
 * named (a broken image is left out with a warning). Secrets: the reply URL carries a token; it is
 * in the (encrypted) document, never in a warning.
 */
import { PDFHexString, PDFName, type PDFImage } from 'pdf-lib';
import { COLOURS, CONTENT_WIDTH, PAGE, type TextStyle, type Writer } from './layout.js';
import type { PdfLook } from './render.js';
import { oneLine } from './text.js';

const LOGO_MAX = { width: 190, height: 64 };
const SMALL: TextStyle = { size: 8.5, colour: COLOURS.muted, leading: 1.4 };

async function logoImage(w: Writer, logo: Uint8Array, warnings: string[]): Promise<PDFImage | null> {
  // A copy of its own: pdf-lib's JPEG reader reads the whole ArrayBuffer under a view, so a Buffer
  // from readFileSync (a slice of Node's shared pool) reads as "SOI not found".
  const bytes = new Uint8Array(logo);
  try {
    if (bytes[0] === 0x89 && bytes[1] === 0x50) return await w.doc.embedPng(bytes);
    if (bytes[0] === 0xff && bytes[1] === 0xd8) return await w.doc.embedJpg(bytes);
    warnings.push('PDF logo is neither PNG nor JPEG: left out');
  } catch {
    warnings.push('PDF logo could not be read: left out');
  }
  return null;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
/** "3 December 2026, 04:18 UTC" (toLocaleDateString would cost more than drawing the page). */
const dateText = (d: Date) => `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${d.toISOString().slice(11, 16)} UTC`;

/** Logo and name on top, an accent rule, the cover text, and what the document holds. */
export async function drawCover(w: Writer, look: PdfLook, facts: { attachments: number; now: Date }, warnings: string[]): Promise<void> {
  w.newPage(false);
  w.y = PAGE.height - 70;
  const logo = look.logo?.length ? await logoImage(w, look.logo, warnings) : null;
  if (logo) {
    const scale = Math.min(LOGO_MAX.width / logo.width, LOGO_MAX.height / logo.height, 1);
    const { width, height } = logo.scale(scale);
    w.page.drawImage(logo, { x: PAGE.margin, y: w.y - height, width, height });
    w.y -= height + 22;
  }
  await w.paragraph(oneLine(look.organisation), { size: 20, bold: true, colour: COLOURS.accent, leading: 1.2 });
  w.gap(10);
  w.page.drawRectangle({ x: PAGE.margin, y: w.y, width: CONTENT_WIDTH, height: 2.2, color: COLOURS.accent });
  w.gap(64);
  await w.paragraph('Confidential message', { size: 24, bold: true, leading: 1.2 });
  w.gap(18);
  for (const para of look.coverText.split(/\n\s*\n/)) {
    await w.paragraph(para.trim(), { size: 11, leading: 1.5 });
    w.gap(9);
  }
  w.gap(28);
  w.page.drawLine({ start: { x: PAGE.margin, y: w.y }, end: { x: PAGE.margin + CONTENT_WIDTH, y: w.y }, thickness: 0.6, color: COLOURS.rule });
  w.gap(4);
  const files = facts.attachments === 0 ? 'no attachments' : facts.attachments === 1 ? '1 attached file' : `${facts.attachments} attached files`;
  await w.paragraph(`Contents: the message, ${files}, and how to reply on the last page.`, SMALL);
  await w.paragraph(`Created ${dateText(facts.now)}`, SMALL);
  await w.draw(oneLine(look.organisation), PAGE.margin, 38, { size: 8, colour: COLOURS.muted });
}

/** A web address a PDF link may carry: http(s), in ASCII (IDN and non-ASCII paths encoded), or null. */
function linkTarget(url: string): string | null {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

/** Rounded rectangle as an SVG path from its top-left corner (pdf-lib draws SVG paths y-down). */
const rounded = (width: number, height: number, r: number) =>
  `M ${r} 0 H ${width - r} A ${r} ${r} 0 0 1 ${width} ${r} V ${height - r} A ${r} ${r} 0 0 1 ${width - r} ${height} H ${r} A ${r} ${r} 0 0 1 0 ${height - r} V ${r} A ${r} ${r} 0 0 1 ${r} 0 Z`;

/** How to reply, the Reply button linked to the portal, and the address for readers without links. */
export async function drawReplyPage(w: Writer, look: PdfLook, replyUrl: string | null, warnings: string[]): Promise<void> {
  w.section = 'Reply';
  w.newPage();
  await w.paragraph('How to reply', { size: 15, bold: true, leading: 1.3 });
  w.gap(8);
  for (const para of look.instructions.split(/\n\s*\n/)) {
    await w.paragraph(para.trim(), { size: 10.5, leading: 1.5 });
    w.gap(8);
  }
  const target = replyUrl === null ? null : linkTarget(replyUrl);
  if (replyUrl !== null && target === null) warnings.push('PDF reply URL is not an http(s) URL: no Reply button');
  if (target === null) return;
  const label = oneLine(look.replyLabel) || 'Reply';
  const size = 12;
  const width = Math.max(120, w.faces.width(label, size, true) + 56);
  const height = 34;
  w.ensure(height + 80);
  w.gap(18);
  const top = w.y;
  w.page.drawSvgPath(rounded(width, height, 7), { x: PAGE.margin, y: top, color: COLOURS.accent });
  await w.draw(label, PAGE.margin + (width - w.faces.width(label, size, true)) / 2, top - height / 2 - size * 0.35, { size, bold: true, colour: COLOURS.white });
  const link = w.doc.context.obj({
    Type: 'Annot',
    Subtype: 'Link',
    Rect: [PAGE.margin, top - height, PAGE.margin + width, top],
    Border: [0, 0, 0],
    F: 4,
    A: { Type: 'Action', S: 'URI', URI: PDFHexString.of(Buffer.from(target, 'latin1').toString('hex')) },
  });
  link.set(PDFName.of('H'), PDFName.of('P'));
  w.page.node.addAnnot(w.doc.context.register(link));
  w.y = top - height - 22;
  await w.paragraph('If the button does not open, copy this address into your web browser:', SMALL);
  await w.paragraph(target, SMALL);
}
