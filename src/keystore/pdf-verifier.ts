/**
 * What can be done with a PDF password without the KEK: check it against its verifier, and open
 * the reply-link data sealed under a key derived from it. The Internet-facing portal (which holds
 * no KEK, DESIGN §1) needs both; the worker uses the same functions to make them. Like public.ts,
 * this module imports nothing that can unseal (no kek/, no SQLite): node:crypto only.
 *
 * Two derivations from one password, each with its own salt, so that one stored value never helps
 * with the other:
 * - the verifier: scrypt(password, salt) stored in full as a PHC string
 *   (`$scrypt$ln=15,r=8,p=1$<salt>$<hash>`, base64 without padding), its cost stored beside it so
 *   it can be raised for new passwords without breaking old ones;
 * - the content root: scrypt(password, another salt), never stored in clear (the worker keeps it
 *   sealed under the KEK with the password, so making a reply link costs no scrypt); each reply
 *   link's data is AES-256-GCM under HKDF-SHA256(root, the link's own salt).
 * A copy of the database therefore reveals neither the reply-link data nor anything cheaper to
 * attack than one scrypt per guess; generated passwords have over 80 bits.
 *
 * Passwords are compared in NFKC (what the PDF 2.0 security handler's SASLprep does to what the
 * reader types), so an admin-set "Passwört" checks the same in the portal as in the reader.
 *
 * Untrusted input: passwords and reply tokens typed or clicked on the Internet (bounded and
 * format-checked before any work); stored verifier and KDF strings (parsed with bounds: a damaged
 * or forged cost cannot make scrypt eat the machine). Secrets: passwords and derived keys, never
 * logged or put in an error message.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { newKdf, parsePhc as parseScryptPhc, phcHead, runScrypt as scryptWith, SALT_BYTES, b64, type ScryptCost } from './scrypt.js';

export type { ScryptCost } from './scrypt.js';

/**
 * New verifiers and content roots: N=2^15, r=8 (32 MiB). Measured on the 2-core build machine
 * under load: 75–160 ms, 2^14 took 30–75 ms; a login pays it once (opening a reply link once more).
 */
export const PDF_SCRYPT: Readonly<ScryptCost> = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

/** PDF 2.0 passes at most 127 UTF-8 bytes of the password to its hash; more would never be checked. */
export const MAX_PDF_PASSWORD_BYTES = 127;

export class PdfPasswordError extends Error {
  override readonly name = 'PdfPasswordError';
}

const runScrypt = (password: string, salt: Buffer, cost: ScryptCost) => scryptWith(password, salt, cost, PdfPasswordError);
const parsePhc = (s: string, what: string) => parseScryptPhc(s, what, PdfPasswordError);

/** A verifier for `password`: what the portal checks a typed password against. */
export async function makePdfVerifier(password: string, cost: ScryptCost = PDF_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await runScrypt(password, salt, cost);
  return `${phcHead(cost, salt)}$${b64(hash)}`;
}

/**
 * Whether `password` is the one `verifier` was made from (constant-time compare). Throws
 * PdfPasswordError when the verifier itself is damaged, so a broken row is not mistaken for a
 * wrong password.
 */
export async function verifyPdfPassword(verifier: string | { verifier: string }, password: string): Promise<boolean> {
  const v = parsePhc(typeof verifier === 'string' ? verifier : verifier.verifier, 'PDF password verifier');
  if (!v.hash) throw new PdfPasswordError('the stored PDF password verifier is damaged (no hash)');
  if (!plausiblePassword(password)) return false;
  const hash = await runScrypt(password, v.salt, v);
  return timingSafeEqual(hash, v.hash);
}

/** Worth hashing at all: non-empty and not longer than a PDF reader would take. */
function plausiblePassword(password: string): boolean {
  return typeof password === 'string' && password.length > 0 && Buffer.byteLength(password.normalize('NFKC'), 'utf8') <= MAX_PDF_PASSWORD_BYTES;
}

/** Parameters of a new content root: the cost and a salt of its own (no hash: the root is never stored in clear). */
export function newContentKdf(cost: ScryptCost = PDF_SCRYPT): string {
  return newKdf(cost, PdfPasswordError);
}

