/**
 * The worker's prepared OpenPGP keys follow the store: a key re-imported with a revocation (or any
 * other change) is prepared again, not served from the cache by its fingerprint — a running worker
 * sees a partner's revocation at once. gpg 2.2 makes the key and the revocation.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openKeyStore, type KeyStore } from '../../../src/keystore/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { parsePgpKeys } from '../../../src/openpgp/index.js';
import { PgpKeys } from '../../../src/worker/index.js';
import { tempDir, testConfig } from '../../helpers/config.js';
import { genRevoke, useGpgHome } from '../../helpers/gpg-revoke.js';

describe('worker PgpKeys: prepared keys are never older than the store', () => {
  const gpg = useGpgHome();
  let cleanup: () => Promise<void>;
  let store: KeyStore;
  beforeEach(async () => {
    let dir: string;
    ({ dir, cleanup } = await tempDir('postern-pgp-keys-'));
    store = await openKeyStore(testConfig(dir));
  });
  afterEach(async () => {
    await store?.close();
    await cleanup();
  });

  it('a revocation imported while the worker runs: the next verification and recipient look-up see it', async () => {
    const fpr = gpg().generate('Pia <pia@partner.example>', 'ed25519');
    const keys = new PgpKeys(store, silentLogger());
    await store.importPgpKey((await parsePgpKeys(gpg().exportPublic(fpr))).keys[0]!, { source: 'import', actor: 'test' });
    const [before] = await keys.verificationKeys([], ['pia@partner.example']);
    expect(await before!.key.isRevoked()).toBe(false);
    expect(await keys.recipient('pia@partner.example')).not.toBeNull();

    gpg().import(genRevoke(gpg(), fpr, 2, new Date()));
    expect((await store.importPgpKey((await parsePgpKeys(gpg().exportPublic(fpr))).keys[0]!, { source: 'import', actor: 'test' })).status).toBe('updated');
    const [after] = await keys.verificationKeys([], ['pia@partner.example']);
    expect(after).not.toBe(before);
    expect(await after!.key.isRevoked()).toBe(true);
    expect(await keys.recipient('pia@partner.example')).toBeNull();
  });
});
