/**
 * scrypt with its cost stored beside what it made, as a PHC string
 * (`$scrypt$ln=15,r=8,p=1$<salt>[$<hash>]`, base64 without padding), so the cost can be raised for
 * new passwords without breaking old ones. Shared by the PDF password verifiers (pdf-verifier.ts)
 * and the webmail account keys (webmail-crypto.ts), both KEK-free: node:crypto only.
 *
 * Passwords are hashed in NFKC, so a password typed on another keyboard or OS (composed or
 * decomposed umlauts, full-width digits) derives the same key.
 *
 * Untrusted input: cost strings read back from a database (parsed with bounds: a damaged or forged
 * cost cannot make scrypt eat the machine) and passwords (length-checked by the callers).
 * Secrets: passwords and the derived bytes; never logged or put in an error message. Each caller
 * passes its own error class, so a damaged PDF verifier stays a PdfPasswordError.
 */
import { randomBytes, scrypt } from 'node:crypto';

export interface ScryptCost {
  N: number;
  r: number;
  p: number;
}

export type ErrorClass = new (message: string) => Error;

/** Bounds for a cost read from a database: 2^10 (tests) to 256 MiB of memory. */
const MIN_LN = 10;
const MAX_MEMORY = 256 * 1024 * 1024;
export const SALT_BYTES = 16;
const HASH_BYTES = 32;

export const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

/** The password as hashed: NFKC (what SASLprep does for a PDF reader; any keyboard for webmail). */
export function passwordBytes(password: string): Buffer {
  return Buffer.from(password.normalize('NFKC'), 'utf8');
}

export function checkCost(c: ScryptCost, Err: ErrorClass): void {
  const ln = Math.log2(c.N);
  const ok =
    Number.isInteger(ln) && ln >= MIN_LN && Number.isInteger(c.r) && c.r >= 1 && c.r <= 32 && Number.isInteger(c.p) && c.p >= 1 && c.p <= 16 &&
    128 * c.N * c.r <= MAX_MEMORY;
  if (!ok) throw new Err(`scrypt cost N=${c.N}, r=${c.r}, p=${c.p} is outside what Postern accepts`);
}

/** 32 bytes of scrypt(NFKC(password), salt) at `cost`. */
export function runScrypt(password: string, salt: Buffer, cost: ScryptCost, Err: ErrorClass): Promise<Buffer> {
  checkCost(cost, Err);
  const secret = passwordBytes(password);
  // Node's default maxmem (32 MiB) is just below what N=2^15, r=8 asks.
  const maxmem = 128 * cost.N * cost.r + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, HASH_BYTES, { N: cost.N, r: cost.r, p: cost.p, maxmem }, (err, key) => {
      secret.fill(0);
      if (err) reject(new Err(`scrypt failed (N=${cost.N}, r=${cost.r}, p=${cost.p}): ${err.message}`));
      else resolve(key);
    });
  });
}

export interface Phc extends ScryptCost {
  salt: Buffer;
  hash?: Buffer;
}

const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{22})(?:\$([A-Za-z0-9+/]{43}))?$/;

/** A stored PHC string read back; `what` names it in the error ("PDF password verifier"). */
export function parsePhc(s: string, what: string, Err: ErrorClass): Phc {
  const m = typeof s === 'string' ? PHC.exec(s) : null;
  if (!m) throw new Err(`the stored ${what} is damaged (not a $scrypt$ string)`);
  const phc: Phc = { N: 2 ** Number(m[1]), r: Number(m[2]), p: Number(m[3]), salt: Buffer.from(m[4]!, 'base64') };
  if (m[5]) phc.hash = Buffer.from(m[5], 'base64');
  checkCost(phc, Err);
  return phc;
}

/** The PHC string without a hash: the cost and the salt. */
export const phcHead = (c: ScryptCost, salt: Buffer) => `$scrypt$ln=${Math.log2(c.N)},r=${c.r},p=${c.p}$${b64(salt)}`;

/** Parameters for a new derivation: the cost and a fresh salt (no hash: what it makes is a key, never stored). */
export function newKdf(cost: ScryptCost, Err: ErrorClass): string {
  checkCost(cost, Err);
  return phcHead(cost, randomBytes(SALT_BYTES));
}
