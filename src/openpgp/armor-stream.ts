/**
 * ASCII armour (RFC 9580 6.2) of a binary OpenPGP message that streams, written as the Buffer
 * path's openpgp.armor() + crlfArmor() write it — the same header line and empty line, base64 in
 * lines of 60 characters, the CRC-24 line when asked (v4 peers such as gpg 2.2 want it), the same
 * footer — but with CRLF line ends and in Buffers. openpgp.js' own streamed armour builds strings
 * of every line and chunk: on a 50 MB message it cost the worker about 30 MB of RSS and a second
 * of CPU (measured), for text that goes to the spool as bytes anyway.
 *
 * Untrusted input: none (our own ciphertext).
 */

/** 60 characters of base64 per line, as openpgp.js writes them. */
const LINE_BYTES = 45;
const LINE_CHARS = 60;
/** Input bytes encoded per output chunk (a multiple of 45): ~256 KB of output. */
const BATCH = LINE_BYTES * 4300;

/** RFC 9580 6.1: CRC-24 with generator 0x864CFB, initialised with 0xB704CE. */
const CRC_TABLE = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 16;
  for (let j = 0; j < 8; j++) c = (c << 1) & 0x1000000 ? ((c << 1) ^ 0x1864cfb) & 0xffffff : (c << 1) & 0xffffff;
  CRC_TABLE[i] = c;
}

export function crc24(crc: number, data: Uint8Array): number {
  let c = crc;
  for (let i = 0; i < data.length; i++) c = ((c << 8) & 0xffffff) ^ CRC_TABLE[((c >>> 16) ^ data[i]!) & 0xff]!;
  return c;
}
export const CRC24_INIT = 0xb704ce;

/** Base64 of `data` (a multiple of 45 bytes, or the last piece) in CRLF-ended lines of 60. */
function lines(data: Uint8Array): Buffer {
  const b64 = Buffer.from(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'), 'latin1');
  const count = Math.ceil(b64.length / LINE_CHARS);
  const out = Buffer.allocUnsafe(b64.length + count * 2);
  let o = 0;
  for (let i = 0; i < b64.length; i += LINE_CHARS) {
    o += b64.copy(out, o, i, Math.min(i + LINE_CHARS, b64.length));
    out[o++] = 0x0d;
    out[o++] = 0x0a;
  }
  return out;
}

/**
 * The armoured message, ending with the footer line without its line break (the MIME writer
 * adds it, as crlfArmor() leaves it for multipartEncrypted()).
 */
export async function* armoredMessageChunks(binary: AsyncIterable<Uint8Array>, checksum: boolean): AsyncGenerator<Buffer> {
  yield Buffer.from('-----BEGIN PGP MESSAGE-----\r\n\r\n', 'latin1');
  let crc = CRC24_INIT;
  let rest: Uint8Array = new Uint8Array(0);
  for await (const chunk of binary) {
    if (!chunk.length) continue;
    if (checksum) crc = crc24(crc, chunk);
    let data = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    while (data.length >= BATCH) {
      yield lines(data.subarray(0, BATCH));
      data = data.subarray(BATCH);
    }
    const whole = data.length - (data.length % LINE_BYTES);
    if (whole > 0) yield lines(data.subarray(0, whole));
    // Copied: openpgp.js may reuse what it handed over once it is asked for more.
    rest = Uint8Array.prototype.slice.call(data, whole);
  }
  const tail: Buffer[] = [];
  if (rest.length) tail.push(lines(rest));
  if (checksum) tail.push(Buffer.from(`=${Buffer.from([crc >> 16, (crc >> 8) & 0xff, crc & 0xff]).toString('base64')}\r\n`, 'latin1'));
  tail.push(Buffer.from('-----END PGP MESSAGE-----', 'latin1'));
  yield Buffer.concat(tail);
}
