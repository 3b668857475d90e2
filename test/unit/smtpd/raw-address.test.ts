/**
 * smtp-server decodes A-labels before our handlers see an address, so whether an address was
 * 8-bit on the wire (RFC 6531: only with SMTPUTF8) is read from the command line; without the
 * library method we wrap, the check must fail closed, not open.
 */
import { describe, expect, it } from 'vitest';
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { hookRawAddresses, wasEightBit } from '../../../src/smtpd/raw-address.js';

/** What smtp-server's parser does that matters here: the address between <>, A-labels decoded. */
const fakeParse = (_name: string, command: unknown) => {
  const m = /<([^<>]*)>/.exec(String(command));
  return m ? { address: m[1]!.replace('xn--bcher-kva', 'bücher'), args: {} } : false;
};

describe('raw addresses', () => {
  it('tells an A-label (ASCII on the wire) from the same domain sent in UTF-8, and keeps what was written', () => {
    const conn = { _parseAddressCommand: fakeParse } as unknown as SMTPConnection;
    const raw = hookRawAddresses(conn);
    const parse = (conn as unknown as { _parseAddressCommand: typeof fakeParse })._parseAddressCommand;
    const ascii = parse('rcpt to', 'RCPT TO:<Bob@xn--bcher-kva.example>') as { address: string };
    const utf8 = parse('rcpt to', Buffer.from('RCPT TO:<bob@bücher.example>', 'utf8')) as { address: string };
    expect(ascii.address).toBe(utf8.address.replace('bob', 'Bob'));
    expect(wasEightBit(raw, ascii)).toBe(false);
    expect(wasEightBit(raw, utf8)).toBe(true);
    expect(raw.written.get(ascii)).toBe('Bob@xn--bcher-kva.example');
  });

  it('fails closed without the library method: any non-ASCII counts as 8-bit, ASCII stays fine', () => {
    const raw = hookRawAddresses({} as unknown as SMTPConnection);
    expect(raw.hooked).toBe(false);
    expect(wasEightBit(raw, { address: 'bob@bücher.example' })).toBe(true);
    expect(wasEightBit(raw, { address: 'bob@example.com' })).toBe(false);
  });
});
