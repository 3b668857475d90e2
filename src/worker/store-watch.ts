/**
 * What a worker keeps true about the shared store (issue 19): the change watcher (its own writes,
 * NOTIFY from other nodes, the counters re-read every cluster.heartbeat), the look-ups cached by
 * it, and the KEK followed when another node rotates it. Built once per worker process.
 */
import { loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { StoreChanges } from '../keystore/changes.js';
import { followKekRotation, type KekFollower } from '../keystore/kek-follow.js';
import { openKek, saltFile, type KeyStore } from '../keystore/index.js';
import type { Logger } from '../log/index.js';
import { StoreLookups } from './store-lookups.js';

export interface StoreWatch {
  changes: StoreChanges;
  lookups: StoreLookups;
  kek: KekFollower;
  close(): Promise<void>;
}

/**
 * `restart`: how the worker has itself replaced. Run as root, a worker opens the KEK before it
 * drops its privileges; a new root-only KEK file named in the config afterwards cannot be opened
 * by it, but a fresh worker (the supervisor starts one, reclaiming its messages) opens it at start.
 */
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
  const kek = followKekRotation(store, changes, {
    // The config file as it is now: the admin has put the new KEK in it on this node.
    configuredKek: async () => {
      const named = (await loadConfig(config.file)).kek;
      try {
        return await openKek(named, { saltFile: saltFile(config), create: false });
      } catch (err) {
        if (restart && /EACCES|EPERM/.test((err as Error).message) && JSON.stringify(named) !== JSON.stringify(config.kek)) {
          log.warn({ event: 'worker.kek_restart' }, 'the new KEK this config names is readable only at start: this worker is replaced to follow the rotation');
          restart();
        }
        throw err;
      }
    },
    log,
    retryMs: config.cluster.heartbeat,
  });
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
