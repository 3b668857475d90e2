/**
 * Autocrypt Level 1: header built and parsed back (and read by gpg), the addr/From: rule, the
 * attribute rules, minimal keydata, and key-change safety against a real keystore: a second key
 * for a known address is stored, audited as a key change and ranked below the known key.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as openpgp from 'openpgp';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { autocryptHeader, importAutocrypt, parseAutocrypt, parseAutocryptHeaders, preferredPgpKeys } from '../../../src/directory/index.js';
import { openKeyStore, type KeyStore } from '../../../src/keystore/index.js';
import { generatePgpKey, parsePgpKeys, type ParsedPgpKey } from '../../../src/openpgp/index.js';
import { tempDir, testConfig } from '../../helpers/config.js';

const run = promisify(execFile);

describe('Autocrypt', () => {
  let alice: ParsedPgpKey;
  let alice2: ParsedPgpKey;
  let multi: Buffer;
  let dir: string;
  let cleanup: () => Promise<void>;
  let store: KeyStore;

  beforeAll(async () => {
    // Made an hour ago: the new key is then the newer one, which the store alone would put first.
    alice = await generatePgpKey({ address: 'alice@partner.example', name: 'Alice', now: new Date(Date.now() - 3_600_000) });
    alice2 = await generatePgpKey({ address: 'alice@partner.example', name: 'Alice (new phone)' });
    const { privateKey } = await openpgp.generateKey({ userIDs: [{ name: 'Alice', email: 'alice@partner.example' }, { email: 'alice@private.example' }], subkeys: [{}, { sign: true }], format: 'object', config: { v6Keys: false } });
    multi = Buffer.from(privateKey.toPublic().write());
  });
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-autocrypt-'));
    store = await openKeyStore(testConfig(dir));
  });
  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  it('builds a folded header and parses it back', async () => {
    const value = await autocryptHeader('alice@partner.example', alice.publicKey, { preferEncrypt: 'mutual' });
    expect(value).toMatch(/^addr=alice@partner\.example; prefer-encrypt=mutual; keydata=\r\n [A-Za-z0-9+/]{76}\r\n /);
    expect(value.split('\r\n').every((l) => l.length <= 78)).toBe(true);
    const r = await parseAutocrypt(value, 'Alice@Partner.Example');
    if (!r.ok) throw new Error(r.reason);
    expect(r.header.addr).toBe('alice@partner.example');
    expect(r.header.preferEncrypt).toBe('mutual');
    expect(r.header.key.info.fingerprint).toBe(alice.info.fingerprint);
    expect(r.header.key.secretKey).toBeUndefined();
    expect(Buffer.from(r.header.keydata, 'base64').equals(r.header.key.publicKey)).toBe(true);
    const plain = await parseAutocrypt(await autocryptHeader('alice@partner.example', alice.publicKey), 'alice@partner.example');
    expect(plain.ok && plain.header.preferEncrypt).toBe('nopreference');
  });

  it('keydata is minimal: one user id, one encryption subkey, no other identity; gpg reads it', async () => {
    const value = await autocryptHeader('alice@partner.example', multi);
    const r = await parseAutocrypt(value, 'alice@partner.example');
    if (!r.ok) throw new Error(r.reason);
    const key = await openpgp.readKey({ binaryKey: new Uint8Array(Buffer.from(r.header.keydata, 'base64')) });
    expect(key.getUserIDs()).toEqual(['Alice <alice@partner.example>']);
    expect(key.subkeys).toHaveLength(1);
    expect(r.header.key.info.canEncrypt).toBe(true);
    const { dir: home, cleanup: done } = await tempDir('postern-ac-gpg-');
    try {
      const child = run('gpg', ['--homedir', home, '--batch', '--import-options', 'show-only', '--with-colons', '--import'], { encoding: 'utf8' });
      child.child.stdin!.end(Buffer.from(r.header.keydata, 'base64'));
      const { stdout } = await child;
      expect(stdout).toMatch(new RegExp(`^fpr:+${key.getFingerprint().toUpperCase()}:`, 'm'));
      expect(stdout.split('\n').filter((l) => l.startsWith('uid:'))).toHaveLength(1);
    } finally {
      await done();
    }
  });

  it('ignores a header whose addr is not the From: address', async () => {
    const value = await autocryptHeader('alice@partner.example', alice.publicKey);
    const r = await parseAutocrypt(value, 'mallory@evil.example');
    expect(r).toEqual({ ok: false, reason: 'addr alice@partner.example is not the From: address mallory@evil.example' });
  });

  it('follows the attribute rules of Level 1', async () => {
    const keydata = alice.publicKey.toString('base64');
    const ok = (v: string) => parseAutocrypt(v, 'alice@partner.example').then((r) => (r.ok ? 'ok' : r.reason));
    expect(await ok(`addr=alice@partner.example; _foo=bar; keydata=${keydata}`)).toBe('ok');
    expect(await ok(`addr=alice@partner.example; prefer-encrypt=sometimes; keydata=${keydata}`)).toBe('ok');
    expect(await ok(`addr=alice@partner.example; foo=bar; keydata=${keydata}`)).toBe('unknown critical attribute "foo"');
    expect(await ok(`keydata=${keydata}`)).toBe('no addr attribute');
    expect(await ok('addr=alice@partner.example')).toBe('no keydata attribute');
    expect(await ok(`addr=alice@partner.example; addr=bob@partner.example; keydata=${keydata}`)).toBe('attribute addr given twice');
    expect(await ok('addr=alice@partner.example; keydata=not*base64')).toBe('keydata is not base64');
    expect(await ok('addr=alice@partner.example; keydata=AAAA')).toMatch(/^not an OpenPGP key/);
    // A key whose user ids name someone else is no key for alice, whatever addr says.
    const bob = await generatePgpKey({ address: 'bob@partner.example' });
    expect(await ok(`addr=alice@partner.example; keydata=${bob.publicKey.toString('base64')}`)).toMatch(/dropped: its user ids are for bob@partner.example/);
    // Two keys in one keydata.
    expect(await ok(`addr=alice@partner.example; keydata=${Buffer.concat([alice.publicKey, alice2.publicKey]).toString('base64')}`)).toBe('keydata holds more than one key');
  });

  it('treats several valid headers for the sender as none', async () => {
    const a = await autocryptHeader('alice@partner.example', alice.publicKey);
    const b = await autocryptHeader('alice@partner.example', alice2.publicKey);
    expect(await parseAutocryptHeaders([a, b], 'alice@partner.example')).toEqual({ ok: false, reason: '2 Autocrypt headers for alice@partner.example' });
    const one = await parseAutocryptHeaders([a, 'addr=bob@partner.example; keydata=AAAA'], 'alice@partner.example');
    expect(one.ok && one.header.key.info.fingerprint).toBe(alice.info.fingerprint);
  });

  it('imports with source autocrypt; the same key again is no change', async () => {
    const r = await parseAutocrypt(await autocryptHeader('alice@partner.example', alice.publicKey), 'alice@partner.example');
    if (!r.ok) throw new Error(r.reason);
    const first = await importAutocrypt(store, r.header, { internalDomains: ['example.com'] });
    expect(first).toMatchObject({ status: 'added', keyChange: false });
    expect((await store.pgpKeysFor('alice@partner.example')).map((k) => k.source)).toEqual(['autocrypt']);
    const again = await importAutocrypt(store, r.header, { internalDomains: ['example.com'] });
    expect(again).toMatchObject({ status: 'duplicate', keyChange: false });
  });

  it('flags a key change: stored, audited, and not preferred over the known key', async () => {
    await store.importPgpKey({ info: { ...alice.info, hasSecret: false }, publicKey: alice.publicKey }, { source: 'wkd', actor: 'worker' });
    const r = await parseAutocrypt(await autocryptHeader('alice@partner.example', alice2.publicKey), 'alice@partner.example');
    if (!r.ok) throw new Error(r.reason);
    const out = await importAutocrypt(store, r.header, { internalDomains: ['example.com'] });
    expect(out).toMatchObject({ status: 'added', keyChange: true });
    const audit = await store.auditLog(`pgp:${alice2.info.fingerprint}`);
    expect(audit.map((e) => e.action)).toEqual(['import', 'key-change']);
    expect(audit[1]!.detail).toContain(`known before: ${alice.info.fingerprint}`);
    // The store alone would put the newer key first; preferredPgpKeys keeps the known one ahead.
    expect((await store.pgpKeysFor('alice@partner.example'))[0]!.info.fingerprint).toBe(alice2.info.fingerprint);
    const ranked = await preferredPgpKeys(store, 'alice@partner.example');
    expect(ranked.map((k) => [k.info.fingerprint, k.keyChange])).toEqual([
      [alice.info.fingerprint, false],
      [alice2.info.fingerprint, true],
    ]);
    // Seen again: still flagged, not audited twice.
    expect(await importAutocrypt(store, r.header, { internalDomains: ['example.com'] })).toMatchObject({ status: 'duplicate', keyChange: true });
    expect((await store.auditLog(`pgp:${alice2.info.fingerprint}`)).filter((e) => e.action === 'key-change')).toHaveLength(1);
  });

  it('never imports for an internal address', async () => {
    const ours = await generatePgpKey({ address: 'ceo@example.com' });
    const r = await parseAutocrypt(await autocryptHeader('ceo@example.com', ours.publicKey), 'ceo@example.com');
    if (!r.ok) throw new Error(r.reason);
    expect(await importAutocrypt(store, r.header, { internalDomains: ['example.com'] })).toBeNull();
    expect(await store.pgpKeysFor('ceo@example.com')).toEqual([]);
  });

  it('binds an Autocrypt key to addr only, not to the other addresses it names', async () => {
    const keydata = multi.toString('base64');
    const r = await parseAutocrypt(`addr=alice@partner.example; keydata=${keydata}`, 'alice@partner.example');
    if (!r.ok) throw new Error(r.reason);
    await importAutocrypt(store, r.header, { internalDomains: [] });
    expect(await store.pgpKeysFor('alice@private.example')).toEqual([]);
    expect((await parsePgpKeys(multi)).keys[0]!.info.addresses.sort()).toEqual(['alice@partner.example', 'alice@private.example']);
  });
});
