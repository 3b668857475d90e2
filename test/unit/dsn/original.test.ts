/**
 * What the worker keeps of an original for the bounces of a transformed copy (dsn/original.ts),
 * and that a notice given only the header block never claims to return the whole message.
 */
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../../src/core/index.js';
import { buildDsn, keepOriginal, keptOriginal, ORIGINAL_NOTE } from '../../../src/dsn/index.js';

const env = (over: Partial<Envelope> = {}): Envelope => ({
  sender: 'alice@example.com',
  recipients: [{ address: 'bob@partner.example' }],
  client: { address: '127.0.0.1', port: 1, helo: 'c', hostname: '[127.0.0.1]', protocol: 'ESMTP', trusted: true },
  receivedAt: new Date().toISOString(),
  ...over,
});
const message = Buffer.from('From: alice@example.com\r\nSubject: mine\r\n\r\nthe words Alice wrote\r\n');
const headers = 'From: alice@example.com\r\nSubject: mine\r\n';
const roundTrip = (k: ReturnType<typeof keepOriginal>) => keptOriginal(JSON.parse(JSON.stringify({ [ORIGINAL_NOTE]: k })));

describe('keepOriginal', () => {
  it('keeps the whole message when a bounce may return it, and reads it back byte for byte', () => {
    const eight = Buffer.concat([message.subarray(0, -2), Buffer.from([0xe4, 0xff, 0x0d, 0x0a])]);
    const k = keepOriginal(eight, env(), { limit: 50_000 });
    expect(k?.part).toBe('message');
    expect(roundTrip(k)).toEqual({ message: eight, headersOnly: false });
  });

  it('keeps the header block only for RET=HDRS, above the size limit, and when told to', () => {
    for (const [e, limit, headersOnly] of [
      [env({ ret: 'HDRS' }), 50_000, false],
      [env(), message.length - 1, false],
      [env(), 50_000, true],
    ] as const) {
      const k = keepOriginal(message, e, { limit, headersOnly });
      expect(k?.part).toBe('headers');
      expect(roundTrip(k)).toEqual({ message: Buffer.from(headers), headersOnly: true });
    }
  });

  it('keeps nothing that no notice can use: the null sender, NOTIFY=NEVER for everyone', () => {
    expect(keepOriginal(message, env({ sender: '' }), { limit: 50_000 })).toBeNull();
    expect(keepOriginal(message, env({ recipients: [{ address: 'a@x.example', notify: ['NEVER'] }, { address: 'b@x.example', notify: ['NEVER'] }] }), { limit: 50_000 })).toBeNull();
    expect(keepOriginal(message, env({ recipients: [{ address: 'a@x.example', notify: ['NEVER'] }, { address: 'b@x.example', notify: ['SUCCESS'] }] }), { limit: 50_000 })).not.toBeNull();
  });

  it('cuts an enormous header block at a line end', () => {
    const line = `X-Filler: ${'x'.repeat(900)}\r\n`;
    const huge = Buffer.from(line.repeat(200) + '\r\nbody\r\n');
    const k = roundTrip(keepOriginal(huge, env(), { limit: 1000 }))!;
    expect(k.headersOnly).toBe(true);
    expect(k.message.length).toBeLessThanOrEqual(100 * 1024);
    expect(k.message.length % line.length).toBe(0);
  });

  it('reads a damaged note as none', () => {
    expect(keptOriginal(undefined)).toBeNull();
    expect(keptOriginal({ [ORIGINAL_NOTE]: 'x' })).toBeNull();
    expect(keptOriginal({ [ORIGINAL_NOTE]: { part: 'message', data: '***' } })).toBeNull();
    expect(keptOriginal({ [ORIGINAL_NOTE]: { part: 'whole', data: 'AAAA' } })).toBeNull();
  });
});

describe('buildDsn with a header block only', () => {
  it('returns it as headers even where the whole message would have fitted', () => {
    const dsn = buildDsn({
      kind: 'failure',
      reportingMta: 'gw.example.com',
      queueId: 'Q1',
      envelope: env(),
      recipients: [{ address: 'bob@partner.example', action: 'failed', status: '5.1.1' }],
      message: Buffer.from(headers),
      headersOnly: true,
    });
    expect(dsn.returned).toBe('headers');
    expect(dsn.body.toString()).toContain(`Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${headers}`);
    expect(dsn.body.toString()).toContain('Its headers are attached below.');
  });
});
