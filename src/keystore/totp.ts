/**
 * One-time codes for the second factor of admin log-ins: TOTP (RFC 6238) over HOTP (RFC 4226),
 * and the base32 (RFC 4648) that authenticator apps exchange secrets in. node:crypto only.
 *
 * Admin accounts use SHA-1, 6 digits and 30-second steps: what every authenticator app assumes
 * when an otpauth:// URI names nothing else. The other hashes and lengths exist here only so the
 * RFC's own test vectors (which use 8 digits and SHA-256/512 too) can check this code.
 *
 * Untrusted input: codes typed by whoever signs in (only 6 ASCII digits are ever compared; the
 * comparison takes the same time whatever matches) and base32 text (refused unless well-formed).
 * Secrets: the shared secret — never logged, never in an error message.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type TotpHash = 'sha1' | 'sha256' | 'sha512';

export interface TotpParams {
  hash: TotpHash;
  digits: number;
  /** Seconds per step. */
  step: number;
}

/** What admin accounts use (and what an otpauth:// URI without parameters means). */
export const ADMIN_TOTP: Readonly<TotpParams> = Object.freeze({ hash: 'sha1', digits: 6, step: 30 });

/** RFC 4226 §4 R6: at least 128 bits, 160 recommended (one SHA-1 block of key). */
export const TOTP_SECRET_BYTES = 20;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export class TotpError extends Error {
  override readonly name = 'TotpError';
}

/** RFC 4648 §6 base32, upper case, without padding (as otpauth:// URIs carry it). */
export function base32Encode(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** Base32 as people copy it: any case, spaces and hyphens between groups, padding or none. */
export function base32Decode(text: string): Buffer {
  const s = text.replace(/[\s-]/g, '').replace(/=+$/, '').toUpperCase();
  // A length of 1, 3 or 6 (mod 8) leaves bits that are no whole byte: not base32 of anything.
  if (!/^[A-Z2-7]*$/.test(s) || [1, 3, 6].includes(s.length % 8)) throw new TotpError('not a base32 secret');
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of s) {
    value = (value << 5) | ALPHABET.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
    value &= (1 << bits) - 1;
  }
  return Buffer.from(out);
}

/** RFC 4226 §5.3: HMAC of the 8-byte counter, dynamic truncation, the low `digits` decimal digits. */
export function hotp(secret: Buffer, counter: bigint | number, digits = 6, hash: TotpHash = 'sha1'): string {
  if (!Number.isInteger(digits) || digits < 6 || digits > 10) throw new TotpError('a one-time code has 6 to 10 digits');
  const c = Buffer.alloc(8);
  c.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(hash, secret).update(c).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return (BigInt(binary) % 10n ** BigInt(digits)).toString().padStart(digits, '0');
}

/** RFC 6238 §4.2: the time step `at` falls in (T0 = the Unix epoch). */
export function totpStep(at: Date, step = ADMIN_TOTP.step): number {
  return Math.floor(at.getTime() / 1000 / step);
}

export function totp(secret: Buffer, at: Date, p: TotpParams = ADMIN_TOTP): string {
  return hotp(secret, totpStep(at, p.step), p.digits, p.hash);
}

/**
 * The step whose code `code` is, within `window` steps either side of `at` (clocks drift, people
 * type slowly), and later than `after` (the step last used: a code is good once); null when none.
 * Every step of the window is compared, in constant time, whatever matched.
 */
export function matchTotp(secret: Buffer, code: string, at: Date, opts: { window?: number; after?: number | null; params?: TotpParams } = {}): number | null {
  const p = opts.params ?? ADMIN_TOTP;
  const window = opts.window ?? 1;
  const typed = typeof code === 'string' ? code.replace(/\s/g, '') : '';
  if (typed.length !== p.digits || !/^[0-9]+$/.test(typed)) return null;
  const given = Buffer.from(typed, 'ascii');
  const now = totpStep(at, p.step);
  let found: number | null = null;
  for (let s = now - window; s <= now + window; s++) {
    const hit = timingSafeEqual(given, Buffer.from(hotp(secret, s, p.digits, p.hash), 'ascii'));
    if (hit && found === null && (opts.after == null || s > opts.after)) found = s;
  }
  return found;
}

export function newTotpSecret(): Buffer {
  return randomBytes(TOTP_SECRET_BYTES);
}

/**
 * The otpauth:// URI authenticator apps read (usually from a QR code): label "Issuer:account",
 * the issuer repeated as a parameter, as Google's Key Uri Format asks.
 */
export function otpauthUri(issuer: string, account: string, secret: Buffer): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  return `otpauth://totp/${label}?secret=${base32Encode(secret)}&issuer=${encodeURIComponent(issuer)}`;
}
