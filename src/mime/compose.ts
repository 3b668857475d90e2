/**
 * Adding attachments to a message that already exists (what `send_keys` does to the sender's
 * mail): the message becomes multipart/mixed, its original body entity the first part, and each
 * attachment a base64 part after it. The original entity is moved, never rewritten — its Content-*
 * lines as written and its body byte for byte — because it may be multipart/signed, or carry a
 * transfer encoding a signature was made over; re-encoding it would break what it carries.
 */
import { randomBytes } from 'node:crypto';
import { splitHeader } from './header-fields.js';

export interface Attachment {
  /** The file name the recipient sees; any characters (non-ASCII goes as RFC 2231 filename*). */
  filename: string;
  /** Media type with parameters, e.g. "application/pkcs7-mime; smime-type=certs-only". */
  contentType: string;
  content: Buffer;
}

const CRLF = '\r\n';

/** RFC 2045 token characters: what a parameter value may be written as without quotes. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Raw header fields: each the first line and its continuation lines, without line ends. */
function headerFields(header: Buffer): { name: string; lines: Buffer[] }[] {
  const fields: { name: string; lines: Buffer[] }[] = [];
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(0x0a, start);
    if (end < 0) end = header.length;
    const line = header.subarray(start, end > start && header[end - 1] === 0x0d ? end - 1 : end);
    start = end + 1;
    if ((line[0] === 0x20 || line[0] === 0x09) && fields.length) {
      fields[fields.length - 1]!.lines.push(line);
      continue;
    }
    const colon = line.indexOf(0x3a);
    fields.push({ name: colon > 0 ? line.subarray(0, colon).toString('latin1').trim().toLowerCase() : '', lines: [line] });
  }
  return fields;
}

function hasEightBit(b: Buffer): boolean {
  for (const x of b) if (x >= 0x80) return true;
  return false;
}

/**
 * The transfer encoding the multipart must declare (RFC 2045 6.4: only 7bit, 8bit or binary, and
 * no less than its parts need): from the original's declared encoding, and from its bytes, since
 * mail with 8-bit text and no declaration is common.
 */
function outerEncoding(declared: string | undefined, entity: Buffer): '7bit' | '8bit' | 'binary' {
  const cte = (declared ?? '').trim().toLowerCase();
  if (cte === 'binary') return 'binary';
  return cte === '8bit' || hasEightBit(entity) ? '8bit' : '7bit';
}

/** A boundary that occurs nowhere in the content (RFC 2046 5.1.1); "=_" never occurs in quoted-printable. */
function pickBoundary(entity: Buffer): string {
  for (;;) {
    const b = `=_postern-mixed-${randomBytes(15).toString('hex')}`;
    // base64 parts cannot hold "--", so only the original entity can collide.
    if (!entity.includes(`--${b}`)) return b;
  }
}

