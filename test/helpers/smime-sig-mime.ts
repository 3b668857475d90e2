/**
 * Just enough MIME to feed corpus .eml files to the signature code: the exact bytes of the first
 * part of a multipart/signed (RFC 1847: between the boundary line's CRLF and the CRLF before the
 * next boundary), the base64 signature part, or the base64 body of application/pkcs7-mime, and the
 * From:/Date: headers. The real MIME layer (src/mime) is tested elsewhere; this stays a test helper.
 */

export interface SignedMail {
  from: string[];
  date?: Date;
  /** multipart/signed: the signed entity (exact bytes) and the signature DER. */
  content?: Buffer;
  signature?: Buffer;
  /** application/pkcs7-mime: the CMS DER. */
  opaque?: Buffer;
}

function splitHead(b: Buffer): { head: string; body: Buffer } {
  let i = b.indexOf('\r\n\r\n');
  let sep = 4;
  if (i < 0) {
    i = b.indexOf('\n\n');
    sep = 2;
  }
  if (i < 0) return { head: b.toString('latin1'), body: Buffer.alloc(0) };
  return { head: b.subarray(0, i).toString('latin1'), body: b.subarray(i + sep) };
}

function header(head: string, name: string): string | undefined {
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const m = unfolded.match(new RegExp(`^${name}:[ \\t]*(.*)$`, 'im'));
  return m?.[1]?.trim();
}

const param = (value: string, name: string): string | undefined => value.match(new RegExp(`${name}="?([^";]+)"?`, 'i'))?.[1];
const b64 = (body: Buffer) => Buffer.from(body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
const addresses = (v: string | undefined) => [...(v ?? '').matchAll(/[^\s<>,"]+@[^\s<>,"]+/g)].map((m) => m[0]);

export function splitSignedMail(eml: Buffer): SignedMail {
  const { head, body } = splitHead(eml);
  const from = addresses(header(head, 'From'));
  const dateText = header(head, 'Date');
  const date = dateText ? new Date(dateText) : undefined;
  const ct = header(head, 'Content-Type') ?? '';
  const base = { from, ...(date ? { date } : {}) };
  if (/^application\/(x-)?pkcs7-mime/i.test(ct)) return { ...base, opaque: b64(body) };
  if (!/^multipart\/signed/i.test(ct)) throw new Error(`not a signed message: ${ct}`);
  const boundary = param(ct, 'boundary');
  if (!boundary) throw new Error('multipart/signed without boundary');
  const delim = Buffer.from(`--${boundary}`);
  // Files stored with LF line ends (RFC 4134's) were signed in canonical CRLF form.
  const lf = !body.includes('\r\n');
  const eol = Buffer.from(lf ? '\n' : '\r\n');
  const first = body.indexOf(delim);
  const start = body.indexOf('\n', first) + 1;
  const next = body.indexOf(Buffer.concat([eol, delim]), start);
  const raw = body.subarray(start, next);
  const content = lf ? Buffer.from(raw.toString('latin1').replace(/\n/g, '\r\n'), 'latin1') : raw;
  const secondStart = body.indexOf('\n', next + eol.length) + 1;
  const end = body.indexOf(delim, secondStart);
  const sigPart = splitHead(body.subarray(secondStart, end));
  return { ...base, content: Buffer.from(content), signature: b64(sigPart.body) };
}
