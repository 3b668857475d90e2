/**
 * Inline PGP: an armored OpenPGP message or a clear-signed text (RFC 9580 §7) as the body of a
 * text part. Outbound, plain-text mail only (the body is encrypted, or clear-signed, as one
 * armored block; anything with parts or HTML needs PGP/MIME, message.ts). Inbound, the reading
 * side: is a text body exactly one armored block (nothing an attacker could have put around it:
 * EFAIL), the cleartext and its signature as bytes, and the text of an HTML body.
 *
 * Untrusted input: decoded text bodies of incoming mail; every function is linear and returns
 * null rather than throwing.
 */
import * as openpgp from 'openpgp';
import { decodeBody, encodeQuotedPrintable, joinMessage, readEntity, splitMessage, toCrlf } from '../mime/index.js';
import { crlfArmor, encryptData, OUT_CONFIG, type PgpEncryptOptions } from './message.js';
import { PgpError } from './pgp-errors.js';
import type { PgpRecipient } from './prepared.js';

const BEGIN_MESSAGE = '-----BEGIN PGP MESSAGE-----';
const END_MESSAGE = '-----END PGP MESSAGE-----';
const BEGIN_SIGNED = '-----BEGIN PGP SIGNED MESSAGE-----';
const BEGIN_SIGNATURE = '-----BEGIN PGP SIGNATURE-----';
const END_SIGNATURE = '-----END PGP SIGNATURE-----';

/** The text of a body in its declared charset (unknown charsets read as Latin-1: never a throw). */
export function textOf(body: Buffer, charset: string | undefined): string {
  const cs = (charset ?? 'us-ascii').trim().toLowerCase();
  if (cs === 'utf-8' || cs === 'utf8' || cs === 'us-ascii' || cs === 'ascii') return body.toString('utf8');
  try {
    return new TextDecoder(cs).decode(body);
  } catch {
    return body.toString('latin1');
  }
}

/**
 * Armor as mail clients mangle it, made readable again: no-break spaces (Outlook writes one into
 * the empty separator line, as =C2=A0), indentation and trailing blanks. Base64 has no
 * significant white space, so trimming each line changes nothing that is signed or encrypted.
 */
export function cleanArmor(text: string): string {
  // Empty lines dropped (HTML adds some, and may lose the separator), then the one after the
  // armor headers put back: base64 lines never contain ": ", header lines always do.
  const lines = text
    .split(/\r\n|\r|\n/)
    .map((l) => l.replace(/[\s\u00a0]+$/u, '').replace(/^[\s\u00a0]+/u, ''))
    .filter((l) => l !== '');
  let i = 1;
  while (i < lines.length && /^[A-Za-z][A-Za-z-]*: /.test(lines[i]!)) i++;
  return [...lines.slice(0, i), '', ...lines.slice(i)].join('\n');
}

export type InlineKind = { kind: 'encrypted'; armored: string } | { kind: 'signed'; text: string } | { kind: 'partial-encrypted' } | { kind: 'partial-signed'; text: string } | null;

/** What an inline text body is: one armored message, one clear-signed text, either among other text, or neither. */
export function inlineKind(text: string): InlineKind {
  const begin = text.indexOf(BEGIN_MESSAGE);
  const signed = text.indexOf(BEGIN_SIGNED);
  if (begin < 0 && signed < 0) return null;
  const trimmed = text.replace(/^[\s\u00a0]+|[\s\u00a0]+$/gu, '');
  if (begin >= 0 && (signed < 0 || begin < signed)) {
    const end = text.indexOf(END_MESSAGE, begin);
    const whole = trimmed.startsWith(BEGIN_MESSAGE) && trimmed.endsWith(END_MESSAGE) && text.indexOf(BEGIN_MESSAGE, begin + 1) < 0 && end >= 0;
    return whole ? { kind: 'encrypted', armored: cleanArmor(trimmed) } : { kind: 'partial-encrypted' };
  }
  const endSig = text.indexOf(END_SIGNATURE, signed);
  if (endSig < 0) return null;
  const whole = trimmed.startsWith(BEGIN_SIGNED) && trimmed.endsWith(END_SIGNATURE) && text.indexOf(BEGIN_SIGNED, signed + 1) < 0;
  const block = text.slice(signed, endSig + END_SIGNATURE.length);
  return whole ? { kind: 'signed', text: block } : { kind: 'partial-signed', text: block };
}

export interface Cleartext {
  /** The signed text as RFC 9580 §7.2 hashes it: dash-unescaped, CRLF, no trailing blanks, no last line break. */
  signedText: string;
  /** The same lines dash-unescaped but otherwise as received (LF, blanks kept): what a binary-mode (0x00) signature covers. */
  rawText: string;
  armoredSignature: string;
}

