/**
 * Base64 in lines of 76 characters ended by CRLF (RFC 2045 6.8), written straight into a Buffer.
 * The obvious way — toString('base64'), then a slice and a latin1 write per line — made a 10 MB
 * S/MIME message spend more CPU on base64 than on AES and SHA-256 together (Node 20's encoder is
 * scalar, and each of the ~180,000 lines cost a string slice and a write). Here a table gives the
 * two characters of every 12 bits, stored as one 16-bit write, and the CRLF of a line as another:
 * 57 input bytes are 19 groups of 3, so a line is 39 such writes and stays 2-byte aligned.
 *
 * Untrusted input: any bytes; the output depends only on them (no state, no line over 76).
 */
import { endianness } from 'node:os';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Input bytes per full line (76 characters). */
export const LINE_BYTES = 57;
const LINE_OUT = 78;
const LITTLE = endianness() === 'LE';

/** The two characters for each 12-bit value, in the byte order a Uint16Array store puts them. */
const PAIRS = new Uint16Array(4096);
for (let v = 0; v < 4096; v++) {
  const a = ALPHABET.charCodeAt(v >> 6);
  const b = ALPHABET.charCodeAt(v & 63);
  PAIRS[v] = LITTLE ? a | (b << 8) : (a << 8) | b;
}
const CRLF16 = LITTLE ? 0x0a0d : 0x0d0a;
const CHARS = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));

/** Bytes base64Lines() writes for `n` input bytes. */
export function base64LinesLength(n: number): number {
  const whole = Math.floor(n / LINE_BYTES);
  const rest = n - whole * LINE_BYTES;
  return whole * LINE_OUT + (rest ? Math.ceil(rest / 3) * 4 + 2 : 0);
}

/**
 * Write `data` as base64 lines (each, the last too, ended by CRLF) into `out` at `at`; returns
 * the offset after it. `out` must have base64LinesLength(data.length) bytes free there.
 */
export function writeBase64Lines(data: Uint8Array, out: Buffer, at: number): number {
  const whole = Math.floor(data.length / LINE_BYTES);
  let o = at;
  if (whole > 0) o = (out.byteOffset + at) % 2 === 0 ? wholeLines16(data, whole, out, at) : wholeLines8(data, whole, out, at);
  const rest = data.length - whole * LINE_BYTES;
  if (rest) {
    o += out.write(Buffer.from(data.buffer, data.byteOffset + whole * LINE_BYTES, rest).toString('base64'), o, 'latin1');
    out[o++] = 0x0d;
    out[o++] = 0x0a;
  }
  return o;
}

/** `data` as base64 lines, in a new Buffer. */
export function base64Lines(data: Uint8Array): Buffer {
  // Its own ArrayBuffer at offset 0: the 16-bit stores are aligned.
  const out = Buffer.allocUnsafeSlow(base64LinesLength(data.length));
  writeBase64Lines(data, out, 0);
  return out;
}

function wholeLines16(data: Uint8Array, lines: number, out: Buffer, at: number): number {
  const u16 = new Uint16Array(out.buffer, out.byteOffset + at, (lines * LINE_OUT) / 2);
  const end = lines * LINE_BYTES;
  let o = 0;
  let col = 0;
  for (let i = 0; i < end; i += 3) {
    const n = (data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!;
    u16[o] = PAIRS[n >>> 12]!;
    u16[o + 1] = PAIRS[n & 4095]!;
    o += 2;
    if (++col === 19) {
      u16[o++] = CRLF16;
      col = 0;
    }
  }
  return at + lines * LINE_OUT;
}

/** The same for an odd offset (a header of odd length in front): byte stores. */
function wholeLines8(data: Uint8Array, lines: number, out: Buffer, at: number): number {
  const end = lines * LINE_BYTES;
  let o = at;
  let col = 0;
  for (let i = 0; i < end; i += 3) {
    const n = (data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!;
    out[o] = CHARS[n >>> 18]!;
    out[o + 1] = CHARS[(n >>> 12) & 63]!;
    out[o + 2] = CHARS[(n >>> 6) & 63]!;
    out[o + 3] = CHARS[n & 63]!;
    o += 4;
    if (++col === 19) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
      col = 0;
    }
  }
  return o;
}
