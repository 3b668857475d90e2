/** RFC 8689 §5 `TLS-Required: No`, read from the header block only, however it is written. */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { headerSaysNo, tlsRequiredNo } from '../../../src/relay/tls-required.js';

describe('TLS-Required: No', () => {
  it('finds the field in any case, folded, in LF or CRLF messages', () => {
    expect(headerSaysNo(Buffer.from('From: a@b\r\nTLS-Required: No\r\n\r\nbody\r\n'))).toBe(true);
    expect(headerSaysNo(Buffer.from('tls-required:no\nSubject: x\n\nbody\n'))).toBe(true);
    expect(headerSaysNo(Buffer.from('Subject: x\r\nTLS-Required:\r\n  NO\r\n\r\n'))).toBe(true);
  });
  it('not in the body, not another value, not a look-alike field', () => {
    expect(headerSaysNo(Buffer.from('Subject: x\r\n\r\nTLS-Required: No\r\n'))).toBe(false);
    expect(headerSaysNo(Buffer.from('TLS-Required: Yes\r\n\r\n'))).toBe(false);
    expect(headerSaysNo(Buffer.from('TLS-Required: No thanks\r\n\r\n'))).toBe(false);
    expect(headerSaysNo(Buffer.from('X-TLS-Required: No\r\n\r\n'))).toBe(false);
    expect(headerSaysNo(Buffer.from('Subject: TLS-Required: No\r\n\r\n'))).toBe(false);
  });
  it('reads a spooled stream only as far as the header, and not past 64 KB of it', async () => {
    let opened = 0;
    const source = (text: string) => ({ size: text.length, open: () => { opened++; return Readable.from([Buffer.from(text)]); } });
    expect(await tlsRequiredNo(source('TLS-Required: No\r\n\r\n' + 'x'.repeat(100_000)))).toBe(true);
    expect(await tlsRequiredNo(source('X-Pad: ' + 'a'.repeat(70_000) + '\r\nTLS-Required: No\r\n\r\n'))).toBe(false);
    expect(opened).toBe(2);
  });
});
