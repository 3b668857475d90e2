/**
 * A message as S/MIME and PGP/MIME see it: the outer header (From, To, Subject … — what stays
 * readable) and the body entity (the Content-* fields and the body — what gets signed or
 * encrypted). Splitting, joining, and the canonical form a signature is computed over (RFC 8551
 * 3.1.1: CRLF line ends, 7-bit transfer encodings, every byte fixed before signing; nothing is
 * re-encoded afterwards).
 *
 * Untrusted input: whole messages and decrypted entities; every function is linear, bounded in
 * depth, and returns something usable for any bytes.
 */
import { randomUUID } from 'node:crypto';
import { base64Lines, base64LinesLength, writeBase64Lines } from './base64-lines.js';
import { contentTypeOf, parseHeaders, splitHeader, type ContentType } from './header-fields.js';

const CRLF = Buffer.from('\r\n');
const MAX_DEPTH = 30;

/** The fields of a header block as raw text (each the first line and its continuations). */
export function headerFieldsRaw(header: Buffer): { name: string; raw: string }[] {
  const lines = header.toString('latin1').split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  const fields: { name: string; raw: string }[] = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1]!.raw += `\r\n${line}`;
    else if (line.includes(':')) fields.push({ name: line.slice(0, line.indexOf(':')).trim().toLowerCase(), raw: line });
    // A line that is neither a field nor a continuation (mbox "From ", garbage) is dropped.
  }
  return fields;
}

const isContentField = (name: string) => name.startsWith('content-');

export interface SplitMessage {
  /** Header fields other than Content-* and MIME-Version, CRLF-terminated (may be empty). */
  outer: Buffer;
  /** The body entity: Content-* fields, an empty line, the body — a MIME entity on its own. */
  entity: Buffer;
}

