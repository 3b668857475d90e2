/**
 * Change propagation (issue 19, keystore/changes.ts) between two stores on one database — two
 * cluster nodes on PostgreSQL, two processes on SQLite — and the KEK rotated through one store
 * followed by the other (keystore/kek-follow.ts), against a real PostgreSQL server.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreChanges, type ChangeSource } from '../../../src/keystore/changes.js';
import { openFileKek } from '../../../src/keystore/kek/index.js';
import { KekError } from '../../../src/keystore/kek/types.js';
import { followKekRotation, type KekFollowLog } from '../../../src/keystore/kek-follow.js';
import type { ImportBundle } from '../../../src/pki/index.js';
import { tempDir } from '../../helpers/config.js';
import { STORE_BACKENDS, useStoreBackend } from '../../helpers/store-backends.js';
import { mailbox, twoStores, until } from '../../helpers/two-stores.js';

let dir: string;
let cleanup: () => Promise<void>;
let alice: ImportBundle;
let bob: ImportBundle;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('postern-changes-'));
  [alice, bob] = await Promise.all([mailbox(dir, 'alice@example.com'), mailbox(dir, 'bob@example.com')]);
});
afterAll(async () => cleanup());

describe.each(STORE_BACKENDS)('store changes (%s)', (name) => {
  const backend = useStoreBackend(name);
  const closing: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closing.splice(0).reverse()) await c();
  });
  const notified = name === 'postgres';

  async function pair() {
    const s = await twoStores(backend, join(dir, `${name}-kek.key`));
    closing.push(() => s.close());
    return s;
  }
  async function watcher(source: ChangeSource, interval = 60_000) {
    const w = await StoreChanges.watch(source, { interval, notified });
    closing.push(() => w.close());
    return w;
  }

  it('a certificate imported through one store moves the other\'s generation without waiting for the periodic check', async () => {
    const { a, b } = await pair();
    const wa = await watcher(a);
    const wb = await watcher(b);
    a.onOwnChange((t) => wa.bump(t));
    const before = { a: wa.generation('certificates')!, b: wb.generation('certificates')!, pgp: wb.generation('pgp')! };
    expect(before.b).not.toBeNull();

    await a.importCertificate(alice.certificates[0]!, { source: 'import', actor: 'test' });
    // Its own write: at once, no round trip.
    expect(wa.generation('certificates')).toBeGreaterThan(before.a);
    // The other: NOTIFY (PostgreSQL) within moments; SQLite reads the counters before each message.
    if (notified) await until(() => wb.generation('certificates')! > before.b);
    else await wb.current();
    expect(wb.generation('certificates')).toBeGreaterThan(before.b);
    // Only what changed: the OpenPGP look-ups stay valid.
    expect(wb.generation('pgp')).toBe(before.pgp);
  });

  it('tells listeners of each topic that moved, and a deletion is a change like an import', async () => {
    const { a, b } = await pair();
    const wb = await watcher(b);
    const { certificate } = await a.importCertificate(bob.certificates[0]!, { source: 'import', actor: 'test' });
    await wb.refresh();
    const heard: string[] = [];
    wb.onChange((t) => heard.push(t));
    await a.deleteCertificate(certificate, { withKey: false, actor: 'test' });
    if (notified) await until(() => heard.includes('certificates'));
    else await wb.current();
    expect(heard).toContain('certificates');
    expect(heard).not.toContain('pgp');
  });

  it('follows a KEK rotated through the other store once its config names the new KEK; seals nothing under the old one meanwhile', async () => {
    const { a, b } = await pair();
    const wb = await watcher(b);
    const kek2File = join(dir, `${name}-kek2-${Date.now()}.key`);
    await a.importCertificate(alice.certificates[0]!, { source: 'import', actor: 'test' });
    expect(await a.importPrivateKey(alice.keys[0]!, { actor: 'test' })).toBe('added');
    const stored = (await b.certificatesFor('alice@example.com'))[0]!;
    const oldId = b.kekId;

    // B's config still names the old KEK: the admin has not edited it yet.
    let configured = join(dir, `${name}-kek.key`);
    const events: { level: string; event: unknown }[] = [];
    const log: KekFollowLog = { info: (f) => events.push({ level: 'info', event: f.event }), error: (f) => events.push({ level: 'error', event: f.event }) };
    const follower = followKekRotation(b, wb, { configuredKek: () => openFileKek(configured, { create: false }), log, retryMs: 100, role: 'worker' });
    closing.push(async () => follower.stop());

    const kek2 = await openFileKek(kek2File, { create: true });
    expect(await a.rotateKek(kek2, 'test')).toBe(1);
    if (!notified) await wb.current();
    await until(() => events.some((e) => e.event === 'worker.kek_not_followed'));
    expect(events).toContainEqual({ level: 'error', event: 'worker.kek_not_followed' });
    expect(b.kekId).toBe(oldId);
    // Behind: what it would seal no node could read; what it would unseal it cannot.
    await expect(b.importPrivateKey(bob.keys[0]!, { actor: 'test' })).rejects.toBeInstanceOf(KekError);
    await expect(b.privateKeyFor(stored, 'sign', 'test')).rejects.toThrow();

    // The admin puts the new KEK in B's config: followed at the next attempt, no restart.
    configured = kek2File;
    await until(() => b.kekId === a.kekId);
    expect(b.kekId).toBe(kek2.id);
    expect(events).toContainEqual({ level: 'info', event: 'worker.kek_followed' });
    expect((await b.privateKeyFor(stored, 'sign', 'test'))!.equals(alice.keys[0]!.pkcs8)).toBe(true);
    // And what B seals now, A reads.
    await b.importCertificate(bob.certificates[0]!, { source: 'import', actor: 'test' });
    expect(await b.importPrivateKey(bob.keys[0]!, { actor: 'test' })).toBe('added');
    const bobs = (await a.certificatesFor('bob@example.com'))[0]!;
    expect((await a.privateKeyFor(bobs, 'sign', 'test'))!.equals(bob.keys[0]!.pkcs8)).toBe(true);
    expect(await a.kekIdsInUse()).toEqual([kek2.id]);
    expect(await follower.check()).toBe('current');
  });

  if (name === 'postgres') {
    it('after the server went away and came back, the reconnect re-check catches changes made meanwhile; caches are not trusted while it is away', async () => {
      const { a, b } = await pair();
      let reconnects = 0;
      // B checks the counters only every minute: what it learns here comes from the reconnect.
      const counting: ChangeSource = {
        changeCounters: () => b.changeCounters(),
        listenForChanges: (onChange, onReconnect) => b.listenForChanges(onChange, () => (reconnects++, onReconnect?.())),
      };
      const wb = await watcher(counting, 60_000);
      // C re-reads often, so its confirmation runs out while the server is away.
      const wc = await watcher(b, 100);
      const before = wb.generation('certificates')!;
      const pg = await backend.postgres();
      await pg.halt();
      try {
        await until(() => wc.generation('certificates') === null);
        expect(wc.generation('certificates')).toBeNull();
      } finally {
        await pg.resume();
      }
      // Made at once, before B's LISTEN connection (in back-off) is back: its NOTIFY reaches no one.
      await until(async () => a.importCertificate(alice.certificates[0]!, { source: 'import', actor: 'test' }).then(() => true, () => false));
      await until(() => reconnects > 0 && wb.generation('certificates')! > before);
      expect(reconnects).toBeGreaterThan(0);
      expect(wb.generation('certificates')).toBeGreaterThan(before);
      await until(() => wc.generation('certificates') !== null);
      expect(wc.generation('certificates')).not.toBeNull();
    });
  }
});
