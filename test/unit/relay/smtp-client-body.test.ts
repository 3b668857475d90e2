/**
 * Dot-stuffing of the relay's SMTP client (RFC 5321 4.5.2) chunk by chunk, against the whole
 * body stuffed at once: lines that start with a dot split from their line end, dots in the middle
 * of lines, chunks of one byte, and the end-of-data line with and without a final CRLF.
 */
import { describe, expect, it } from 'vitest';
import { DotStuffer } from '../../../src/relay/smtp-client-body.js';

/** The reference: every line of the whole body that starts with "." gets one more. */
const stuffed = (body: string): string => body.replace(/(^|\n)\./g, '$1..');

function viaChunks(body: Buffer, sizes: readonly number[]): string {
  const s = new DotStuffer();
  const out: Buffer[] = [];
  let k = 0;
  for (let at = 0; at < body.length; ) {
    const n = sizes[k++ % sizes.length]!;
    out.push(s.push(body.subarray(at, at + n)));
    at += n;
  }
  out.push(s.end());
  return Buffer.concat(out).toString('latin1');
}

describe('DotStuffer', () => {
  it('doubles exactly the dots that start a line, however the body is cut', () => {
    const body = '.first\r\nmiddle. dot.\r\n..two\r\n.\r\n\r\n.\r\nend .\r\n...\r\nx.\r\n.';
    const lf = '.a\n.b\nc.\n';
    for (const text of [body, lf, '.', '..', 'no dots\r\n']) {
      const want = stuffed(text);
      for (const sizes of [[1], [2], [3, 1], [5, 7], [1000]]) {
        const got = viaChunks(Buffer.from(text, 'latin1'), sizes);
        const end = text.endsWith('\r\n') || text === '' ? '.\r\n' : '\r\n.\r\n';
        expect(got, `${JSON.stringify(text)} in chunks of ${sizes.join(',')}`).toBe(want + end);
      }
    }
  });

  it('passes a chunk without a dot at a line start through as the same buffer', () => {
    const s = new DotStuffer();
    const chunk = Buffer.from('TWFu\r\nIGlz.\r\n');
    expect(s.push(chunk)).toBe(chunk);
  });

  it('stuffs a long body with many dots the same as the reference', () => {
    const lines: string[] = [];
    for (let i = 0; i < 5000; i++) lines.push(i % 3 === 0 ? `.line ${i}.` : i % 7 === 0 ? '.' : `line. ${i}`);
    const text = lines.join('\r\n') + '\r\n';
    expect(viaChunks(Buffer.from(text), [4093, 1, 77])).toBe(stuffed(text) + '.\r\n');
  });
});
