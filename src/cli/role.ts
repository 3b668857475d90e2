import { resolve } from 'node:path';
import { loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { createLogger, type Logger } from '../log/index.js';
import { startRelay } from '../relay/index.js';
import { startSmtpd } from '../smtpd/index.js';
import { Spool } from '../spool/index.js';
import { EXIT_FATAL, type RoleMessage, type RoleName, type SupervisorMessage } from '../supervisor/index.js';
import { combineDirectories, KeyDiscovery, LdapDirectory, ldapCrlFetcher, withFailurePolicy } from '../directory/index.js';
import { CryptoKeys, PgpKeys, startWorker, type KeySources, type PolicyContext } from '../worker/index.js';
import { internalCrlFile, openKeyStore, openPublicKeyStore, revocationCheckerFor } from '../keystore/index.js';
import { emptyDirectory, loadStaticDirectory } from '../policy/index.js';
import { startPortal } from '../portal/index.js';
import { loadPolicy } from './policy-load.js';
import { parse, UsageError, type CliIo } from './args.js';

interface Running {
  reload(config: Config): void;
  close(): Promise<void>;
  /** Work announced by another role through the supervisor. */
  announce?(m: SupervisorMessage): void;
}

/**
 * `postern role NAME -c FILE`: one role process, started by the supervisor (internal command).
 * It loads its own config, so a role never depends on state held by another process.
 */
export async function roleCommand(argv: string[], _io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv);
  const role = positionals[0] as RoleName;
  if (!['smtpd', 'worker', 'relay', 'portal'].includes(role)) throw new UsageError(`unknown role ${JSON.stringify(role)}`);
  const file = resolve(values.config ?? 'config/postern.yaml');
  const config = await loadConfig(file);
  const log = createLogger({ level: config.log.level, role });
  const send = (m: RoleMessage) => process.send?.(m);
  const spool = await Spool.open(config.data_dir);

  let running: Running;
  try {
    running = await startRole(role, config, spool, log, send);
  } catch (err) {
    const message = (err as Error).message;
    log.fatal({ event: `${role}.start_failed`, err }, `cannot start ${role}: ${message}`);
    send({ type: 'fatal', role, message });
    log.flush();
    return EXIT_FATAL;
  }

  return new Promise<number>((done) => {
    let stopping = false;
    const stop = async (why: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ event: `${role}.stopping`, why }, `stopping ${role}`);
      await running.close().catch((err) => log.error({ event: `${role}.close_error`, err }, 'error while stopping'));
      log.flush();
      done(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => undefined); // the supervisor decides; a terminal ^C reaches the whole group
    // The supervisor is gone (killed): stop too, so a new supervisor can take over the spool.
    process.on('disconnect', () => void stop('supervisor gone'));
    process.on('message', (m: SupervisorMessage) => {
      if (m?.type === 'incoming' || m?.type === 'outgoing') running.announce?.(m);
      if (m?.type === 'shutdown') void stop('shutdown');
      if (m?.type === 'reload') {
        loadConfig(file).then(
          (c) => {
            running.reload(c);
            log.info({ event: `${role}.reloaded` }, 'config reloaded');
          },
          (err) => log.error({ event: `${role}.reload_rejected`, reason: (err as Error).message }, 'keeping the running config'),
        );
      }
    });
  });
}

async function startRole(role: RoleName, config: Config, spool: Spool, log: Logger, send: (m: RoleMessage) => void): Promise<Running> {
  switch (role) {
    case 'smtpd': {
      const smtpd = await startSmtpd({ config, spool, log, onQueued: batched((ids) => send({ type: 'queued', ids })) });
      send({ type: 'ready', role, addresses: smtpd.addresses });
      return smtpd;
    }
    case 'worker': {
      // The worker decides by the policy: compiled rules, the keystore (which keys exist) and
      // the directory. A reload swaps all three only when the new policy compiles.
      const store = await openKeyStore(config);
      let current = config;
      // Prepared keys outlive policy reloads: a reload must not cost every key's unsealing again.
      // ldap:// CRL distribution points without a host are read from ldap.servers as configured at start.
      const keys = new CryptoKeys(store, () => current, log, revocationCheckerFor(config, store, undefined, ldapCrlFetcher({ servers: config.ldap.servers })));
      const pgpKeys = new PgpKeys(store, log);
      // Directory connections and discovery caches are per config; a reload replaces them.
      let ldap: LdapDirectory | null = null;
      const policyOf = async (c: Config): Promise<PolicyContext> => {
        const policy = await loadPolicy(c);
        const groups = policy.groupsFile ? await loadStaticDirectory(policy.groupsFile) : emptyDirectory;
        const old = ldap;
        ldap = c.ldap.servers.length ? new LdapDirectory(c.ldap, { log }) : null;
        void old?.close().catch(() => undefined);
        const guarded = ldap ? withFailurePolicy(ldap, log) : null;
        const sources: KeySources = {
          ...(guarded ? { ldap: guarded } : {}),
          ...(c.discovery.wkd.domains.length || c.discovery.hkp.servers.length ? { discovery: new KeyDiscovery({ config: c, store, log }) } : {}),
        };
        return { config: c, policy, store, keys, pgpKeys, sources, directory: guarded ? combineDirectories(guarded, groups) : groups };
      };
      let ctx = await policyOf(config);
      const worker = await startWorker({ config, spool, log, policy: () => ctx, onOutgoing: batched((names) => send({ type: 'outgoing', names })) });
      send({ type: 'ready', role });
      return {
        reload: (c) => {
          worker.reload(c);
          policyOf(c).then(
            (next) => {
              ctx = next;
              current = c;
            },
            (err) => log.error({ event: 'worker.policy_rejected', reason: (err as Error).message }, 'keeping the running policy'),
          );
        },
        close: async () => {
          await worker.close();
          await ldap?.close().catch(() => undefined);
          await store.close();
        },
        announce: (m) => m.type === 'incoming' && worker.offer(m.ids),
      };
    }
    case 'portal': {
      // Internet-facing like smtpd, so it never holds the KEK: public keys from the store, and the
      // internal CA's CRL from the file the supervisor and the CA commands publish.
      const store = openPublicKeyStore(config);
      const portal = await startPortal({ config, store, log, crlFile: internalCrlFile(config) });
      send({ type: 'ready', role });
      return {
        // Listening addresses and TLS files need a restart; the key index refreshes by itself.
        reload: () => undefined,
        close: async () => {
          await portal.close();
          await store.close();
        },
      };
    }
    case 'relay': {
      const relay = await startRelay({ config, spool, log });
      send({ type: 'ready', role });
      return {
        reload: (c) => relay.reload(c),
        close: () => relay.close(),
        announce: (m) => m.type === 'outgoing' && relay.offer(m.names),
      };
    }
  }
}

/** Collect announcements made in one turn of the event loop into one IPC message. */
function batched<T>(flush: (items: T[]) => void): (item: T | T[]) => void {
  let pending: T[] = [];
  return (item) => {
    if (pending.length === 0) setImmediate(() => {
      const items = pending;
      pending = [];
      if (items.length) flush(items);
    });
    if (Array.isArray(item)) pending.push(...item);
    else pending.push(item);
  };
}
