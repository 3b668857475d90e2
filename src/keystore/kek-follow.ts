/**
 * KEK rotation in a cluster (issue 19): `postern kek rotate` on one node re-wraps every secret in
 * one transaction and bumps the 'kek' topic; every other process that holds the KEK (workers, the
 * admin console) follows without a restart. It cannot learn the new KEK from the database — the
 * database must never hold it — so it reads its own config again: the admin has put the new KEK
 * on every node beforehand (the README's "Rotating the KEK of a cluster" says how).
 *
 * On a 'kek' change, and every `retryMs` while behind: when the secrets are wrapped by a KEK other
 * than the one held, open the KEK the config file names now and take it if it unseals a secret.
 * While the config does not name it yet, the old KEK unseals nothing new and seals nothing
 * (store-base.ts refuses), the keys already prepared keep working, and an error is logged each
 * time — mail that needs a new unseal waits, none is sent in clear.
 *
 * Secrets: KEKs are opened and closed here, never logged; only their ids (fingerprints) are.
 */
import { loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { openKek } from './kek/index.js';
import type { Kek } from './kek/types.js';
import type { StoreChanges } from './changes.js';
import type { KeyStoreBase } from './store-base.js';

export interface KekFollowLog {
  info(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

export interface KekFollowOptions {
  /** The KEK the config names now (the config file read again, the KEK opened without creating it). */
  configuredKek: () => Promise<Kek>;
  log: KekFollowLog;
  /** ms between attempts while the config does not name the KEK the secrets are under (cluster.heartbeat). */
  retryMs: number;
  /** Which role follows (the roles that hold the KEK), for the event codes. */
  role: 'worker' | 'admin';
}

export type KekFollowResult = 'current' | 'followed' | 'behind';

export interface KekFollower {
  /** Compare now (also what a 'kek' change does); how it went. */
  check(): Promise<KekFollowResult>;
  stop(): void;
}

type FollowingStore = Pick<KeyStoreBase, 'kekId' | 'kekIdsInUse' | 'adoptKek'>;

export function followKekRotation(store: FollowingStore, changes: Pick<StoreChanges, 'onChange'>, opts: KekFollowOptions): KekFollower {
  const admin = opts.role === 'admin';
  let retry: NodeJS.Timeout | null = null;
  let running: Promise<KekFollowResult> | null = null;
  let stopped = false;

  const attempt = async (): Promise<KekFollowResult> => {
    const inUse = await store.kekIdsInUse();
    const held = store.kekId;
    if (inUse.every((id) => id === held)) return 'current';
    const wanted = inUse.filter((id) => id !== held);
    let next: Kek;
    try {
      next = await opts.configuredKek();
    } catch (err) {
      opts.log.error({ event: admin ? 'admin.kek_not_followed' : 'worker.kek_not_followed', held, wanted, reason: (err as Error).message }, 'the KEK was rotated on another node; the KEK in this config cannot be opened');
      return 'behind';
    }
    if (next.id === held || !wanted.includes(next.id)) {
      await next.close();
      opts.log.error(
        { event: admin ? 'admin.kek_not_followed' : 'worker.kek_not_followed', held, wanted, configured: next.id },
        'the KEK was rotated on another node; put the new KEK in this node\'s config (nothing is sealed or newly unsealed until then)',
      );
      return 'behind';
    }
    try {
      await store.adoptKek(next);
    } catch (err) {
      await next.close();
      opts.log.error({ event: admin ? 'admin.kek_not_followed' : 'worker.kek_not_followed', held, wanted, configured: next.id, reason: (err as Error).message }, 'the configured KEK does not unseal the rotated keys');
      return 'behind';
    }
    opts.log.info({ event: admin ? 'admin.kek_followed' : 'worker.kek_followed', from: held, to: next.id }, 'following the KEK rotated on another node');
    return 'followed';
  };

  let again = false;
  const check = (): Promise<KekFollowResult> => {
    // A change while a comparison runs may have come after it read the rows: compare once more.
    if (running) {
      again = true;
      return running;
    }
    running = attempt()
      .catch((err: unknown) => {
        // The store unreachable: the next change or retry asks again.
        opts.log.error({ event: admin ? 'admin.kek_not_followed' : 'worker.kek_not_followed', reason: (err as Error).message }, 'could not compare the KEK with the keystore');
        return 'behind' as const;
      })
      .then((r) => {
        running = null;
        if (retry) clearTimeout(retry);
        retry = null;
        if (again && !stopped) {
          again = false;
          return check();
        }
        if (r === 'behind' && !stopped) {
          retry = setTimeout(() => void check(), opts.retryMs);
          retry.unref();
        }
        return r;
      });
    return running;
  };

  const unwatch = changes.onChange((topic) => {
    if (topic === 'kek') void check();
  });
  return {
    check,
    stop() {
      stopped = true;
      unwatch();
      if (retry) clearTimeout(retry);
      retry = null;
    },
  };
}

/**
 * The follower as a role runs it: the KEK its config file names now (read again), tried every
 * cluster.heartbeat while behind. `restart`: how a role that dropped root has itself replaced —
 * it opened the KEK at start, as root; a new root-only KEK file named in the config afterwards
 * only a fresh process (the supervisor starts one, reclaiming its messages) can open.
 */
export function followConfiguredKek(
  store: FollowingStore,
  changes: Pick<StoreChanges, 'onChange'>,
  opts: { config: Config; saltFile: string; log: KekFollowLog & { warn(fields: Record<string, unknown>, msg: string): void }; role: 'worker' | 'admin'; restart?: () => void },
): KekFollower {
  const { config, log, restart } = opts;
  return followKekRotation(store, changes, {
    configuredKek: async () => {
      const named = (await loadConfig(config.file)).kek;
      try {
        return await openKek(named, { saltFile: opts.saltFile, create: false });
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
    role: opts.role,
  });
}