/** Bare LF (and lone CR) to CRLF: the canonical line end, and what SMTP requires anyway. */
export function toCrlf(buf: Buffer): Buffer {
  let bare = false;
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
    if (i === 0 || buf[i - 1] !== 0x0d) {
      bare = true;
      break;
    }
  }
  if (!bare && !buf.includes(0x0d)) return buf;
  if (!bare) {
    // Only CRs: check none is lone.
    let lone = false;
    for (let i = buf.indexOf(0x0d); i >= 0; i = buf.indexOf(0x0d, i + 1)) if (buf[i + 1] !== 0x0a) lone = true;
    if (!lone) return buf;
  }
  return Buffer.from(buf.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

export function splitMessage(message: Buffer): SplitMessage {
  const { header, bodyOffset } = splitHeader(message);
  const fields = headerFieldsRaw(header);
  const outer = fields.filter((f) => !isContentField(f.name) && f.name !== 'mime-version').map((f) => `${f.raw}\r\n`);
  const content = fields.filter((f) => isContentField(f.name)).map((f) => `${f.raw}\r\n`);
  // No Content-Type means text/plain; us-ascii (RFC 2045 5.2): said explicitly once it is an entity.
  if (!fields.some((f) => f.name === 'content-type')) content.unshift('Content-Type: text/plain; charset=us-ascii\r\n');
  return {
    outer: Buffer.from(outer.join(''), 'latin1'),
    entity: Buffer.concat([Buffer.from(content.join(''), 'latin1'), CRLF, message.subarray(bodyOffset)]),
  };
}

/** The outer header, MIME-Version, and a body entity: a whole message again. */
export function joinMessage(outer: Buffer, entity: Buffer): Buffer {
  return Buffer.concat([outer, Buffer.from('MIME-Version: 1.0\r\n'), entity]);
}

export interface Entity {
  headers: Map<string, string[]>;
  type: ContentType;
  /** The body after the header's empty line, still transfer-encoded. */
  body: Buffer;
  /** Content-Transfer-Encoding, lower-cased ('7bit' when absent). */
  encoding: string;
}

export function readEntity(entity: Buffer, fallback = 'text/plain'): Entity {
  const { header, bodyOffset } = splitHeader(entity);
  const headers = parseHeaders(header);
  return {
    headers,
    type: contentTypeOf(headers, fallback),
    body: entity.subarray(bodyOffset),
    encoding: (headers.get('content-transfer-encoding')?.[0] ?? '7bit').trim().toLowerCase(),
  };
}

/** The body with its transfer encoding undone (base64, quoted-printable; others as they are). */
export function decodeBody(e: Pick<Entity, 'body' | 'encoding'>): Buffer {
  if (e.encoding === 'base64') {
    // Only alphabet and line breaks (what every mail program writes): Node's decoder skips the
    // breaks itself, where rewriting the whole text first cost 0.7 s of a 30 MB attachment's 0.9 s.
    const text = e.body.toString('latin1');
    return Buffer.from(/[^A-Za-z0-9+/=\r\n]/.test(text) ? text.replace(/[^A-Za-z0-9+/=]/g, '') : text, 'base64');
  }
  if (e.encoding === 'quoted-printable') {
    const text = e.body.toString('latin1').replace(/[ \t]+(\r?\n)/g, '$1').replace(/=\r?\n/g, '');
    return Buffer.from(text.replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  }
  return e.body;
}

export interface MultipartLayout {
  preamble: Buffer;
  /** Each part exactly (the bytes between a delimiter line and the CRLF before the next). */
  parts: Buffer[];
  epilogue: Buffer;
  closed: boolean;
}

/** The parts of a multipart body with what is around them (RFC 2046 5.1.1). */
export function multipartLayout(body: Buffer, boundary: string, limit = 1000): MultipartLayout {
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  const parts: Buffer[] = [];
  let preamble = body.subarray(0, 0);
  let start = -1;
  for (let i = body.indexOf(delim); i >= 0 && parts.length < limit; i = body.indexOf(delim, i + 1)) {
    if (i > 0 && body[i - 1] !== 0x0a) continue;
    let after = i + delim.length;
    const closing = body[after] === 0x2d && body[after + 1] === 0x2d;
    if (!closing) {
      while (body[after] === 0x20 || body[after] === 0x09) after++;
      if (after < body.length && body[after] !== 0x0d && body[after] !== 0x0a) continue;
    }
    const lineStart = Math.max(0, i - (i >= 2 && body[i - 2] === 0x0d ? 2 : i >= 1 ? 1 : 0));
    if (start >= 0) parts.push(body.subarray(start, Math.max(start, lineStart)));
    else preamble = body.subarray(0, lineStart);
    const eol = body.indexOf(0x0a, after);
    if (closing) return { preamble, parts, epilogue: eol < 0 ? body.subarray(body.length) : body.subarray(eol + 1), closed: true };
    if (eol < 0) break;
    start = eol + 1;
  }
  if (start >= 0 && start <= body.length && parts.length < limit) parts.push(body.subarray(start));
  return { preamble, parts, epilogue: body.subarray(body.length), closed: false };
}

/** A boundary that occurs nowhere in `content`. */
export function newBoundary(content: Buffer, prefix = '=_postern_'): string {
  for (;;) {
    const b = `${prefix}${randomUUID().replace(/-/g, '')}`;
    if (!content.includes(b)) return b;
  }
}

export function sevenBitClean(buf: Buffer): boolean {
  let lineLen = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (c >= 0x80 || c === 0) return false;
    if (c === 0x0a) lineLen = 0;
    else if (++lineLen > 998) return false;
  }
  return true;
}

/**
 * Quoted-printable (RFC 2045 6.7) with CRLF as hard line breaks, "From " at a line start and
 * trailing white space protected (mail systems rewrite both, which would break the signature).
 */
export function encodeQuotedPrintable(data: Buffer): string {
  const lines = data.toString('latin1').split(/\r\n|\n/);
  const out: string[] = [];
  for (const line of lines) {
    let enc = '';
    let col = 0;
    for (let i = 0; i < line.length; i++) {
      const code = line.charCodeAt(i);
      const last = i === line.length - 1;
      let piece: string;
      if ((code >= 33 && code <= 126 && code !== 61) || ((code === 32 || code === 9) && !last)) piece = line[i]!;
      else piece = `=${code.toString(16).toUpperCase().padStart(2, '0')}`;
      if (i === 0 && line.startsWith('From ')) piece = '=46';
      if (i === 0 && line === '.') piece = '=2E';
      if (col + piece.length > 75) {
        enc += '=\r\n';
        col = 0;
      }
      enc += piece;
      col += piece.length;
    }
    out.push(enc);
  }
  return out.join('\r\n');
}

export function encodeBase64Lines(data: Buffer): string {
  return base64Lines(data).toString('latin1');
}

/** Replace (or add) one field of an entity's header, keeping the other fields as written. */
export function withField(header: Buffer, name: string, value: string | null): Buffer {
  const fields = headerFieldsRaw(header).filter((f) => f.name !== name.toLowerCase());
  if (value !== null) fields.push({ name, raw: `${name}: ${value}` });
  return Buffer.from(fields.map((f) => `${f.raw}\r\n`).join(''), 'latin1');
}

/**
 * The canonical form of an entity for signing: CRLF line ends, and every 8-bit or binary leaf
 * re-encoded (text as quoted-printable, the rest as base64), multiparts recursively. An entity
 * that is already 7-bit clean is returned byte for byte (after CRLF), as is what cannot be made
 * 7-bit without changing its meaning (an 8-bit header, a message/rfc822 with 8-bit content).
 */
export function canonicalEntity(entity: Buffer, depth = 0): Buffer {
  const crlf = toCrlf(entity);
  if (sevenBitClean(crlf) || depth > MAX_DEPTH) return crlf;
  const { header, bodyOffset } = splitHeader(crlf);
  const e = readEntity(crlf);
  const body = crlf.subarray(bodyOffset);
  const boundary = e.type.params.get('boundary');
  if (e.type.type.startsWith('multipart/') && boundary) {
    const layout = multipartLayout(body, boundary);
    const d = `--${boundary}`;
    const pieces: Buffer[] = [];
    if (layout.preamble.length && sevenBitClean(layout.preamble)) pieces.push(layout.preamble, CRLF);
    for (const p of layout.parts) pieces.push(Buffer.from(`${d}\r\n`), canonicalEntity(p, depth + 1), CRLF);
    pieces.push(Buffer.from(`${d}--\r\n`));
    if (layout.epilogue.length && sevenBitClean(layout.epilogue)) pieces.push(layout.epilogue);
    // A multipart's own encoding may only be 7bit, 8bit or binary; it is 7bit now.
    return Buffer.concat([withField(header, 'Content-Transfer-Encoding', null), CRLF, ...pieces]);
  }
  if (e.type.type.startsWith('message/') || e.encoding === 'base64' || e.encoding === 'quoted-printable') return crlf;
  if (!sevenBitClean(header)) return crlf;
  const raw = body;
  const text = e.type.type.startsWith('text/');
  const encoded = text ? encodeQuotedPrintable(raw) : encodeBase64Lines(raw);
  return Buffer.concat([withField(header, 'Content-Transfer-Encoding', text ? 'quoted-printable' : 'base64'), CRLF, Buffer.from(encoded, 'latin1')]);
}

/** multipart/signed around a canonical entity (RFC 8551 3.5.3 / RFC 1847), as an entity. */
export function multipartSigned(entity: Buffer, signature: SignatureSpec & { der?: Buffer; armored?: string }): Buffer {
  const boundary = newBoundary(entity);
  return Buffer.concat([Buffer.from(multipartSignedHead(boundary, signature)), entity, Buffer.from(multipartSignedTail(boundary, signature, signature.der ?? signature.armored!))]);
}

/** How the signature part of a multipart/signed is labelled. */
export interface SignatureSpec {
  protocol: string;
  micalg: string;
  filename: string;
  description: string;
}

/** What comes before the signed entity in multipartSigned() (sign-stream.ts writes the same bytes). */
export function multipartSignedHead(boundary: string, s: SignatureSpec): string {
  return `Content-Type: multipart/signed; protocol="${s.protocol}"; micalg=${s.micalg};\r\n boundary="${boundary}"\r\n\r\nThis is a cryptographically signed message in MIME format.\r\n\r\n--${boundary}\r\n`;
}

/** What comes after the signed entity: the signature part (DER as base64, or armoured text) and the closing delimiter. */
export function multipartSignedTail(boundary: string, s: SignatureSpec, signature: Buffer | string): string {
  const der = Buffer.isBuffer(signature);
  const sigBody = der ? encodeBase64Lines(signature) : signature;
  const sigHeader = der
    ? `Content-Type: ${s.protocol}; name="${s.filename}"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="${s.filename}"\r\nContent-Description: ${s.description}\r\n`
    : `Content-Type: ${s.protocol}; name="${s.filename}"\r\nContent-Description: ${s.description}\r\nContent-Disposition: attachment; filename="${s.filename}"\r\n`;
  return `\r\n--${boundary}\r\n${sigHeader}\r\n${sigBody}\r\n--${boundary}--\r\n`;
}

/**
 * `head` followed by `data` in base64 lines of 76 (CRLF), in one buffer: for a large message this
 * is the biggest object the worker builds, so no intermediate string of lines is made.
 */
export function withBase64Lines(head: string, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(head.length + base64LinesLength(data.length));
  const o = out.write(head, 0, 'latin1');
  return out.subarray(0, writeBase64Lines(data, out, o));
}

export type SmimeType = 'enveloped-data' | 'authEnveloped-data' | 'signed-data' | 'certs-only';

/** The Content-* header block of an application/pkcs7-mime entity, with its empty line. */
export function pkcs7Head(smimeType: SmimeType): string {
  const name = smimeType === 'certs-only' ? 'smime.p7c' : 'smime.p7m';
  const desc = smimeType === 'signed-data' ? 'S/MIME Signed Message' : smimeType === 'certs-only' ? 'S/MIME Certificates' : 'S/MIME Encrypted Message';
  return `Content-Type: application/pkcs7-mime; smime-type=${smimeType}; name="${name}"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="${name}"\r\nContent-Description: ${desc}\r\n\r\n`;
}

/** application/pkcs7-mime (RFC 8551 3.2) carrying a CMS object, as an entity. */
export function pkcs7MimeEntity(der: Buffer, smimeType: SmimeType): Buffer {
  return withBase64Lines(pkcs7Head(smimeType), der);
}

/** joinMessage(outer, pkcs7MimeEntity(der, type)) written once: no copy of the largest part. */
export function pkcs7MimeMessage(outer: Buffer, der: Buffer, smimeType: SmimeType): Buffer {
  return withBase64Lines(`${outer.toString('latin1')}MIME-Version: 1.0\r\n${pkcs7Head(smimeType)}`, der);
}
