/**
 * What one mail PDF may hold, and the error for a message past it. The lead turns the error into a
 * hold with its text as the reason, so the text names the limit and the numbers, never content.
 *
 * Defaults, as a mail admin would set them:
 * - 500 attachments: far past real mail (a scanner's batch, a photo album), below the 1000 MIME
 *   parts core/limits.ts allows a whole message; each is a line on the Attachments page, so 500 are
 *   about twenty pages.
 * - 50 MB per attachment: the default smtp.max_message_size; decoded it is what a reader saves.
 * - 5 levels of forwarded messages shown: a forward of a forward of a forward is real, beyond
 *   five the text is noise; deeper messages are still inside the attached .eml.
 * - 300,000 characters of text on pages (about 150 pages, a few tenths of a second): a log file
 *   or a 40 MB text body would otherwise hold a worker for a minute and make a PDF nobody
 *   scrolls through; the part is embedded whole as a file, so nothing is lost.
 *
 * Untrusted input: none. Secrets: none.
 */
import { PosternError } from '../core/errors.js';
import { sizeText } from '../core/limits.js';

export interface RenderLimits {
  maxAttachments: number;
  maxAttachmentBytes: number;
  maxDepth: number;
  /** Characters of text shown on pages, all text parts together; the rest is embedded as a file. */
  maxTextChars: number;
}

export const DEFAULT_RENDER_LIMITS: RenderLimits = { maxAttachments: 500, maxAttachmentBytes: 50 * 1024 * 1024, maxDepth: 5, maxTextChars: 300_000 };

export type PdfRenderLimit = 'attachments' | 'attachment_size' | 'mime_depth';

/**
 * A message the PDF renderer will not put into a PDF. Permanent: the same message hits the same
 * limit again, so the worker holds it for an admin instead of retrying (5.6.0 / 5.3.4 as
 * core/limits.ts says for the MIME limits).
 */
export class PdfRenderError extends PosternError {
  readonly limit: PdfRenderLimit;
  constructor(limit: PdfRenderLimit, text: string) {
    super(limit === 'attachment_size' ? { code: 552, status: '5.3.4', text } : { code: 554, status: '5.6.0', text });
    this.limit = limit;
  }
}

export function tooManyAttachments(max: number): PdfRenderError {
  return new PdfRenderError('attachments', `more than ${max} attachments for one PDF`);
}

export function attachmentTooBig(size: number, max: number): PdfRenderError {
  return new PdfRenderError('attachment_size', `an attachment of ${sizeText(size)}, more than the ${sizeText(max)} one PDF attachment may have`);
}

export function nestedTooDeep(max: number): PdfRenderError {
  return new PdfRenderError('mime_depth', `MIME parts nested deeper than ${max} levels`);
}
