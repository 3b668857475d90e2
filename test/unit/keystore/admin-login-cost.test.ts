/**
 * What a refused admin log-in costs: one scrypt at the cost of new hashes, whether the name has an
 * account or not (nobody learns which names exist from the time an answer takes), and nothing at
 * all for a password too long to be one. scrypt is counted by replacing node:crypto's with itself
 * wrapped (vi.mock: a process of its own, vitest.config.ts OWN_MODULES). On both keystore backends.
 */
import * as nodeCrypto from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openKeyStore, type KeyStore } from '../../../src/keystore/index.js';
import { tempDir } from '../../helpers/config.js';
import { keystoreOnBackend } from '../../helpers/keystore-backend.js';
import { STORE_BACKENDS, useStoreBackend } from '../../helpers/store-backends.js';

vi.mock('node:crypto', async (original) => {
  const real = await original<typeof import('node:crypto')>();
  return { ...real, scrypt: vi.fn(real.scrypt) };
});

const FAST = { N: 2 ** 10, r: 8, p: 1 };
const PASSWORD = 'correct horse battery';

describe.each(STORE_BACKENDS)('an admin log-in (%s)', (backend) => {
  const on = useStoreBackend(backend);
  let cleanup: () => Promise<void>;
  let store: KeyStore;
  const scrypt = vi.mocked(nodeCrypto.scrypt);

  beforeEach(async () => {
    let dir: string;
    ({ dir, cleanup } = await tempDir('postern-admin-cost-'));
    store = await openKeyStore((await keystoreOnBackend(on, dir)).config, { adminScrypt: FAST });
    await store.addAdminAccount({ name: 'alice', password: PASSWORD, roles: ['administrator'], actor: 'cli:root' });
  });
  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  const cost = async (name: string, password: string) => {
    scrypt.mockClear();
    const r = await store.checkAdminLogin(name, password, undefined);
    return [r, scrypt.mock.calls.map((c) => c[3])];
  };
  const once = [{ N: FAST.N, r: FAST.r, p: FAST.p, maxmem: expect.any(Number) }];

  it('costs one scrypt for a wrong password, an unknown name and a name that cannot be one', async () => {
    expect(await cost('alice', 'wrong password here')).toEqual([{ ok: false, reason: 'invalid' }, once]);
    expect(await cost('nobody', PASSWORD)).toEqual([{ ok: false, reason: 'invalid' }, once]);
    expect(await cost('not a name/..', PASSWORD)).toEqual([{ ok: false, reason: 'invalid' }, once]);
    expect(await cost('ALICE', PASSWORD)).toEqual([{ ok: true, account: expect.objectContaining({ name: 'alice' }) }, once]);
  });

  it('costs nothing for a megabyte of password', async () => {
    expect(await cost('alice', 'x'.repeat(1 << 20))).toEqual([{ ok: false, reason: 'invalid' }, []]);
  });
});
