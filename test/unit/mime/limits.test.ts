/**
 * The MIME limits a message must keep before a transform opens it (mime/limits.ts): each at its
 * boundary — the limit passes, one more is refused with a LimitExceededError naming the limit —
 * and the bombs the issue names (10,000 nested multiparts, a million empty parts) refused.
 */
import { describe, expect, it } from 'vitest';
import { LimitExceededError } from '../../../src/core/index.js';
import { checkMimeLimits, cryptoMethods, MIME_LIMITS } from '../../../src/mime/index.js';

const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
const msg = (entity: string) => Buffer.from(crlf(`From: a@example.org\nTo: b@example.org\nSubject: t\nMIME-Version: 1.0\n${entity}`));

/** `levels` multiparts, each the only part of the one above, a text at the bottom. */
function nested(levels: number, kind: 'multipart' | 'rfc822' = 'multipart'): Buffer {
  let e = 'Content-Type: text/plain\n\nbottom\n';
  for (let i = levels - 1; i >= 0; i--) {
    e = kind === 'multipart' ? `Content-Type: multipart/mixed; boundary=d${i}\n\n--d${i}\n${e}\n--d${i}--\n` : `Content-Type: message/rfc822\n\nSubject: level ${i}\n${e}`;
  }
  return msg(e);
}

const wide = (parts: number) => msg(`Content-Type: multipart/mixed; boundary=w\n\n${'--w\nContent-Type: text/plain\n\nx\n'.repeat(parts)}--w--\n`);

function refused(message: Buffer): LimitExceededError {
  try {
    checkMimeLimits(message);
  } catch (err) {
    if (err instanceof LimitExceededError) return err;
    throw err;
  }
  throw new Error('not refused');
}

describe('MIME limits', () => {
  it('nesting: 50 levels pass, 51 are refused (multipart and message/rfc822 alike)', () => {
    expect(MIME_LIMITS.depth).toBe(50);
    expect(() => checkMimeLimits(nested(50))).not.toThrow();
    const e = refused(nested(51));
    expect(e.limit).toBe('mime_depth');
    expect(e.message).toBe('MIME parts nested deeper than 50 levels');
    expect(e.reply).toMatchObject({ code: 554, status: '5.6.0' });
    expect(() => checkMimeLimits(nested(50, 'rfc822'))).not.toThrow();
    expect(refused(nested(51, 'rfc822')).limit).toBe('mime_depth');
  });

  it('parts: 1000 pass, 1001 are refused; counted over every level', () => {
    expect(() => checkMimeLimits(wide(1000))).not.toThrow();
    const e = refused(wide(1001));
    expect(e.limit).toBe('mime_parts');
    expect(e.message).toBe('more than 1000 MIME parts');
    // 2 × 500 text parts, in two multiparts inside one: 1002 parts in all.
    const half = `Content-Type: multipart/mixed; boundary=h\n\n${'--h\nContent-Type: text/plain\n\nx\n'.repeat(500)}--h--\n`;
    const two = msg(`Content-Type: multipart/mixed; boundary=o\n\n--o\n${half}\n--o\n${half}\n--o--\n`);
    expect(refused(two).limit).toBe('mime_parts');
  });

  it("a header field: 102400 bytes pass (Postfix's header_size_limit), one more is refused, in a part too", () => {
    const field = (n: number) => `X-Long: ${'a'.repeat(n)}\n`;
    expect(() => checkMimeLimits(msg(`${field(102_400)}Content-Type: text/plain\n\nhi\n`))).not.toThrow();
    const e = refused(msg(`${field(102_401)}Content-Type: text/plain\n\nhi\n`));
    expect(e.limit).toBe('header_size');
    expect(e.message).toMatch(/^a x-long header field of 102401 bytes, more than the 100 KB a header field may have$/);
    expect(e.reply).toMatchObject({ code: 552, status: '5.3.4' });
    const inPart = msg(`Content-Type: multipart/mixed; boundary=p\n\n--p\nContent-Type: text/plain; name="${'n'.repeat(102_400)}"\n\nx\n--p--\n`);
    expect(refused(inPart).limit).toBe('header_size');
  });

  it('the bombs: 10,000 nested multiparts and 1,000,000 empty parts are refused after the limit, not walked', () => {
    expect(refused(nested(10_000)).limit).toBe('mime_depth');
    const million = msg(`Content-Type: multipart/mixed; boundary=w\n\n${'--w\n\n'.repeat(1_000_000)}--w--\n`);
    expect(refused(million).limit).toBe('mime_parts');
  });

  it('cryptoMethods (what the worker opens) refuses what is past a limit instead of reading half of it', () => {
    expect(() => cryptoMethods(nested(10_000))).toThrow(LimitExceededError);
    expect(cryptoMethods(nested(3))).toEqual([]);
  });

  it('ordinary mail is untouched: no boundary, a boundary never closed, an encoded forwarded message', () => {
    expect(() => checkMimeLimits(msg('Content-Type: multipart/mixed\n\nno boundary\n'))).not.toThrow();
    expect(() => checkMimeLimits(msg('Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nopen\n'))).not.toThrow();
    expect(() => checkMimeLimits(msg('Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA0KDQp5DQo=\n'))).not.toThrow();
  });
});
