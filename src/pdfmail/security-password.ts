/**
 * The password as the cipher hashes it. Revision 6 takes UTF-8 after SASLprep (RFC 4013, named by
 * ISO 32000-2 §7.6.4.3.3) cut to 127 bytes; revision 4 takes PDFDocEncoding bytes cut to 32.
 *
 * SASLprep maps (NBSP to space, soft hyphen to nothing) and applies NFKC ("ﬁ" to "fi", a
 * decomposed "u\u0308" to "ü"). Acrobat prepares what the reader types; qpdf 11, poppler 22 and
 * MuPDF 1.21 hash the typed bytes as they are (measured). A password that SASLprep changes would
 * therefore open the file in one reader and not in another, so it is refused: the caller stores
 * and tells the normalised form (`normalisePdfPassword`), which every reader accepts as typed.
 * Revision 4 in addition refuses what PDFDocEncoding cannot carry, rather than silently making a
 * password nobody can type.
 *
 * Errors name the problem, never the password.
 */
import { PdfSecurityError } from './security-errors.js';

/** RFC 3454 C.1.2: non-ASCII spaces, mapped to U+0020. */
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;
/** RFC 3454 B.1: "commonly mapped to nothing" (soft hyphen, joiners, variation selectors, BOM). */
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;

/**
 * RFC 4013 §2.3 prohibited output, RFC 3454 tables C.1.2–C.9: spaces other than U+0020, controls,
 * private use, non-characters, surrogates, the plain-text-inappropriate and display-changing
 * characters (bidi embeddings and overrides among them), tagging characters.
 */
const PROHIBITED = new RegExp(
  [
    '[\\u00A0\\u1680\\u2000-\\u200B\\u202F\\u205F\\u3000]', // C.1.2
    '[\\u0000-\\u001F\\u007F]', // C.2.1
    '[\\u0080-\\u009F\\u06DD\\u070F\\u180E\\u200C\\u200D\\u2028\\u2029\\u2060-\\u2063\\u206A-\\u206F\\uFEFF\\uFFF9-\\uFFFC]', // C.2.2
    '[\\u{1D173}-\\u{1D17A}]', // C.2.2 (musical controls)
    '[\\uE000-\\uF8FF\\u{F0000}-\\u{FFFFD}\\u{100000}-\\u{10FFFD}]', // C.3
    '[\\uFDD0-\\uFDEF\\uFFFE\\uFFFF\\u{1FFFE}\\u{1FFFF}\\u{2FFFE}\\u{2FFFF}\\u{3FFFE}\\u{3FFFF}\\u{4FFFE}\\u{4FFFF}\\u{5FFFE}\\u{5FFFF}\\u{6FFFE}\\u{6FFFF}\\u{7FFFE}\\u{7FFFF}\\u{8FFFE}\\u{8FFFF}\\u{9FFFE}\\u{9FFFF}\\u{AFFFE}\\u{AFFFF}\\u{BFFFE}\\u{BFFFF}\\u{CFFFE}\\u{CFFFF}\\u{DFFFE}\\u{DFFFF}\\u{EFFFE}\\u{EFFFF}\\u{10FFFE}\\u{10FFFF}]', // C.4
    '[\\uD800-\\uDFFF]', // C.5 (lone surrogates; a well-formed pair is one code point under /u)
    '[\\uFFF9-\\uFFFD]', // C.6
    '[\\u2FF0-\\u2FFB]', // C.7
    '[\\u0340\\u0341\\u200E\\u200F\\u202A-\\u202E\\u206A-\\u206F]', // C.8
    '[\\u{E0001}\\u{E0020}-\\u{E007F}]', // C.9
    '\\p{Cn}', // RFC 4013 §2.5: no unassigned code points in a stored string (current Unicode, not 3.2)
  ].join('|'),
  'u',
);

/** RFC 3454 D.1 (RandALCat) approximated by the right-to-left scripts' letters and marks. */
const RAND_AL = /[\u05BE\u05C0\u05C3\u05D0-\u05F4\u0600-\u07BF\u07C0-\u08FF\u200F\uFB1D-\uFDFF\uFE70-\uFEFC\u{10800}-\u{10FFF}\u{1E800}-\u{1EFFF}]/u;
/** RFC 3454 D.2 (LCat) approximated by letters of the left-to-right scripts. */
const L_CAT = /(?![\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFC\u{10800}-\u{10FFF}\u{1E800}-\u{1EFFF}])\p{L}/u;

/**
 * RFC 4013 SASLprep of a stored string: map, NFKC, refuse prohibited output and mixed direction.
 * The form a PDF password should be stored and told in (see the header).
 */
export function normalisePdfPassword(input: string): string {
  const mapped = input.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '');
  const out = mapped.normalize('NFKC');
  if (PROHIBITED.test(out)) {
    throw new PdfSecurityError('the PDF password contains a character SASLprep (RFC 4013) prohibits: control, private-use, unassigned or direction-changing', 'password-unusable');
  }
  if (RAND_AL.test(out)) {
    const chars = [...out];
    if (L_CAT.test(out) || !RAND_AL.test(chars[0]!) || !RAND_AL.test(chars[chars.length - 1]!)) {
      throw new PdfSecurityError('the PDF password mixes right-to-left and left-to-right letters in a way SASLprep (RFC 4013) refuses', 'password-unusable');
    }
  }
  return out;
}

/** The password, refused if empty or not in its SASLprep form (see the header). */
function prepared(password: string): string {
  if (password.length === 0) throw new PdfSecurityError('the PDF password is empty', 'password-unusable');
  if (normalisePdfPassword(password) !== password) {
    throw new PdfSecurityError(
      'the PDF password is not in its normalised form (SASLprep: a ligature, a decomposed accent, a special space or an invisible character), so some readers would not open the file; store and tell the normalised form',
      'password-unusable',
    );
  }
  return password;
}

/** Revision 6: SASLprep'd UTF-8, at most 127 bytes (cut at a byte boundary, as the standard says). */
export function r6PasswordBytes(password: string): Buffer {
  return Buffer.from(prepared(password), 'utf8').subarray(0, 127);
}

/**
 * Revision 4: PDFDocEncoding, which agrees with Latin-1 on the printable ASCII and U+00A1–U+00FF
 * but for U+00AD, and differs (or is undefined) on the controls, U+0080–U+00A0 (0xA0 is the euro
 * sign there) and U+00AD; those are refused with everything beyond Latin-1. Longer than 32 bytes is cut by the algorithm itself.
 */
export function r4PasswordBytes(password: string): Buffer {
  const text = prepared(password);
  if (!/^[\u0020-\u007E\u00A1-\u00AC\u00AE-\u00FF]*$/.test(text)) {
    throw new PdfSecurityError(
      'the PDF password has characters outside Latin-1, which AES-128 (revision 4) PDFs cannot carry; use aes-256 or a Latin-1 password',
      'password-unusable',
    );
  }
  return Buffer.from(text, 'latin1');
}
