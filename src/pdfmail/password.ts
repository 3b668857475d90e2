/**
 * PDF passwords as Postern makes them: the sender reads one to the recipient over the phone, the
 * recipient types it into a PDF reader. So the alphabet is lower case (no shift key, nothing to
 * say twice) without the characters that look or sound alike in print and in fonts: no 0/o (or
 * O), no 1/l/i (or I). Groups of four, joined by hyphens, for reading aloud.
 *
 * Uniform: each character is drawn by rejection sampling from crypto random bytes (a plain
 * `byte % 31` would favour the first characters of the alphabet).
 * Secrets: the password it returns; nothing is kept or logged here.
 */
import { randomBytes } from 'node:crypto';

/** 23 letters and 8 digits: a–z without i, l, o; 2–9. */
export const PDF_PASSWORD_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/** Characters drawn (hyphens excluded): 17 × log2(31) ≈ 84.2 bits, the first length past 80. */
export const PDF_PASSWORD_LENGTH = 17;

/** The entropy of a password from newPdfPassword, in bits. */
export const PDF_PASSWORD_ENTROPY_BITS = PDF_PASSWORD_LENGTH * Math.log2(PDF_PASSWORD_ALPHABET.length);

const GROUP = 4;
/** Bytes at or above this are rejected: 248 = 8 × 31, so every character is equally likely. */
const LIMIT = 256 - (256 % PDF_PASSWORD_ALPHABET.length);

/** A new random PDF password, e.g. `k7mq-x3ve-9dab-tfwh-r`. */
export function newPdfPassword(): string {
  const chars: string[] = [];
  while (chars.length < PDF_PASSWORD_LENGTH) {
    // A few spare bytes: 3 % of them are rejected, so one draw nearly always suffices.
    for (const b of randomBytes(PDF_PASSWORD_LENGTH + 4)) {
      if (b >= LIMIT) continue;
      chars.push(PDF_PASSWORD_ALPHABET[b % PDF_PASSWORD_ALPHABET.length]!);
      if (chars.length === PDF_PASSWORD_LENGTH) break;
    }
  }
  const groups: string[] = [];
  for (let i = 0; i < chars.length; i += GROUP) groups.push(chars.slice(i, i + GROUP).join(''));
  return groups.join('-');
}
