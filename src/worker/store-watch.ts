/**
 * What a worker keeps true about the shared store (issue 19): the change watcher (its own writes,
 * NOTIFY from other nodes, the counters re-read every cluster.heartbeat), the look-ups cached by
 * it, and the KEK followed when another node rotates it. Built once per worker process.
 */
import type { Config } from '../config/types.js';
import { StoreChanges } from '../keystore/changes.js';
import { followConfiguredKek, type KekFollower } from '../keystore/kek-follow.js';
import { saltFile, type KeyStore } from '../keystore/index.js';
import type { Logger } from '../log/index.js';
import { StoreLookups } from './store-lookups.js';

export interface StoreWatch {
  changes: StoreChanges;
  lookups: StoreLookups;
  kek: KekFollower;
  close(): Promise<void>;
}

/** `restart`: how the worker has itself replaced when it cannot open a new KEK itself (kek-follow.ts). */
export async function watchStore(store: KeyStore, config: Config, log: Logger, restart?: () => void): Promise<StoreWatch> {
  const changes = await StoreChanges.watch(store, {
    interval: config.cluster.heartbeat,
    // Only PostgreSQL tells of changes; SQLite's counters are read before each message instead.
    notified: store.backend.dialect === 'postgres',
    onCheckFailed: (err) =>
      log.warn({ event: 'worker.store_changes_unreadable', reason: (err as Error).message }, 'the keystore change counters cannot be read: look-ups are not cached until they can'),
  });
  const stopOwn = store.onOwnChange((topic) => changes.bump(topic));
  const lookups = new StoreLookups(store, changes);
  const kek = followConfiguredKek(store, changes, { config, saltFile: saltFile(config), log, role: 'worker', ...(restart ? { restart } : {}) });
  // A worker started between the rotation and its config's edit is refused at start
  // (openKeyStore); one started after follows from here.
  return {
    changes,
    lookups,
    kek,
    async close() {
      kek.stop();
      stopOwn();
      await changes.close();
    },
  };
}
