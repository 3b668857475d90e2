import { describe, expect, it } from 'vitest';
import { NetworkList, asciiDomain, checkRecipient, type RecipientPolicy } from '../../../src/smtpd/relay-control.js';

describe('NetworkList', () => {
  const nets = new NetworkList(['127.0.0.0/8', '10.9.9.0/24', '2001:db8::/32', '192.0.2.7', '::ffff:172.16.0.0/108']);

  it('matches IPv4 and IPv6 networks and single addresses', () => {
    expect(nets.contains('127.0.0.1')).toBe(true);
    expect(nets.contains('10.9.9.200')).toBe(true);
    expect(nets.contains('10.9.10.1')).toBe(false);
    expect(nets.contains('2001:db8:1::5')).toBe(true);
    expect(nets.contains('2001:db9::5')).toBe(false);
    expect(nets.contains('192.0.2.7')).toBe(true);
    expect(nets.contains('192.0.2.8')).toBe(false);
  });

  it('treats IPv4-mapped IPv6 clients as IPv4, and mapped networks as IPv4 networks', () => {
    expect(nets.contains('::ffff:127.0.0.1')).toBe(true);
    expect(nets.contains('::ffff:10.9.8.1')).toBe(false);
    expect(nets.contains('172.16.3.4')).toBe(true); // from ::ffff:172.16.0.0/108 = 172.16.0.0/12
    expect(nets.contains('172.32.0.1')).toBe(false);
  });

  it('never matches garbage and an empty list trusts nobody', () => {
    expect(nets.contains('not an ip')).toBe(false);
    expect(nets.contains('')).toBe(false);
    expect(new NetworkList([]).contains('127.0.0.1')).toBe(false);
  });

  it('refuses invalid networks, naming them', () => {
    expect(() => new NetworkList(['10.0.0.0/33'])).toThrow(/10\.0\.0\.0\/33/);
    expect(() => new NetworkList(['example.com'])).toThrow(/example\.com/);
  });
});

describe('checkRecipient', () => {
  const internal = new Set(['example.com', 'gw.test.example', asciiDomain('bücher.example')!]);
  const untrusted: RecipientPolicy = { trusted: false, internalDomains: internal, postmasterDomain: 'example.com' };
  const trusted: RecipientPolicy = { ...untrusted, trusted: true };

  it('lets untrusted clients send to internal domains only, case-insensitively and exactly', () => {
    expect(checkRecipient('bob@example.com', untrusted, false)).toEqual({ ok: true, address: 'bob@example.com' });
    expect(checkRecipient('Bob@EXAMPLE.Com', untrusted, false)).toEqual({ ok: true, address: 'Bob@example.com' });
    expect(checkRecipient('bob@example.org', untrusted, false)).toEqual({ ok: false, reason: 'relay' });
    // subdomains are not implied
    expect(checkRecipient('bob@sub.example.com', untrusted, false)).toEqual({ ok: false, reason: 'relay' });
    expect(checkRecipient('bob@example.com.evil.test', untrusted, false)).toEqual({ ok: false, reason: 'relay' });
  });

  it('matches IDN domains in either form and stores the canonical A-label form, SMTPUTF8 or not', () => {
    expect(checkRecipient('a@bücher.example', untrusted, false)).toEqual({ ok: true, address: 'a@xn--bcher-kva.example', original: 'a@bücher.example' });
    expect(checkRecipient('a@bücher.example', untrusted, true)).toEqual({ ok: true, address: 'a@xn--bcher-kva.example', original: 'a@bücher.example' });
  });

  it('decides on the canonical form only: full-width is our domain, invisible characters are refused (issue 14)', () => {
    // Full-width letters map to example.com: internal, and stored so (not half internal, half not).
    expect(checkRecipient('victim@ｅｘａｍｐｌｅ.com', untrusted, true)).toEqual({ ok: true, address: 'victim@example.com', original: 'victim@ｅｘａｍｐｌｅ.com' });
    expect(checkRecipient('bob@ｐａｒｔｎｅｒ.example', untrusted, true)).toEqual({ ok: false, reason: 'relay' });
    // A soft hyphen would be deleted by UTS #46: refused instead.
    expect(checkRecipient('victim@exam\u00adple.com', untrusted, true)).toMatchObject({ ok: false, reason: 'canonical' });
    expect(checkRecipient('victim@exam\u00adple.com', trusted, true)).toMatchObject({ ok: false, reason: 'canonical' });
    expect(checkRecipient('victim@exam\u200bple.com', trusted, true)).toMatchObject({ ok: false, reason: 'canonical' });
    // Needless quotes go; needed ones stay.
    expect(checkRecipient('"carol"@example.com', untrusted, false)).toEqual({ ok: true, address: 'carol@example.com', original: '"carol"@example.com' });
    // 8-bit local part outside SMTPUTF8
    expect(checkRecipient('jörg@example.com', untrusted, false)).toEqual({ ok: false, reason: 'utf8' });
    expect(checkRecipient('jörg@example.com', untrusted, true)).toEqual({ ok: true, address: 'jörg@example.com' });
    // A fake A-label that decodes to a plain name
    expect(checkRecipient('a@xn--example-.com', trusted, false)).toMatchObject({ ok: false, reason: 'canonical' });
  });

  it('refuses sender-specified routing from untrusted clients even to internal domains', () => {
    expect(checkRecipient('relaytest%nmap.scanme.org@example.com', untrusted, false)).toEqual({ ok: false, reason: 'routing' });
    expect(checkRecipient('nmap.scanme.org!relaytest@gw.test.example', untrusted, false)).toEqual({ ok: false, reason: 'routing' });
    expect(checkRecipient('"relaytest@nmap.scanme.org"@example.com', untrusted, false)).toEqual({ ok: false, reason: 'routing' });
    expect(checkRecipient('"relaytest%nmap.scanme.org"@example.com', untrusted, false)).toEqual({ ok: false, reason: 'routing' });
  });

  it('refuses address literals from untrusted clients', () => {
    expect(checkRecipient('relaytest@[127.0.0.1]', untrusted, false)).toEqual({ ok: false, reason: 'literal' });
    expect(checkRecipient('relaytest%nmap.scanme.org@[127.0.0.1]', untrusted, false)).toEqual({ ok: false, reason: 'literal' });
    expect(checkRecipient('x@[IPv6:::1]', untrusted, false)).toEqual({ ok: false, reason: 'literal' });
  });

  it('lets trusted clients relay anywhere, routing included', () => {
    expect(checkRecipient('bob@example.org', trusted, false)).toEqual({ ok: true, address: 'bob@example.org' });
    expect(checkRecipient('a%b@example.org', trusted, false)).toEqual({ ok: true, address: 'a%b@example.org' });
    expect(checkRecipient('x@[192.0.2.1]', trusted, false)).toEqual({ ok: true, address: 'x@[192.0.2.1]' });
  });

  it('accepts the domain-less postmaster from anyone (RFC 5321 4.5.1)', () => {
    expect(checkRecipient('Postmaster', untrusted, false)).toEqual({ ok: true, address: 'postmaster@example.com' });
  });

  it('calls anything without a usable domain a syntax error', () => {
    expect(checkRecipient('nobody', untrusted, false)).toEqual({ ok: false, reason: 'syntax' });
    expect(checkRecipient('a@', trusted, false)).toEqual({ ok: false, reason: 'syntax' });
    expect(checkRecipient('@example.com', trusted, false)).toEqual({ ok: false, reason: 'syntax' });
  });
});
