/**
 * A key the store holds is merged with each new copy of it, never replaced: a copy without the
 * revocation (older, or stripped by whoever serves it — a key server, WKD, an Autocrypt header)
 * must not un-revoke the key, while a copy that brings a revocation or a new user id is taken.
 * gpg 2.2 makes the key, its revocation and both copies.
 */
import * as openpgp from 'openpgp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { openKeyStore, type KeyStore } from '../../../src/keystore/index.js';
import { parsePgpKeys } from '../../../src/openpgp/index.js';
import { tempDir } from '../../helpers/config.js';
import { backendConfig } from '../../helpers/keystore-config.js';
import { STORE_BACKENDS, useStoreBackend } from '../../helpers/store-backends.js';
import { genRevoke, useGpgHome } from '../../helpers/gpg-revoke.js';

describe.each(STORE_BACKENDS)('keystore: OpenPGP keys are merged, a revocation is never lost (%s)', (name) => {
  const backend = useStoreBackend(name);
  const gpg = useGpgHome();
  let cleanup: () => Promise<void>;
  let config: Config;
  let store: KeyStore;
  beforeEach(async () => {
    let dir: string;
    ({ dir, cleanup } = await tempDir('postern-pgp-merge-'));
    config = await backendConfig(backend, dir);
    store = await openKeyStore(config);
  });
  afterEach(async () => {
    await store?.close();
    await cleanup();
  });

  /** The same gpg key before and after its revocation (key compromised), and after a new user id. */
  const copies = async (name: string) => {
    const fpr = gpg().generate(`${name} <${name}@example.org>`, 'ed25519');
    const plain = (await parsePgpKeys(gpg().exportPublic(fpr))).keys[0]!;
    gpg().run(['--quick-add-uid', fpr, `${name} <${name}2@example.org>`]);
    const withUid = (await parsePgpKeys(gpg().exportPublic(fpr))).keys[0]!;
    gpg().import(genRevoke(gpg(), fpr, 2, new Date()));
    const revoked = (await parsePgpKeys(gpg().exportPublic(fpr))).keys[0]!;
    expect([plain.info.revoked, revoked.info.revoked]).toEqual([false, true]);
    return { fpr, plain, withUid, revoked };
  };
  const storedRevoked = async (fpr: string) => {
    const [k] = await store.findPgpKey(fpr);
    const key = await openpgp.readKey({ binaryKey: new Uint8Array(k!.publicKey) });
    return { flag: k!.info.revoked, inKey: await key.isRevoked(), canEncrypt: k!.info.canEncrypt };
  };

  it('the revoked copy first, then an older one from Autocrypt: still revoked, in the flag and in the stored key', async () => {
    const { fpr, plain, revoked } = await copies('strip');
    expect((await store.importPgpKey(revoked, { source: 'import', actor: 'test' })).status).toBe('added');
    expect((await store.importPgpKey(plain, { source: 'autocrypt', actor: 'test' })).status).toBe('duplicate');
    expect(await storedRevoked(fpr)).toEqual({ flag: true, inKey: true, canEncrypt: false });
  });

  it('the older copy first, then the revoked one: the revocation is taken', async () => {
    const { fpr, plain, revoked } = await copies('late');
    await store.importPgpKey(plain, { source: 'hkp', actor: 'test' });
    expect((await store.importPgpKey(revoked, { source: 'hkp', actor: 'test' })).status).toBe('updated');
    expect(await storedRevoked(fpr)).toEqual({ flag: true, inKey: true, canEncrypt: false });
  });

  it('a copy with a new user id adds it, bound to the address it was found for without unbinding the old one; a later copy without it takes nothing away', async () => {
    const { fpr, plain, withUid } = await copies('uid');
    await store.importPgpKey(plain, { source: 'import', actor: 'test' });
    // As the directory gives it: the addresses cut down to the one asked about (directory/keys.ts).
    const narrowed = { ...withUid, info: { ...withUid.info, addresses: ['uid2@example.org'] } };
    expect((await store.importPgpKey(narrowed, { source: 'wkd', actor: 'test' })).status).toBe('updated');
    expect((await store.importPgpKey(plain, { source: 'import', actor: 'test' })).status).toBe('duplicate');
    const [k] = await store.findPgpKey(fpr);
    expect(k!.info.userIds).toEqual(['uid <uid@example.org>', 'uid <uid2@example.org>']);
    for (const a of ['uid@example.org', 'uid2@example.org']) expect((await store.pgpKeysFor(a)).map((x) => x.info.fingerprint), a).toEqual([fpr]);
  });
});
