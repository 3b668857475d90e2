/**
 * Address helpers: the WKD hash against gpg-wks-client (GnuPG's own computation) and the
 * draft's example, z-base-32, and the search patterns of key servers.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { compilePattern, splitAddress, wkdHash, zbase32 } from '../../../src/directory/index.js';

const run = promisify(execFile);
const WKS = ['/usr/lib/gnupg/gpg-wks-client', '/usr/libexec/gpg-wks-client', '/usr/bin/gpg-wks-client'].find(existsSync);

describe('directory addresses', () => {
  it('z-base-32 encodes as the spec does', () => {
    expect(zbase32(Buffer.from([0xf0, 0xbf, 0xc7]))).toBe('6n9hq');
    expect(zbase32(Buffer.from([0xd4, 0x7a, 0x04]))).toBe('4t7ye');
    expect(zbase32(Buffer.alloc(0))).toBe('');
  });

  it('hashes local parts as gpg-wks-client does', async () => {
    // A missing peer fails here rather than skipping: npm test installs it (setup-test-deps.sh).
    if (!WKS) throw new Error('gpg-wks-client is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
    for (const address of ['Joe.Doe@Example.ORG', 'alice@example.com', 'Ünïcode.Üser@example.com', 'a+tag@example.com', 'MiXeD_Case-1@x.example']) {
      const { stdout } = await run(WKS!, ['--print-wkd-hash', address]);
      expect(wkdHash(splitAddress(address)!.local), address).toBe(stdout.split(' ')[0]);
    }
  });

  it('splits addresses and refuses what would break a URL or a header', () => {
    expect(splitAddress('Joe.Doe@Example.ORG')).toEqual({ local: 'Joe.Doe', domain: 'example.org', address: 'Joe.Doe@example.org' });
    expect(splitAddress('jo@bücher.example')?.domain).toBe('xn--bcher-kva.example');
    for (const bad of ['nobody', '@example.com', 'x@', 'a/b@example.com', 'a?b@example.com', 'a b@example.com', 'x@exa mple.com', 'x@-bad.example', 'a\r\nb@example.com', 'x@127.0.0.1', 'x@[127.0.0.1]', 'x@2130706433']) expect(splitAddress(bad), bad).toBeNull();
  });

  it('matches patterns: addresses, domains, subdomains, everything', () => {
    const m = (p: string, a: string) => compilePattern(p)(splitAddress(a)!);
    expect(m('*@partner.example', 'Bob@PARTNER.example')).toBe(true);
    expect(m('*@partner.example', 'bob@sub.partner.example')).toBe(false);
    expect(m('partner.example', 'bob@partner.example')).toBe(true);
    expect(m('partner.example', 'bob@xpartner.example')).toBe(false);
    expect(m('*.example.org', 'x@a.b.example.org')).toBe(true);
    expect(m('*.example.org', 'x@example.org')).toBe(false);
    expect(m('*.example.org', 'x@badexample.org')).toBe(false);
    expect(m('sales-*@example.net', 'sales-emea@example.net')).toBe(true);
    expect(m('sales-*@example.net', 'support@example.net')).toBe(false);
    expect(m('a.b@example.net', 'aXb@example.net')).toBe(false); // "." is literal
    expect(m('*', 'anyone@anywhere.example')).toBe(true);
  });
});
