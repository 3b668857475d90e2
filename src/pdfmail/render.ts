/**
 * The mail as a PDF document, before encryption: a cover page in the organisation's design, the
 * message (header fields, text, forwarded messages), every attachment embedded as a file, and a last
 * page with the instructions and the Reply button. pdfcrypt's saveEncrypted() encrypts and saves it.
 *
 * The document's metadata names nobody and nothing: no Title, Author, Subject or Keywords, no XMP;
 * Producer "Postern" and the dates only (an encrypted PDF's Info may be read by anyone who gets
 * the file in readers that show it before the password).
 *
 * Untrusted input: the message. Hostile MIME, HTML, charsets, names and bytes give a PDF; only
 * the render limits stop it (PdfRenderError). Secrets: the reply URL carries a token.
 */
import { PDFDocument, PDFName } from 'pdf-lib';
import { embedFile, nameFiles } from './attachments.js';
import { drawAttachmentsPage, drawMail } from './mail-pages.js';
import { Faces } from './faces.js';
import type { FontSet } from './fonts.js';
import { Writer } from './layout.js';
import { readMail } from './mail-content.js';
import { drawCover, drawReplyPage } from './letter-pages.js';
import { distinctNames } from './file-names.js';
import { DEFAULT_RENDER_LIMITS, type RenderLimits } from './render-limits.js';

export { PdfRenderError, DEFAULT_RENDER_LIMITS, type RenderLimits, type PdfRenderLimit } from './render-limits.js';

export interface PdfLook {
  /** "Example Ltd" on the cover. */
  organisation: string;
  /** PNG or JPEG bytes (the lead reads the file named in config). */
  logo?: Uint8Array;
  /** Paragraph(s) on the cover, from config. */
  coverText: string;
  /** Last page: how to reply, from config. */
  instructions: string;
  /** The button's text, e.g. "Reply". */
  replyLabel: string;
}

export interface RenderInput {
  message: Buffer;
  look: PdfLook;
  /** The Reply button's link (portal url + token); null: no button. */
  replyUrl: string | null;
  /** From loadFonts(). */
  fonts: FontSet;
  now: Date;
  limits?: Partial<RenderLimits>;
}

export interface RenderedMail {
  doc: PDFDocument;
  pages: number;
  attachments: number;
  /** For the log, once: a logo that could not be read, a reply URL that is not http(s). Never content. */
  warnings: string[];
}

/**
 * Throws PdfRenderError (typed, with a reason an admin reads; never message content) for input it
 * will not render (past a limit); the lead turns that into a hold. Never throws anything else for
 * hostile input (broken MIME, broken HTML, bad charsets, bad base64).
 */
export async function renderMailPdf(input: RenderInput): Promise<RenderedMail> {
  const limits: RenderLimits = { ...DEFAULT_RENDER_LIMITS, ...input.limits };
  const content = readMail(input.message, limits, input.now);
  const names = distinctNames(content.files.map((f) => f.name));
  content.files.forEach((f, i) => (f.name = names[i]!));

  const doc = await PDFDocument.create({ updateMetadata: false });
  doc.setProducer('Postern');
  doc.setCreationDate(input.now);
  doc.setModificationDate(input.now);
  const warnings: string[] = [];
  const w = new Writer(doc, await Faces.for(doc, input.fonts));

  const embedded = content.files.map((f) => embedFile(doc, f));
  nameFiles(doc, embedded);
  // Readers that have an attachment panel open it: the files are half of what was sent.
  if (embedded.length) doc.catalog.set(PDFName.of('PageMode'), PDFName.of('UseAttachments'));

  await drawCover(w, input.look, { attachments: embedded.length, now: input.now }, warnings);
  await drawMail(w, content.main);
  if (embedded.length) await drawAttachmentsPage(w, embedded, content.files);
  await drawReplyPage(w, input.look, input.replyUrl, warnings);
  await w.frame(input.look.organisation);
  w.finish();
  return { doc, pages: doc.getPageCount(), attachments: embedded.length, warnings };
}
