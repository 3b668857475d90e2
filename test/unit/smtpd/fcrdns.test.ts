import { describe, expect, it } from 'vitest';
import { confirmedNames, fcrdnsResolver, type DnsLike } from '../../../src/smtpd/fcrdns.js';

function fakeDns(ptr: Record<string, string[]>, a: Record<string, string[]>): DnsLike {
  return {
    reverse: async (ip) => ptr[ip] ?? [],
    lookup: async (name) => {
      const addrs = a[name];
      if (!addrs) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
      return addrs.map((address) => ({ address }));
    },
  };
}

describe('forward-confirmed reverse DNS', () => {
  const dns = fakeDns(
    { '192.0.2.1': ['mail.example.org'], '192.0.2.2': ['mail.bank.example'], '2001:db8::1': ['bogus.example', 'v6.example.org'] },
    { 'mail.example.org': ['192.0.2.1'], 'mail.bank.example': ['198.51.100.7'], 'v6.example.org': ['2001:0db8:0:0:0:0:0:1'] },
  );

  it('keeps a PTR name only when it resolves back to the client', async () => {
    expect(await confirmedNames(dns, '192.0.2.1')).toEqual(['mail.example.org']);
    expect(await confirmedNames(dns, '192.0.2.2')).toEqual([]); // PTR claims a name it does not own
    expect(await confirmedNames(dns, '192.0.2.3')).toEqual([]);
    expect(await confirmedNames(dns, '2001:db8::1')).toEqual(['v6.example.org']);
  });

  it('reports through the smtp-server resolver callback', async () => {
    const names = await new Promise((resolve) => fcrdnsResolver(dns).reverse('192.0.2.1', (_err, n) => resolve(n)));
    expect(names).toEqual(['mail.example.org']);
    const failing: DnsLike = { reverse: async () => Promise.reject(new Error('SERVFAIL')), lookup: async () => [] };
    const err = await new Promise((resolve) => fcrdnsResolver(failing).reverse('192.0.2.1', (e) => resolve(e)));
    expect(err).toBeInstanceOf(Error);
  });
});
