/**
 * The portal's Web Key Directory read by GnuPG 2.2. gpg's own WKD look-up
 * (`--auto-key-locate clear,wkd --locate-keys`) always asks https://openpgpkey.<domain>:443 with
 * certificates from the system store, and dirmngr has no principled override for either (no
 * hosts-file or port option; its CA list for WKD is system-wide), so the equivalent is done:
 * gpg-wks-client --print-wkd-url computes the URL, its path and query are asked of the portal on
 * 127.0.0.1 by gpg itself (`gpg --fetch-keys`, dirmngr as the HTTP client), and the fingerprint of
 * what gpg imported is checked. Plus the routes, the index TTL, what must never leave (secret
 * keys, keys of non-users), HTTPS, and the packet check.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WkdClient, wkdHash } from '../../src/directory/index.js';
import { openKeyStore, type KeyStore } from '../../src/keystore/index.js';
import { silentLogger } from '../../src/log/index.js';
import { generatePgpKey, type ParsedPgpKey } from '../../src/openpgp/index.js';
import { publicPacketsOnly, startPortal, type Portal } from '../../src/portal/index.js';
import { tempDir, testConfig } from '../helpers/config.js';

const run = promisify(execFile);
const WKS = ['/usr/lib/gnupg/gpg-wks-client', '/usr/libexec/gpg-wks-client', '/usr/bin/gpg-wks-client'].find(existsSync);

function get(port: number, path: string, opts: { method?: string; host?: string } = {}): Promise<{ status: number; type: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.host ? { host: opts.host } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('portal: WKD', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let store: KeyStore;
  let portal: Portal;
  let port: number;
  let clock = 1_000_000;
  let user: ParsedPgpKey;
  let userNet: ParsedPgpKey;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-portal-'));
    const config = testConfig(dir, { internal_domains: ['example.com', 'example.net'], portal: { listen: [{ host: '127.0.0.1', port: 0 }], wkd: true, index_ttl: 30_000 } });
    store = await openKeyStore(config);
    user = await generatePgpKey({ address: 'user@example.com', name: 'User' });
    userNet = await generatePgpKey({ address: 'user@example.net' });
    await store.importPgpKey(user, { source: 'generated', actor: 'test' });
    await store.importPgpKey(userNet, { source: 'generated', actor: 'test' });
    // Not ours: an internal address whose key we hold without its secret, and a partner with one.
    const known = await generatePgpKey({ address: 'known@example.com' });
    await store.importPgpKey({ info: { ...known.info, hasSecret: false }, publicKey: known.publicKey }, { source: 'wkd', actor: 'test' });
    await store.importPgpKey(await generatePgpKey({ address: 'user@partner.example' }), { source: 'import', actor: 'test' });
    portal = await startPortal({ config, store, log: silentLogger(), now: () => clock });
    port = portal.addresses[0]!.port;
  });
  afterAll(async () => {
    await portal?.close();
    await store?.close();
    await cleanup();
  });

  describe('read by gpg 2.2', () => {
    // An interop peer missing is a failure, not a skip: npm test installs it (scripts/setup-test-deps.sh).
    beforeAll(() => {
      if (!WKS) throw new Error('gpg-wks-client (Debian package gpg-wks-client) is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
    });
    let home: string;
    const gpg = (args: string[]) => run('gpg', ['--homedir', home, '--batch', '--no-tty', ...args], { env: { ...process.env, GNUPGHOME: home }, timeout: 20_000 });
    beforeAll(async () => {
      home = await mkdtemp(join(tmpdir(), 'postern-wkdgpg-'));
    });
    afterAll(async () => {
      // gpg started a dirmngr and an agent for this home: stop those two, by their home.
      await run('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: home } }).catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    });

    it.each([
      ['advanced', (u: URL) => `${u.pathname}${u.search}`],
      ['direct', (u: URL) => `${u.pathname.replace('/example.com/hu/', '/hu/')}${u.search}`],
    ])('gpg imports user@example.com from the %s layout, public key only', async (_m, pathOf) => {
      const { stdout } = await run(WKS!, ['--print-wkd-url', 'user@example.com']);
      const url = new URL(stdout.trim());
      expect(url.host).toBe('openpgpkey.example.com');
      expect(url.pathname).toBe(`/.well-known/openpgpkey/example.com/hu/${wkdHash('user')}`);
      await gpg(['--fetch-keys', `http://127.0.0.1:${port}${pathOf(url)}`]);
      const listed = (await gpg(['--with-colons', '--list-keys', 'user@example.com'])).stdout;
      expect(listed.split('\n').filter((l) => l.startsWith('fpr:')).map((l) => l.split(':')[9])[0]).toBe(user.info.fingerprint);
      expect(listed).not.toContain('user@example.net');
      expect((await gpg(['--with-colons', '--list-secret-keys'])).stdout).toBe('');
    });

    it('gpg finds nothing for an address that is not one of our users', async () => {
      const { stdout } = await run(WKS!, ['--print-wkd-url', 'known@example.com']);
      const u = new URL(stdout.trim());
      await expect(gpg(['--fetch-keys', `http://127.0.0.1:${port}${u.pathname}${u.search}`])).rejects.toThrow();
    });
  });

  it('serves the advanced layout per domain and the direct one by Host', async () => {
    const hash = wkdHash('user');
    const com = await get(port, `/.well-known/openpgpkey/example.com/hu/${hash}?l=user`);
    expect(com.status).toBe(200);
    expect(com.type).toBe('application/octet-stream');
    expect(com.body.equals(user.publicKey)).toBe(true);
    expect((await get(port, `/.well-known/openpgpkey/example.net/hu/${hash}`)).body.equals(userNet.publicKey)).toBe(true);
    expect((await get(port, `/.well-known/openpgpkey/hu/${hash}?l=user`, { host: 'example.net' })).body.equals(userNet.publicKey)).toBe(true);
    // Reached by a name that is not one of ours: keys of every internal domain for that hash.
    const both = await get(port, `/.well-known/openpgpkey/hu/${hash}`, { host: 'portal.internal:8443' });
    expect(both.body.length).toBe(user.publicKey.length + userNet.publicKey.length);
  });

  it("is read by Postern's own WKD client", async () => {
    const client = new WkdClient({ timeout: 2_000, maxBytes: 65_536, origin: () => `http://127.0.0.1:${port}` });
    const out = await client.lookup('user@example.com');
    expect(out.status).toBe('found');
    expect(out.keys.map((k) => k.key.info.fingerprint)).toEqual([user.info.fingerprint]);
  });

  it('serves policy files and /health; 404 and 405 for the rest', async () => {
    expect((await get(port, '/.well-known/openpgpkey/example.com/policy')).status).toBe(200);
    expect((await get(port, '/.well-known/openpgpkey/policy', { host: 'example.com' })).status).toBe(200);
    expect((await get(port, '/.well-known/openpgpkey/partner.example/policy')).status).toBe(404);
    const health = await get(port, '/health');
    expect([health.status, JSON.parse(health.body.toString())]).toEqual([200, { status: 'ok' }]);
    for (const path of [
      `/.well-known/openpgpkey/example.com/hu/${wkdHash('known')}`, // a key without its secret: not a user
      `/.well-known/openpgpkey/partner.example/hu/${wkdHash('user')}`, // not an internal domain
      `/.well-known/openpgpkey/example.com/hu/${wkdHash('nobody')}`,
      '/.well-known/openpgpkey/example.com/hu/NOT-A-HASH',
      '/.well-known/openpgpkey/example.com/hu/../../../etc/passwd',
      '/.well-known/openpgpkey/%ZZ/hu/x',
      '/',
    ]) expect((await get(port, path)).status, path).toBe(404);
    expect((await get(port, '/health', { method: 'POST' })).status).toBe(405);
    const head = await get(port, `/.well-known/openpgpkey/example.com/hu/${wkdHash('user')}`, { method: 'HEAD' });
    expect([head.status, head.body.length]).toEqual([200, 0]);
  });

  it('a new user shows after index_ttl', async () => {
    const hash = wkdHash('newbie');
    await store.importPgpKey(await generatePgpKey({ address: 'newbie@example.com' }), { source: 'generated', actor: 'test' });
    clock += 1_000;
    expect((await get(port, `/.well-known/openpgpkey/example.com/hu/${hash}`)).status).toBe(404);
    clock += 30_000;
    expect((await get(port, `/.well-known/openpgpkey/example.com/hu/${hash}`)).status).toBe(200);
  });

  it('refuses to serve a stored "public" key that holds secret packets', async () => {
    expect(publicPacketsOnly(user.publicKey)).toBe(true);
    expect(publicPacketsOnly(user.secretKey!)).toBe(false);
    expect(publicPacketsOnly(Buffer.from('garbage'))).toBe(false);
    expect(publicPacketsOnly(user.publicKey.subarray(0, user.publicKey.length - 3))).toBe(false);
    const leaky = { ...(await store.pgpKeysFor('user@example.com'))[0]!, publicKey: user.secretKey! };
    const fake = { listPgpKeys: async () => [leaky], pgpKeysFor: async () => [leaky] };
    const config = testConfig(dir, { portal: { listen: [{ host: '127.0.0.1', port: 0 }], wkd: true, index_ttl: 1 } });
    const p = await startPortal({ config, store: fake, log: silentLogger() });
    try {
      const r = await get(p.addresses[0]!.port, `/.well-known/openpgpkey/example.com/hu/${wkdHash('user')}`);
      expect(r.status).toBe(503);
      expect(r.body.includes(user.secretKey!.subarray(0, 64))).toBe(false);
    } finally {
      await p.close();
    }
  });
});