/** The key root of the reply-link data, from the password and the pair's content KDF string. */
export async function contentRoot(password: string, kdf: string): Promise<Buffer> {
  const k = parsePhc(kdf, 'reply-link key parameters');
  if (k.hash) throw new PdfPasswordError('the stored reply-link key parameters are damaged (a hash where none belongs)');
  return runScrypt(password, k.salt, k);
}

// ---- reply tokens ------------------------------------------------------------------------------

/** 24 random bytes (192 bits), base64url without padding: 32 characters in a URL. */
const TOKEN_BYTES = 24;
const TOKEN_FORMAT = /^[A-Za-z0-9_-]{32}$/;

/** A new reply token and the hash under which it is stored (the token itself never is). */
export function newReplyToken(): { token: string; hash: string } {
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  return { token, hash: replyTokenHash(token)! };
}

/** The stored hash of a token, or null when `token` cannot be one of ours (checked before any look-up). */
export function replyTokenHash(token: string): string | null {
  if (typeof token !== 'string' || !TOKEN_FORMAT.test(token)) return null;
  return createHash('sha256').update(token, 'ascii').digest('hex');
}

/** What a reply link remembers of the message it was made for: mail content, so sealed. */
export interface ReplyData {
  /** The original Message-ID, for In-Reply-To of the reply. */
  messageId: string;
  subject: string;
  /** The original sender as shown to the recipient. */
  sender: string;
}

export interface SealedReplyData {
  salt: Buffer;
  iv: Buffer;
  /** Ciphertext ‖ 16-byte GCM tag. */
  ciphertext: Buffer;
}

/**
 * Binds a reply link's sealed data to its token and pair, so rows cannot be swapped. (The text
 * names the table the links were first kept in, postern.db's reply_tokens: links made then still open.)
 */
export const replyAad = (tokenHash: string, senderKey: string, recipientKey: string) => `postern:reply_tokens:${tokenHash}:${senderKey}:${recipientKey}`;

/** Hostile mail can bring megabyte subjects; the page shows a line. Cut at code points, never inside a surrogate pair. */
const LIMITS: Record<keyof ReplyData, number> = { messageId: 998, subject: 2000, sender: 998 };
const clip = (s: string, n: number) => (s.length <= n ? s : Array.from(s).slice(0, n).join(''));

function replyKey(root: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', root, salt, 'postern reply link v1', 32));
}

/**
 * Seal `data` under the content root; `aad` binds it to its token and pair (see store-pdf.ts).
 * AES-GCM is written out here rather than taken from kek/aead.ts: the portal may load nothing
 * under kek/ (test/integration/role-imports.test.ts).
 */
export function sealReplyData(root: Buffer, data: ReplyData, aad: string): SealedReplyData {
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(12);
  const key = replyKey(root, salt);
  try {
    const plain = Buffer.from(
      JSON.stringify({ v: 1, m: clip(data.messageId, LIMITS.messageId), s: clip(data.subject, LIMITS.subject), f: clip(data.sender, LIMITS.sender) }),
      'utf8',
    );
    const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
    c.setAAD(Buffer.from(aad, 'utf8'));
    const ciphertext = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
    plain.fill(0);
    return { salt, iv, ciphertext };
  } finally {
    key.fill(0);
  }
}

/** The sealed data, or null when the root is wrong (a wrong password) or the row was altered. */
export function openReplyData(root: Buffer, sealed: SealedReplyData, aad: string): ReplyData | null {
  if (sealed.iv.length !== 12 || sealed.ciphertext.length < 16 || sealed.salt.length !== SALT_BYTES) return null;
  const key = replyKey(root, sealed.salt);
  try {
    const d = createDecipheriv('aes-256-gcm', key, sealed.iv, { authTagLength: 16 });
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(sealed.ciphertext.subarray(sealed.ciphertext.length - 16));
    const plain = Buffer.concat([d.update(sealed.ciphertext.subarray(0, sealed.ciphertext.length - 16)), d.final()]);
    const o = JSON.parse(plain.toString('utf8')) as Record<string, unknown>;
    if (o.v !== 1 || typeof o.m !== 'string' || typeof o.s !== 'string' || typeof o.f !== 'string') return null;
    return { messageId: o.m, subject: o.s, sender: o.f };
  } catch {
    return null;
  } finally {
    key.fill(0);
  }
}
