/**
 * canonicalScan's search for the boundary across chunks: the needle at every position of the
 * content, cut into chunks shorter and longer than the needle (so it spans two or more chunks),
 * and near misses that must not be found.
 */
import { describe, expect, it } from 'vitest';
import { canonicalScan } from '../../../src/mime/index.js';

async function* cut(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

describe('canonicalScan needles', () => {
  const needle = '=_postern_0123';
  it('finds the needle wherever it lies and however the content is cut', async () => {
    for (let at = 0; at <= 30; at++) {
      const text = Buffer.from(`${'a'.repeat(at)}${needle}${'b'.repeat(30 - at)}\r\n`, 'latin1');
      for (const size of [1, 2, 3, 5, 13, 14, 15, 40, 1000]) {
        expect((await canonicalScan(cut(text, size), [needle])).contains, `at ${at}, chunks of ${size}`).toBe(true);
      }
    }
  });

  it('does not find a near miss, also when its pieces meet at chunk borders', async () => {
    const miss = Buffer.from(`${needle.slice(0, 7)}x${needle.slice(7)}\r\n${needle.slice(0, -1)}\r\n${needle.slice(1)}\r\n`, 'latin1');
    for (const size of [1, 2, 7, 8, 13, 14, 100]) expect((await canonicalScan(cut(miss, size), [needle])).contains).toBe(false);
    // Two needles: either one counts.
    expect((await canonicalScan(cut(Buffer.from('xx--other--yy\r\n'), 3), [needle, '--other--'])).contains).toBe(true);
  });
});