/** The parts of a clear-signed block (the framework's rules applied here, on the text as received). */
export function parseCleartext(block: string): Cleartext | null {
  const lines = block.split(/\r\n|\r|\n/);
  let i = lines.findIndex((l) => l.trimEnd() === BEGIN_SIGNED);
  if (i < 0) return null;
  // Armor headers ("Hash: SHA256"), then one empty line.
  for (i++; i < lines.length && lines[i]!.trim() !== ''; i++) if (!/^[A-Za-z]+: /.test(lines[i]!)) return null;
  const start = i + 1;
  const sigAt = lines.findIndex((l, n) => n >= start && l.trimEnd() === BEGIN_SIGNATURE);
  if (sigAt < 0) return null;
  const unescaped = lines.slice(start, sigAt).map((l) => (l.startsWith('- ') ? l.slice(2) : l));
  const text = unescaped.map((l) => l.replace(/[ \t]+$/, '')).join('\r\n');
  const endAt = lines.findIndex((l, n) => n > sigAt && l.trim() === END_SIGNATURE);
  if (endAt < 0) return null;
  return { signedText: text, rawText: unescaped.join('\n'), armoredSignature: cleanArmor(lines.slice(sigAt, endAt + 1).join('\n')) };
}

const ENTITIES: Record<string, string> = { nbsp: '\u00a0', lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * The visible text of an HTML body, enough to find armor in it (no layout, no scripts or styles).
 * Empty lines are dropped (markup adds them) unless `keepEmptyLines`: a clear-signed text needs its
 * own (the one after the armor headers, and those inside the signed text).
 */
export function htmlText(html: string, keepEmptyLines = false): string {
  const text = html
    .replace(/<(head|style|script|title)\b[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<br\s*\/?>|<\/(div|p|pre|tr|li|h\d)\s*>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
      if (e[0] === '#') {
        const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return code > 0 && code < 0x110000 ? String.fromCodePoint(code) : m;
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    });
  return keepEmptyLines ? text : text.replace(/\n[\s\u00a0]*\n/g, '\n');
}

/** A text/plain entity (UTF-8 unless said otherwise), quoted-printable when it is not 7-bit. */
export function textEntity(text: Buffer | string, charset = 'utf-8'): Buffer {
  const data = toCrlf(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
  // The charset may come from the incoming message: a token, or nothing.
  if (!/^[A-Za-z0-9_.:-]{1,40}$/.test(charset)) charset = 'utf-8';
  const sevenBit = !data.some((c) => c >= 0x80) && !data.toString('latin1').split('\r\n').some((l) => l.length > 998);
  const cte = sevenBit ? '7bit' : 'quoted-printable';
  const body = sevenBit ? data : Buffer.from(encodeQuotedPrintable(data), 'latin1');
  return Buffer.concat([Buffer.from(`Content-Type: text/plain; charset=${charset}\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n`, 'latin1'), body]);
}

/**
 * Inline PGP for text-only mail: the text/plain body encrypted (and signed inside) as one armored
 * block, or — without recipients — clear-signed. Anything else is refused: HTML or attachments
 * would go out as plaintext beside the armor.
 */
export async function pgpInlineMessage(message: Buffer, recipients: PgpRecipient[], opts: PgpEncryptOptions = {}): Promise<Buffer> {
  const { outer, entity } = splitMessage(toCrlf(message));
  const e = readEntity(entity);
  if (e.type.type !== 'text/plain') throw new PgpError(`inline PGP is for plain-text mail only; this message is ${e.type.type}: use PGP/MIME`, 'not-text');
  const disposition = (e.headers.get('content-disposition')?.[0] ?? '').trim().toLowerCase();
  if (disposition.startsWith('attachment')) throw new PgpError('inline PGP is for plain-text mail only; this message is a text attachment: use PGP/MIME', 'not-text');
  // The armored text is UTF-8 inside: what the body said in its own charset, re-encoded once.
  const text = textOf(decodeBody(e), e.type.params.get('charset')).replace(/\r\n|\r/g, '\n');
  if (recipients.length) {
    const { armored } = await encryptData(text, recipients, opts);
    return joinMessage(outer, textEntity(armored));
  }
  if (!opts.signer) throw new PgpError('inline PGP needs recipients or a signer', 'no-recipient');
  let signed: string;
  try {
    const cleartext = await openpgp.createCleartextMessage({ text });
    signed = await openpgp.sign({ message: cleartext, signingKeys: opts.signer.key, config: OUT_CONFIG, ...(opts.date ? { date: opts.date } : {}) });
  } catch (err) {
    throw new PgpError(`OpenPGP signing with ${opts.signer.fingerprint} failed: ${(err as Error).message.replace(/^Error: /, '')}`, 'sign-failed', { cause: err });
  }
  return joinMessage(outer, textEntity(`${crlfArmor(signed)}\r\n`));
}
