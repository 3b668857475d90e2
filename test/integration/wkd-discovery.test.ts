/**
 * KeyDiscovery with a real keystore and real WKD/HKP servers on 127.0.0.1: WKD first, then the
 * key servers for the address; found keys imported with their source; positive and negative
 * caches (requests counted, clock injected); a hanging source bounded by its time-out; internal
 * domains and unconfigured domains never looked up; never a throw.
 */
import * as openpgp from 'openpgp';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/types.js';
import { KeyDiscovery, type KeyDiscoveryOptions } from '../../src/directory/index.js';
import { openKeyStore, type KeyStore } from '../../src/keystore/index.js';
import { silentLogger } from '../../src/log/index.js';
import { armorPublicKey, generatePgpKey, parsePgpKeys, type ParsedPgpKey } from '../../src/openpgp/index.js';
import { tempDir, testConfig } from '../helpers/config.js';
import { hang, startHttpPeer, type HttpPeer } from '../unit/directory/http-peer.js';

describe('KeyDiscovery', () => {
  let alice: ParsedPgpKey;
  let aliceRevoked: Buffer;
  let dir: string;
  let cleanup: () => Promise<void>;
  let store: KeyStore;
  let wkd: HttpPeer;
  let hkp: HttpPeer;
  let clock: number;

  beforeAll(async () => {
    alice = await generatePgpKey({ address: 'alice@partner.example' });
    const privateKey = await openpgp.readPrivateKey({ binaryKey: new Uint8Array(alice.secretKey!) });
    const { publicKey } = await openpgp.revokeKey({ key: privateKey, format: 'binary' });
    aliceRevoked = Buffer.from(publicKey);
  });
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-discovery-'));
    store = await openKeyStore(testConfig(dir));
    wkd = await startHttpPeer();
    hkp = await startHttpPeer();
    clock = 1_000_000;
  });
  afterEach(async () => {
    await Promise.all([wkd.close(), hkp.close()]);
    await store.close();
    await cleanup();
  });

  function discovery(d: Partial<Config['discovery']> = {}, over: Partial<KeyDiscoveryOptions> = {}): KeyDiscovery {
    const config = testConfig(dir, {
      discovery: {
        wkd: { domains: ['partner.example', '*.example.org'], timeout: 1_000 },
        hkp: { servers: [{ url: hkp.origin, patterns: ['*'], timeout: 1_000 }] },
        cache_ttl: 60_000,
        negative_ttl: 10_000,
        ...d,
      },
    });
    return new KeyDiscovery({ config, store, log: silentLogger(), wkdOrigin: () => wkd.origin, now: () => clock, ...over });
  }
  const serveAlice = (body: Buffer) => (req: { url?: string }, res: import('node:http').ServerResponse) => (req.url?.includes('/hu/') ? res.writeHead(200).end(body) : res.writeHead(404).end());

  it('finds a key over WKD, imports it (source wkd) and serves the next look-up from the cache', async () => {
    wkd.handle = serveAlice(alice.publicKey);
    const d = discovery();
    const found = await d.find('alice@partner.example');
    expect(found?.source).toBe('wkd');
    expect(found?.key.info.fingerprint).toBe(alice.info.fingerprint);
    const stored = await store.pgpKeysFor('alice@partner.example');
    expect(stored.map((k) => [k.info.fingerprint, k.source, k.hasSecret])).toEqual([[alice.info.fingerprint, 'wkd', false]]);
    expect(wkd.requests).toHaveLength(1);
    expect(hkp.requests).toHaveLength(0);

    expect((await d.find('Alice@Partner.Example'))?.key.info.fingerprint).toBe(alice.info.fingerprint);
    expect(wkd.requests).toHaveLength(1);
    clock += 60_001;
    await d.find('alice@partner.example');
    expect(wkd.requests).toHaveLength(2);
  });

  it('asks HKP when WKD has nothing, and caches "no key" for negative_ttl', async () => {
    const armored = await armorPublicKey(alice.publicKey);
    hkp.handle = (req, res) => (req.url?.includes('alice%40partner.example') ? res.writeHead(200).end(armored) : res.writeHead(404).end());
    const d = discovery();
    expect((await d.find('alice@partner.example'))?.source).toBe('hkp');
    expect((await store.pgpKeysFor('alice@partner.example'))[0]?.source).toBe('hkp');
    expect(wkd.requests).toHaveLength(2); // advanced, direct

    expect(await d.find('nobody@partner.example')).toBeNull();
    const asked = wkd.requests.length + hkp.requests.length;
    expect(await d.find('nobody@partner.example')).toBeNull();
    expect(wkd.requests.length + hkp.requests.length).toBe(asked);
    clock += 10_001;
    expect(await d.find('nobody@partner.example')).toBeNull();
    expect(wkd.requests.length + hkp.requests.length).toBe(asked + 3);
  });

  // No stopwatches (they flake on a loaded machine): the hanging servers never answer, so only the
  // deadlines can end a look-up — the test's own time-out guards against one that never ends — and
  // what it cost is read from the work done: one WKD request cut off at its deadline (the direct
  // method not tried after it), one HKP request, and nothing at all for the cached failure.
  const DEADLINE = /^advanced: (no answer from \S+ in time|time-out after \d+ ms)$/;
  it('a WKD server that hangs delays the caller by its time-out only, then HKP answers', async () => {
    wkd.handle = hang;
    hkp.handle = (_q, res) => res.writeHead(200).end(alice.publicKey);
    const d = discovery({ wkd: { domains: ['*'], timeout: 300 } });
    const trace = await d.lookup('alice@partner.example');
    expect(trace.asked).toEqual([
      { source: 'wkd', status: 'error', notes: [expect.stringMatching(DEADLINE), 'direct: not tried, time is up'] },
      expect.objectContaining({ source: 'hkp', status: 'found' }),
    ]);
    expect([wkd.requests.length, hkp.requests.length]).toEqual([1, 1]);
    expect(trace.result?.source).toBe('hkp');
  });

  it('every source hanging: null within the sum of the time-outs, and the failure is cached', async () => {
    wkd.handle = hang;
    hkp.handle = hang;
    const d = discovery({ wkd: { domains: ['*'], timeout: 200 }, hkp: { servers: [{ url: hkp.origin, patterns: ['*'], timeout: 200 }] } });
    const trace = await d.lookup('alice@partner.example');
    expect(trace.result).toBeNull();
    expect(trace.asked).toEqual([
      { source: 'wkd', status: 'error', notes: [expect.stringMatching(DEADLINE), 'direct: not tried, time is up'] },
      { source: 'hkp', server: hkp.origin, status: 'error', notes: [expect.stringMatching(/: (no answer from \S+ in time|time-out after 200 ms)$/)] },
    ]);
    expect([wkd.requests.length, hkp.requests.length]).toEqual([1, 1]);
    expect(await d.find('alice@partner.example')).toBeNull();
    expect(await d.lookup('alice@partner.example')).toMatchObject({ cached: true, asked: [] });
    expect([wkd.requests.length, hkp.requests.length]).toEqual([1, 1]);
  });

  it('never looks up internal domains or domains no source is configured for', async () => {
    const d = discovery({ hkp: { servers: [{ url: hkp.origin, patterns: ['*@partner.example'], timeout: 1_000 }] } });
    expect(d.enabledFor('bob@example.com')).toBe(false); // internal
    expect(await d.find('bob@example.com')).toBeNull();
    expect(await d.find('x@elsewhere.example')).toBeNull();
    expect(await d.find('not an address')).toBeNull();
    expect((await d.lookup('bob@example.com')).skipped).toMatch(/internal domain/);
    expect(wkd.requests).toEqual([]);
    expect(hkp.requests).toEqual([]);
  });

  it('is off with the default config', async () => {
    const d = new KeyDiscovery({ config: testConfig(dir), store, log: silentLogger(), wkdOrigin: () => wkd.origin });
    expect(await d.find('alice@partner.example')).toBeNull();
    expect(wkd.requests).toEqual([]);
  });

  it('shares one look-up between concurrent callers', async () => {
    wkd.handle = (req, res) => setTimeout(() => serveAlice(alice.publicKey)(req, res), 50);
    const d = discovery();
    const all = await Promise.all([d.find('alice@partner.example'), d.find('alice@partner.example'), d.find('ALICE@partner.example')]);
    expect(all.map((f) => f?.key.info.fingerprint)).toEqual([alice.info.fingerprint, alice.info.fingerprint, alice.info.fingerprint]);
    expect(wkd.requests).toHaveLength(1);
  });

  it('a revocation served by WKD is stored and nothing is returned (no fallback to an old key elsewhere)', async () => {
    await store.importPgpKey({ info: { ...alice.info, hasSecret: false }, publicKey: alice.publicKey }, { source: 'hkp', actor: 'test' });
    wkd.handle = serveAlice(aliceRevoked);
    hkp.handle = (_q, res) => res.writeHead(200).end(alice.publicKey);
    const d = discovery();
    expect(await d.find('alice@partner.example')).toBeNull();
    const [k] = await store.pgpKeysFor('alice@partner.example');
    expect(k?.info.revoked).toBe(true);
    expect(hkp.requests).toEqual([]);
  });

  it('keeps the addresses an admin bound a key to when a look-up updates it', async () => {
    const o = openpgp;
    const { privateKey, publicKey } = await o.generateKey({ userIDs: [{ email: 'dan@partner.example' }, { email: 'dan@other.example' }], format: 'object', config: { v6Keys: false } });
    const [admin] = (await parsePgpKeys(Buffer.from(publicKey.write()))).keys;
    await store.importPgpKey(admin!, { source: 'import', actor: 'cli:test' });
    // The same key with a new self-signature (new expiry): other bytes, same fingerprint.
    const { publicKey: renewed } = await o.reformatKey({ privateKey, userIDs: [{ email: 'dan@partner.example' }, { email: 'dan@other.example' }], keyExpirationTime: 86_400 * 365, format: 'binary', config: { v6Keys: false } });
    const renewedPublic = (await o.readKey({ binaryKey: renewed as Uint8Array })).write();
    wkd.handle = serveAlice(Buffer.from(renewedPublic));
    expect((await discovery().find('dan@partner.example'))?.source).toBe('wkd');
    expect((await store.auditLog(`pgp:${admin!.info.fingerprint}`)).map((e) => e.detail)).toContain('updated');
    expect((await store.pgpKeysFor('dan@other.example')).map((k) => k.info.fingerprint)).toEqual([admin!.info.fingerprint]);
  });

  it('does not throw when the keystore does', async () => {
    wkd.handle = serveAlice(alice.publicKey);
    const broken = { ...store, importPgpKey: async () => Promise.reject(new Error('disk full')), findPgpKey: async () => [], pgpKeysFor: async () => [], audit: async () => undefined, auditLog: async () => [] };
    const config = testConfig(dir, { discovery: { wkd: { domains: ['*'], timeout: 1_000 }, hkp: { servers: [] }, cache_ttl: 1, negative_ttl: 1, max_key_size: 65536 } });
    const d = new KeyDiscovery({ config, store: broken, log: silentLogger(), wkdOrigin: () => wkd.origin });
    expect((await d.find('alice@partner.example'))?.key.info.fingerprint).toBe(alice.info.fingerprint);
  });
});
