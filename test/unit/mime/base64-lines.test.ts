/**
 * The base64 line encoder (mime/base64-lines.ts) against Node's own base64 cut into lines of 76:
 * every length around the line and group edges, lengths around its batch edges (1,400 lines),
 * input views at any offset, aligned and odd output offsets, and base64LineChunks fed chunks that
 * split lines and groups.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { base64Lines, base64LinesLength, writeBase64Lines } from '../../../src/mime/base64-lines.js';
import { base64LineChunks, encodeBase64Lines, withBase64Lines } from '../../../src/mime/index.js';

/** The reference: Node's encoder, lines of 76 characters, each ended by CRLF. */
const reference = (data: Buffer): string => data.toString('base64').replace(/.{1,76}/g, '$&\r\n');

async function* chunked(data: Buffer, sizes: readonly number[]): AsyncGenerator<Buffer> {
  let k = 0;
  for (let at = 0; at < data.length; ) {
    const n = sizes[k++ % sizes.length]!;
    yield data.subarray(at, at + n);
    at += n;
  }
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<string> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(c);
  return Buffer.concat(out).toString('latin1');
}

describe('base64 lines', () => {
  it('writes what Node writes, cut at 76, for every length around the line and group edges', () => {
    const data = randomBytes(57 * 5 + 3);
    for (let n = 0; n <= data.length; n++) {
      const part = data.subarray(0, n);
      const got = base64Lines(part);
      expect(got.length).toBe(base64LinesLength(n));
      expect(got.toString('latin1')).toBe(reference(part));
    }
  });

  it('writes what Node writes across its batches of 1,400 lines, from a view at any offset of its memory', () => {
    const backing = randomBytes(57 * 1400 * 2 + 57 * 3 + 40);
    for (const n of [57 * 1399, 57 * 1400, 57 * 1400 + 1, 57 * 1401, 57 * 2800, 57 * 2803 + 5]) {
      for (const offset of [0, 1, 5]) {
        const part = backing.subarray(offset, offset + n);
        expect(base64Lines(part).toString('latin1')).toBe(reference(part));
      }
    }
  });

  it('encodes every byte value in every position of a group', () => {
    const data = Buffer.alloc(256 * 3);
    for (let v = 0; v < 256; v++) data.fill(v, v * 3, v * 3 + 1).fill(255 - v, v * 3 + 1, v * 3 + 2).fill((v * 7) & 255, v * 3 + 2, v * 3 + 3);
    expect(base64Lines(data).toString('latin1')).toBe(reference(data));
    expect(encodeBase64Lines(data)).toBe(reference(data));
  });

  it('writes the same bytes at odd and even offsets of a larger buffer, and nothing outside them', () => {
    const data = randomBytes(57 * 40 + 11);
    for (const at of [0, 1, 2, 3, 7]) {
      const out = Buffer.alloc(at + base64LinesLength(data.length) + 5, 0x21);
      const end = writeBase64Lines(data, out, at);
      expect(end).toBe(at + base64LinesLength(data.length));
      expect(out.subarray(at, end).toString('latin1')).toBe(reference(data));
      expect(out.subarray(0, at).every((b) => b === 0x21)).toBe(true);
      expect(out.subarray(end).every((b) => b === 0x21)).toBe(true);
    }
    // A view that starts at an odd byte of its ArrayBuffer (the byte-store path).
    const backing = Buffer.alloc(base64LinesLength(data.length) + 1);
    const odd = backing.subarray(1);
    writeBase64Lines(data, odd, 0);
    expect(odd.toString('latin1')).toBe(reference(data));
    expect(withBase64Lines('X: y\r\n\r\n', data).toString('latin1')).toBe(`X: y\r\n\r\n${reference(data)}`);
    expect(withBase64Lines('Odd\r\n\r\n', data).toString('latin1')).toBe(`Odd\r\n\r\n${reference(data)}`);
  });

  it('base64LineChunks gives the same lines for chunks that split lines and groups anywhere', async () => {
    const data = randomBytes(300_000);
    const want = reference(data);
    for (const sizes of [[1], [2, 55], [56, 1, 1], [57], [58, 3], [65_536], [65_537, 13, 200_000], [57 * 3400 + 1], [1_000_000]]) {
      expect(await collect(base64LineChunks(chunked(data, sizes)))).toBe(want);
    }
    // Empty chunks in between change nothing; no input, no output.
    expect(await collect(base64LineChunks(chunked(data.subarray(0, 100), [0, 30, 0, 70])))).toBe(reference(data.subarray(0, 100)));
    expect(await collect(base64LineChunks(chunked(Buffer.alloc(0), [1])))).toBe('');
  });
});
