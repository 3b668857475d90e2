/**
 * The worker's look-ups cached per change generation (worker/store-lookups.ts), as two nodes see
 * them on one database: a certificate imported through store A is used by the crypto look-ups of
 * store B once the change arrives (no periodic check needed on PostgreSQL), a deleted one and a
 * distrusted CA stop being used then, and a steady stream of the same look-ups asks the store
 * nothing.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreChanges, type ChangeSource } from '../../../src/keystore/changes.js';
import { silentLogger } from '../../../src/log/index.js';
import { parseImport, type ImportBundle } from '../../../src/pki/index.js';
import { CryptoKeys } from '../../../src/worker/crypto-keys.js';
import { StoreLookups, type StoreReads } from '../../../src/worker/store-lookups.js';
import { tempDir, testConfig } from '../../helpers/config.js';
import { opensslCa, opensslMailbox } from '../../helpers/pki-openssl.js';
import { STORE_BACKENDS, useStoreBackend } from '../../helpers/store-backends.js';
import { twoStores, until } from '../../helpers/two-stores.js';

let dir: string;
let cleanup: () => Promise<void>;
let ca: ImportBundle;
let carol: ImportBundle;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('postern-lookups-'));
  const issued = await opensslCa(dir, 'Lookups CA');
  const box = await opensslMailbox(dir, issued, 'carol@partner.example');
  ca = await parseImport(await readFile(issued.cert));
  carol = await parseImport(await readFile(box.cert));
});
afterAll(async () => cleanup());

describe.each(STORE_BACKENDS)('worker look-ups cached per change generation (%s)', (name) => {
  const backend = useStoreBackend(name);
  const closing: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closing.splice(0).reverse()) await c();
  });
  const notified = name === 'postgres';

  /** Node B's worker: watcher, cached look-ups, prepared keys over store B. */
  async function nodes() {
    const s = await twoStores(backend, join(dir, `${name}-kek.key`));
    closing.push(() => s.close());
    const changes = await StoreChanges.watch(s.b, { interval: 60_000, notified });
    closing.push(() => changes.close());
    s.b.onOwnChange((t) => changes.bump(t));
    const lookups = new StoreLookups(s.b, changes);
    const keys = new CryptoKeys(s.b, () => testConfig(dir), silentLogger(), undefined, lookups);
    /** Until B has heard of a change to `topic` since `since` (PostgreSQL: NOTIFY; SQLite: the read before a message). */
    const heard = async (topic: 'certificates', since: number) => {
      if (notified) await until(() => changes.generation(topic)! > since);
      else await lookups.current();
      expect(changes.generation(topic)).toBeGreaterThan(since);
    };
    return { ...s, changes, lookups, keys, heard };
  }

  it('a certificate imported through A is used by B\'s encryption look-up once the change arrives, and no longer once deleted', async () => {
    const { a, changes, lookups, keys, heard } = await nodes();
    expect(await keys.encryptionTarget('carol@partner.example')).toBeNull();
    let g = changes.generation('certificates')!;
    const { certificate } = await a.importCertificate(carol.certificates[0]!, { source: 'import', actor: 'test' });
    await heard('certificates', g);
    const target = await keys.encryptionTarget('carol@partner.example');
    expect(target?.certificate.fingerprint).toBe(certificate.fingerprint);

    // A steady stream: the same look-ups again ask the store nothing.
    const misses = lookups.counts.misses;
    for (let i = 0; i < 20; i++) expect((await keys.encryptionTarget('carol@partner.example'))?.certificate.fingerprint).toBe(certificate.fingerprint);
    expect(lookups.counts.misses).toBe(misses);
    expect(lookups.counts.hits).toBeGreaterThanOrEqual(40);

    g = changes.generation('certificates')!;
    await a.deleteCertificate(certificate, { withKey: false, actor: 'test' });
    await heard('certificates', g);
    expect(await keys.encryptionTarget('carol@partner.example')).toBeNull();
  });

  it('a CA distrusted through A leaves B\'s trust store when the change arrives', async () => {
    const { a, b, changes, keys, heard } = await nodes();
    let g = changes.generation('certificates')!;
    await a.importCertificate(ca.certificates[0]!, { source: 'import', trusted: true, actor: 'test' });
    await heard('certificates', g);
    expect((await keys.trustStore()).anchors.map((c) => c.fingerprint)).toEqual([ca.certificates[0]!.fingerprint]);
    g = changes.generation('certificates')!;
    expect(await a.setTrusted(ca.certificates[0]!.fingerprint, false, 'test')).toBe(true);
    await heard('certificates', g);
    expect((await keys.trustStore()).anchors).toEqual([]);
    expect((await b.trustAnchors()).length).toBe(0);
  });

  it('B\'s own import counts for its next look-up at once, without a round trip', async () => {
    const { b, keys } = await nodes();
    expect(await keys.encryptionTarget('carol@partner.example')).toBeNull();
    await b.importCertificate(carol.certificates[0]!, { source: 'import', actor: 'test' });
    expect((await keys.encryptionTarget('carol@partner.example'))?.certificate.fingerprint).toBe(carol.certificates[0]!.fingerprint);
  });
});

describe('StoreLookups', () => {
  /** A store whose answers the test releases by hand: the order of a look-up and a change is the test's. */
  function slowStore() {
    const pending: (() => void)[] = [];
    let answer = 'old';
    let asked = 0;
    const store = {
      certificatesFor: () => {
        asked++;
        const given = answer;
        return new Promise((resolve) => pending.push(() => resolve([{ fingerprint: given }])));
      },
    } as unknown as StoreReads;
    return { store, release: () => pending.splice(0).forEach((r) => r()), set: (a: string) => (answer = a), asked: () => asked };
  }
  const counters: ChangeSource = { changeCounters: async () => ({ certificates: 0 }), listenForChanges: async () => async () => undefined };

  it('an answer that was in flight when its topic changed is not served afterwards', async () => {
    const s = slowStore();
    const changes = await StoreChanges.watch(counters, { interval: 60_000, notified: true });
    const lookups = new StoreLookups(s.store, changes);
    const first = lookups.certificatesFor('x@example.com');
    s.set('new');
    changes.bump('certificates'); // committed while the question was on its way
    s.release();
    expect((await first)[0]!.fingerprint).toBe('old');
    const second = lookups.certificatesFor('x@example.com');
    s.release();
    expect((await second)[0]!.fingerprint).toBe('new');
    expect(s.asked()).toBe(2);
    await changes.close();
  });

  it('caches nothing while the change counters cannot be confirmed (the store unreachable)', async () => {
    const s = slowStore();
    let now = 1_000_000;
    const changes = await StoreChanges.watch(counters, { interval: 60_000, notified: true, now: () => now });
    const lookups = new StoreLookups(s.store, changes);
    const ask = async () => {
      const p = lookups.certificatesFor('x@example.com');
      s.release();
      return p;
    };
    await ask();
    await ask();
    expect(s.asked()).toBe(1);
    now += 200_000; // no successful read of the counters for longer than 2 × heartbeat + 1 s
    expect(changes.generation('certificates')).toBeNull();
    await ask();
    await ask();
    expect(s.asked()).toBe(3);
    await changes.close();
  });
});
