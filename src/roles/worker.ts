/**
 * Entry point of the worker role (`node dist/roles/worker.js -c FILE`): the one role that unseals
 * — the supervisor gives it the KEK's passphrase or PIN variable and the LDAP passwords, and no
 * other role gets them. It decides by the policy: compiled rules, the keystore (which keys exist)
 * and the directory; a reload swaps all three only when the new policy compiles.
 */
import type { Config } from '../config/types.js';
import { loadPolicy } from '../cli/policy-load.js';
import { combineDirectories, KeyDiscovery, LdapDirectory, ldapCrlFetcher, withFailurePolicy } from '../directory/index.js';
import { openKeyStoreWithPortal, revocationCheckerFor } from '../keystore/index.js';
import { emptyDirectory, loadStaticDirectory } from '../policy/index.js';
import { CryptoKeys, PgpKeys, startWorker, watchStore, type KeySources, type PolicyContext } from '../worker/index.js';
import { heartbeatInterval } from '../supervisor/index.js';
import { handoffClient } from './handoff.js';
import { batched, main } from './run.js';
import { openStoreOrLater } from './open-or-later.js';

main('worker', async ({ config, dataDir, spool, log, send }) => {
  // portal.db beside postern.db: PDF reply links (the store writes them there) and webmail.
  const { store, portal, moved } = await openStoreOrLater(() => openKeyStoreWithPortal(config, { role: 'worker' }));
  if (moved) log.info({ event: 'worker.reply_links_moved', count: moved }, 'PDF reply links moved from postern.db to portal.db');
  let current = config;
  // Prepared keys outlive policy reloads: a reload must not cost every key's unsealing again.
  // ldap:// CRL distribution points without a host are read from ldap.servers as configured at start.
  // Look-ups cached per change generation, the KEK followed when another node rotates it.
  // SIGTERM: the graceful stop of roles/run.ts; the supervisor starts a new worker (run as root, it opens the new KEK).
  const watch = await watchStore(store, config, log, () => process.kill(process.pid, 'SIGTERM'));
  const { lookups } = watch;
  const revocation = revocationCheckerFor(config, store, undefined, ldapCrlFetcher({ servers: config.ldap.servers }), (v) => lookups.revocationView(v));
  const keys = new CryptoKeys(store, () => current, log, revocation, lookups);
  const pgpKeys = new PgpKeys(store, log, lookups);
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
    return { config: c, policy, store, portal, keys, pgpKeys, sources, lookups, directory: guarded ? combineDirectories(guarded, groups) : groups };
  };
  let ctx = await policyOf(config);
  // Committed names go straight to the relay's socket; through the supervisor when it is not there.
  const handoff = handoffClient(dataDir, (names) => send({ type: 'outgoing', names }));
  const worker = await startWorker({ config, spool, log, policy: () => ctx, temporaryRetryMs: config.worker.retry, storeRetryMs: config.worker.retry, onOutgoing: batched((names) => handoff.announce(names)) });
  // The supervisor's watchdog kills a worker that stays silent for worker.transform_timeout: a
  // synchronous loop no deadline inside this process can end (supervisor/watchdog.ts).
  const beat = setInterval(() => send({ type: 'alive' }), heartbeatInterval(config.worker.transform_timeout));
  beat.unref();
  send({ type: 'alive' });
  // Expired PDF reply links go from portal.db (pdf.reply_validity): at start and hourly; every
  // worker may, a delete of what another already deleted costs nothing.
  const prune = () =>
    portal.pruneReplyLinks(new Date()).then(
      (n) => n && log.info({ event: 'worker.reply_links_pruned', count: n }, 'expired PDF reply links removed'),
      (err: unknown) => log.warn({ event: 'worker.reply_links_prune_failed', reason: (err as Error).message }, 'expired PDF reply links not removed; tried again in an hour'),
    );
  // Webmail mail older than webmail.retention goes, and accounts idle as long.
  const pruneWebmail = () =>
    portal.pruneWebmail({ retention: current.webmail.retention }).then(
      (n) => (n.messages || n.accounts) && log.info({ event: 'worker.webmail_pruned', messages: n.messages, accounts: n.accounts }, 'old webmail mail and idle mailboxes removed'),
      (err: unknown) => log.warn({ event: 'worker.webmail_prune_failed', reason: (err as Error).message }, 'old webmail mail not removed; tried again in an hour'),
    );
  void prune();
  void pruneWebmail();
  const pruning = setInterval(() => {
    void prune();
    void pruneWebmail();
  }, 3_600_000);
  pruning.unref();
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
      clearInterval(beat);
      clearInterval(pruning);
      await worker.close();
      handoff.close();
      await ldap?.close().catch(() => undefined);
      await watch.close();
      await store.close();
      await portal.close();
    },
    announce: (m) => m.type === 'incoming' && worker.offer(m.ids),
  };
});
