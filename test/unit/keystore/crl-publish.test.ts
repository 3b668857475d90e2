/**
 * The internal CA's CRL is public data the portal serves after it dropped to the unprivileged
 * account: its directory and file must be world-readable whatever the umask of the process that
 * publishes it (077 on a hardened host).
 */
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { initCa, internalCrlFile, openKeyStore, publishInternalCrl, type KeyStore } from '../../../src/keystore/index.js';
import { tempDir } from '../../helpers/config.js';
import { backendConfig } from '../../helpers/keystore-config.js';
import { STORE_BACKENDS, useStoreBackend } from '../../helpers/store-backends.js';

describe.each(STORE_BACKENDS)('publishing the internal CA\'s CRL (%s)', (name) => {
  const backend = useStoreBackend(name);
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: Config;
  let store: KeyStore | undefined;
  let umask: number;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-crl-publish-'));
    config = await backendConfig(backend, dir);
    store = await openKeyStore(config);
    umask = process.umask(0o077);
  });
  afterEach(async () => {
    process.umask(umask);
    await store?.close();
    await cleanup();
  });

  it('writes the directory 0755 and the file 0644 under umask 077', async () => {
    await initCa(store!, { commonName: 'Test CA', actor: 'test' });
    expect(await publishInternalCrl(store! as Parameters<typeof publishInternalCrl>[0], config)).toBe(true);
    const file = internalCrlFile(config);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    expect((await stat(dirname(file))).mode & 0o777).toBe(0o755);
  });
});