/** RFC 2231 attribute-char: a token character other than "*", "'" and "%". */
const ATTRIBUTE_CHAR = /^[!#$&+\-.^_`|~0-9A-Za-z]$/;
const percent = (c: string) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');

/** One line, printable: a caller's string can never start a header line of its own. */
function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

/**
 * A parameter, as `name="value"` for ASCII or RFC 2231 `name*=utf-8''…` otherwise, split into
 * numbered continuations when long, so no header line passes 78 characters.
 */
export function parameter(name: string, value: string): string[] {
  const v = clean(value);
  const ascii = /^[\x20-\x7e]*$/.test(v);
  if (ascii && v.length <= 60) return [`${name}=${TOKEN.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`}`];
  // Pieces: percent-escaped UTF-8 (never split inside an escape), or quoted ASCII text.
  // Whole characters per piece: RFC 2231 joins the pieces before decoding, but some readers
  // (Python's email among them) decode each piece alone and stumble on a split character.
  const units = [...v].map((c) => (ascii ? (c === '"' || c === '\\' ? `\\${c}` : c) : ATTRIBUTE_CHAR.test(c) ? c : percent(c)));
  const chunks: string[] = [];
  let cur = ascii ? '' : "utf-8''";
  for (const u of units) {
    if (cur.length + u.length > 60) {
      chunks.push(cur);
      cur = '';
    }
    cur += u;
  }
  chunks.push(cur);
  if (chunks.length === 1) return [ascii ? `${name}="${chunks[0]}"` : `${name}*=${chunks[0]}`];
  return chunks.map((c, i) => (ascii ? `${name}*${i}="${c}"` : `${name}*${i}*=${c}`));
}

/** "Name: first;\r\n\tparam;\r\n\tparam" — one parameter per line. */
function fieldWithParams(name: string, first: string, params: string[]): string {
  return [`${name}: ${first}`, ...params].join(`;${CRLF}\t`) + CRLF;
}

/** Base64 in lines of 76 characters (RFC 2045 6.8); the last line's end is the next delimiter's CRLF. */
function base64Lines(content: Buffer): string {
  return content.toString('base64').replace(/.{76}(?=.)/g, `$&${CRLF}`);
}

function attachmentPart(a: Attachment): string {
  const ct = clean(a.contentType);
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+(\s*;.*)?$/.test(ct)) throw new Error(`compose: not a media type: ${JSON.stringify(a.contentType)}`);
  const semi = ct.indexOf(';');
  const type = semi < 0 ? ct : ct.slice(0, semi).trim();
  const params = semi < 0 ? [] : ct.slice(semi + 1).split(';').map((p) => p.trim()).filter(Boolean);
  // name= on Content-Type as well: Outlook and older clients look there, not at the disposition.
  return (
    fieldWithParams('Content-Type', type, [...params, ...parameter('name', a.filename)]) +
    `Content-Transfer-Encoding: base64${CRLF}` +
    fieldWithParams('Content-Disposition', 'attachment', parameter('filename', a.filename)) +
    CRLF +
    base64Lines(a.content)
  );
}

/**
 * The message with `attachments` after its original content, as multipart/mixed. The top-level
 * header block keeps every field but the Content-* ones (which move, as written, to the first
 * part) and MIME-Version (written once). A message without Content-Type is text/plain (RFC 2045
 * 5.2), and so is a part without one (RFC 2046 5.1.3): its first part stays without one too.
 */
export function addAttachments(message: Buffer, attachments: readonly Attachment[]): Buffer {
  const { header, bodyOffset } = splitHeader(message);
  const body = message.subarray(bodyOffset);
  const top: Buffer[] = [];
  const content: Buffer[] = [];
  let declaredCte: string | undefined;
  for (const f of headerFields(header)) {
    if (f.name === 'mime-version') continue;
    if (f.name.startsWith('content-')) {
      content.push(...f.lines);
      if (f.name === 'content-transfer-encoding' && declaredCte === undefined) {
        const raw = Buffer.concat(f.lines).toString('latin1');
        declaredCte = raw.slice(raw.indexOf(':') + 1);
      }
    } else top.push(...f.lines);
  }
  const lines = (ls: Buffer[]) => ls.flatMap((l) => [l, Buffer.from(CRLF)]);
  const entity = Buffer.concat([...lines(content), Buffer.from(CRLF), body]);
  const boundary = pickBoundary(entity);
  const head =
    'MIME-Version: 1.0' + CRLF +
    `Content-Type: multipart/mixed;${CRLF}\tboundary="${boundary}"${CRLF}` +
    `Content-Transfer-Encoding: ${outerEncoding(declaredCte, entity)}${CRLF}` +
    CRLF +
    `This is a multi-part message in MIME format.${CRLF}` +
    `${CRLF}--${boundary}${CRLF}`;
  // The CRLF before each delimiter belongs to the delimiter (RFC 2046 5.1.1), so the first part
  // ends exactly where the original body ended, with or without a final line end.
  const tail = attachments.map((a) => `${CRLF}--${boundary}${CRLF}${attachmentPart(a)}`).join('') + `${CRLF}--${boundary}--${CRLF}`;
  return Buffer.concat([...lines(top), Buffer.from(head), entity, Buffer.from(tail)]);
}
