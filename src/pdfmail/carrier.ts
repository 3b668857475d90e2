/**
 * The mail that carries a PDF to its recipient: the original's header (From, To, Cc, Date,
 * Subject, Message-ID, threading — what a mail client shows and sorts by), and a new body: a short
 * text that explains the attachment (postern.yaml pdf.message_text, optionally message_html beside
 * it) and the encrypted PDF. Nothing of the original body is left outside the PDF.
 *
 * The Subject stays outside, as S/MIME's would with header protection off: a recipient without
 * crypto tools finds and sorts mail by it. A rule that must hide it removes or rewrites it.
 *
 * Untrusted input: the original's header block (kept field by field, MIME fields dropped — the
 * new body has its own) and the sender's address (put into the text, escaped for HTML).
 */
import { editHeaders, encodeBase64Lines, headerFieldsRaw, newBoundary, splitHeader } from '../mime/index.js';
import { quotedPrintable } from '../dsn/index.js';

export interface CarrierInput {
  /** The message as it went into the PDF (its header is kept outside). */
  original: Buffer;
  pdf: Uint8Array;
  /** The PDF's file name as the recipient sees it. */
  filename: string;
  /** pdf.message_text / message_html with {sender} and {organisation} still in them. */
  text: string;
  html?: string;
  sender: string;
  organisation: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(sender|organisation)\}/g, (_, k: string) => values[k] ?? '');
}

/** A text part: UTF-8, quoted-printable (line length and 8-bit safe for any next hop). */
function textPart(type: 'plain' | 'html', text: string): string {
  const body = quotedPrintable(Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'utf8')).replace(/(\r\n)?$/, '\r\n');
  // The line break before a boundary belongs to the boundary (RFC 2046 5.1.1): one more ends the text's last line.
  return `Content-Type: text/${type}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${body}\r\n`;
}

export function carrierMessage(input: CarrierInput): Buffer {
  const { header } = splitHeader(input.original);
  // Only a printable ASCII name: it is ours, but it goes into a parameter unencoded.
  const filename = input.filename.replace(/[^A-Za-z0-9._-]/g, '_') || 'message.pdf';
  const values = { sender: input.sender || 'The sender', organisation: input.organisation };
  const text = textPart('plain', fill(input.text, values));
  const pdf = Buffer.from(input.pdf.buffer, input.pdf.byteOffset, input.pdf.byteLength);
  const outer = newBoundary(pdf.subarray(0, 0), '=_postern_pdf_');
  let first = text;
  if (input.html !== undefined) {
    const alt = newBoundary(Buffer.alloc(0), '=_postern_alt_');
    const html = textPart('html', fill(input.html, { sender: escapeHtml(values.sender), organisation: escapeHtml(values.organisation) }));
    first = `Content-Type: multipart/alternative; boundary="${alt}"\r\n\r\n--${alt}\r\n${text}--${alt}\r\n${html}--${alt}--\r\n`;
  }
  const body =
    `This is a multipart message in MIME format.\r\n\r\n--${outer}\r\n${first}--${outer}\r\n` +
    `Content-Type: application/pdf; name="${filename}"\r\nContent-Disposition: attachment; filename="${filename}"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
    `${encodeBase64Lines(pdf)}--${outer}--\r\n`;
  // The original's fields, without those that described its body.
  const mime = headerFieldsRaw(header).map((f) => f.name).filter((n) => /^(content-|mime-version$)/i.test(n));
  const kept = editHeaders(Buffer.concat([header, Buffer.from('\r\n')]), { remove: [...new Set(mime)] });
  const head = splitHeader(kept).header;
  return Buffer.concat([head, Buffer.from(`MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${outer}"\r\n\r\n`, 'latin1'), Buffer.from(body, 'latin1')]);
}
