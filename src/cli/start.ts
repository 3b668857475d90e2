import { watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Config } from '../config/types.js';
import { databaseFiles, isStoreUnavailable, openKeyStore, openKeyStoreWithPortal, openPublicKeyStore, publishInternalCrl, publishPublicCertificates, publishPublicKeys, type KeyStore } from '../keystore/index.js';
import { createLogger, initMetrics, type Logger } from '../log/index.js';
import { spoolQueueSizes, startClusterHeartbeat, supervisorFacts } from '../cluster/heartbeat.js';
import { roleEntry } from '../roles/index.js';
import { policyHash } from '../policy/index.js';
import { QUEUES, Spool } from '../spool/index.js';
import { ROLE_PRIVILEGES, roleEnvironment, securePaths, Supervisor, unprivilegedAccount, type Account } from '../supervisor/index.js';
import { DEFAULT_CONFIG, parse, type CliIo } from './args.js';
import { loadConfigAndPolicy } from './policy-load.js';
import { followPolicyWhileRunning, type RunningFollower } from './policy-follow.js';

/** `postern start`: the supervisor in the foreground; logs are JSON lines on stdout. */
export async function startCommand(argv: string[], _io: CliIo): Promise<number> {
  const { values } = parse(argv);
  const file = resolve(values.config ?? DEFAULT_CONFIG);
  // The policy must compile too: a gateway never runs with rules it cannot apply.
  const { config } = await loadConfigAndPolicy(file);
  const log = createLogger({ level: config.log.level, role: 'supervisor' });
  initMetrics('supervisor');
  const spool = await Spool.open(config.data_dir);
  // Started as root, smtpd and the portal run as `user:`; the spool is set up for that account.
  let account: Account | null;
  try {
    account = unprivilegedAccount(config, log);
    const writes = new Set(account ? ['tmp', 'incoming', 'partial'] : []);
    await securePaths(
      {
        dataDir: config.data_dir,
        privateDirs: [...(account ? [] : [spool.root]), ...QUEUES.filter((q) => !writes.has(q)).map((q) => spool.dir(q))],
        privateFiles: databaseFiles(config.keystore.sqlite),
        ...(account ? { unprivileged: { uid: account.uid, gid: account.gid, passDirs: [spool.root], writeDirs: [{ path: spool.dir('tmp'), mode: 0o1730 }, { path: spool.dir('incoming'), mode: 0o1770 }, { path: spool.dir('partial'), mode: 0o1770 }] } } : {}),
      },
      log,
    );
    if (account) await refuseKekOf(account, config);
  } catch (err) {
    log.fatal({ event: 'supervisor.data_dir_unusable', reason: (err as Error).message }, 'cannot set up data_dir for the roles');
    log.flush();
    return 1;
  }
  // The keystore and its KEK are checked (and on first start created) before any role runs: a
  // KEK file others can read, a missing token or a wrong PIN stops the gateway with the reason.
  // The portal cannot open postern.db: our users' public keys are published for it as a file.
  // portal.db (reply links, webmail) is made here, before any role opens it: root's, and read and
  // written by the unprivileged account's group (0660), which cannot create files in data_dir.
  const portal = config.portal.listen.length > 0;
  let published: Published | undefined;
  try {
    const { store, portal: portalDb, moved } = await openKeyStoreWithPortal(config, { role: 'supervisor', ...(account ? { owner: { uid: process.getuid?.() ?? 0, gid: account.gid } } : {}) });
    if (moved) log.info({ event: 'supervisor.reply_links_moved', count: moved }, 'PDF reply links moved from postern.db to portal.db');
    try {
      await publishInternalCrl(store, config);
      if (portal) {
        const group = account ? { group: account.gid } : {};
        published = { keys: await publishPublicKeys(store, config, group), certificates: await publishPublicCertificates(store, config, group) };
      }
    } finally {
      await store.close();
      await portalDb.close();
    }
  } catch (err) {
    // A cluster's database that cannot be reached now (PostgreSQL down or failing over) is not a
    // broken configuration: smtpd takes mail into the spool meanwhile, and the roles that need
    // the store retry until it answers (the worker defers mail, the supervisor restarts a role
    // that cannot open it). A wrong password, a KEK mismatch or a damaged file still stop here.
    if (!isStoreUnavailable(err)) {
      log.fatal({ event: 'supervisor.keystore_unusable', reason: (err as Error).message }, 'cannot open the keystore');
      log.flush();
      return 1;
    }
    log.error({ event: 'supervisor.keystore_unreachable', reason: (err as Error).message }, 'the keystore cannot be reached now; starting anyway, mail that needs it waits');
  }
  // The hash of the policy file the roles last loaded: the file watcher reloads only for another
  // one, so a policy a reload already took (the cluster's follower, the admin console) is not
  // loaded twice. Read before loading, so a change during the load is still seen as new.
  let loadedPolicy = await fileHash(config.policy.file);
  let listen = config.smtp.listen.map((a) => `${a.host}:${a.port}`);
  const sup = new Supervisor({
    config,
    reloadConfig: async () => {
      const hash = await fileHash(config.policy.file);
      const loaded = (await loadConfigAndPolicy(file)).config;
      loadedPolicy = hash;
      return loaded;
    },
    spool,
    log,
    roleCommand: (role, current) => ({
      script: roleEntry(role),
      args: ['-c', file, ...(account && ROLE_PRIVILEGES[role].unprivileged ? ['--user', `${account.uid}:${account.gid}`] : [])],
      env: roleEnvironment(role, current, process.env),
    }),
    onReady: (addresses) => {
      listen = addresses.map((a) => `${a.host}:${a.port}`);
      log.info({ event: 'supervisor.ready', listen }, 'accepting mail');
    },
  });
  process.on('SIGHUP', () => void sup.reload());
  // The internal CA's CRL is valid for a week: a fresh one each day, long before it runs out.
  const crlTimer = setInterval(() => {
    void (async () => {
      const store = await openKeyStore(config);
      try {
        await publishInternalCrl(store, config);
      } finally {
        await store.close();
      }
    })().catch((err: Error) => log.error({ event: 'supervisor.crl_not_published', reason: err.message }, 'could not publish the CRL of the internal CA'));
  }, 86_400_000);
  crlTimer.unref();
  // Editing policy.yaml takes effect without a signal, like SIGHUP: only if the new file is valid.
  // The directory is watched (editors replace files by rename); changes are settled for 500 ms.
  let settle: NodeJS.Timeout | undefined;
  const policyName = basename(config.policy.file);
  const watcher = watch(dirname(config.policy.file), (_event, name) => {
    if (name !== policyName) return;
    clearTimeout(settle);
    settle = setTimeout(() => {
      void fileHash(config.policy.file).then((hash) => (hash === loadedPolicy ? undefined : sup.reload()));
    }, 500);
  });
  watcher.on('error', () => undefined);
  const stopPublishing = portal ? publishKeysWhileRunning(config, account?.gid, log, published) : async () => undefined;
  void sup.exited.then(() => {
    clearTimeout(settle);
    watcher.close();
    void stopPublishing();
  });
  // A cluster node's policy file follows the cluster's newest version; the first check before the
  // roles start, so they start on it. A new version is loaded at once, not after the watcher's pause.
  let started = false;
  let follower: RunningFollower | null;
  try {
    follower = await followPolicyWhileRunning(config, log, (version) => {
      // Before the start the roles have yet to load any policy: they will load this one.
      if (started) void sup.reload();
      else loadedPolicy = version.hash;
    });
  } catch (err) {
    log.fatal({ event: 'supervisor.keystore_unusable', reason: (err as Error).message }, 'cannot open the keystore');
    log.flush();
    clearTimeout(settle);
    watcher.close();
    await stopPublishing();
    return 1;
  }
  void sup.exited.then(() => follower?.stop());
  process.on('SIGTERM', () => void sup.stop(0));
  process.on('SIGINT', () => void sup.stop(0));
  started = true;
  await sup.start();
  // A cluster node (keystore.postgres) tells the others it is up: `postern cluster status`.
  const heartbeat = await startClusterHeartbeat(config, log, supervisorFacts({ policy: () => loadedPolicy || null, roles: () => sup.status(), queues: () => spoolQueueSizes(spool), listen: () => listen })).catch((err: Error) => {
    log.warn({ event: 'supervisor.heartbeat_failed', reason: err.message }, 'no cluster heartbeat');
    return null;
  });
  const code = await sup.exited;
  await heartbeat?.stop();
  log.flush();
  return code;
}

/** policyHash of a file's bytes; '' when it cannot be read (then any readable content is new). */
const fileHash = (file: string): Promise<string> => readFile(file).then(policyHash, () => '');

/**
 * A KEK file the unprivileged account owns is readable by smtpd and the portal: like a KEK file
 * others can read (kek/ refuses those), it must be treated as leaked, not quietly taken back.
 */
async function refuseKekOf(account: Account, config: Config): Promise<void> {
  if (!('file' in config.kek) || !config.kek.file) return;
  const st = await stat(config.kek.file).catch(() => null);
  if (st && st.uid === account.uid) {
    throw new Error(
      `${config.kek.file} belongs to ${account.name}, the account smtpd and the portal run as: treat the key as leaked — ` +
        `give the file to root (chown root:root, chmod 600) and re-wrap the keys with \`postern kek rotate\``,
    );
  }
}

/** The bytes of the files last published for the portal: rewritten only when they change. */
interface Published {
  keys: Buffer;
  certificates: Buffer;
}

/**
 * Keeps the portal's public key and certificate files in step with the keystore: each second the
 * store's change counters of certificates, OpenPGP keys and revocations are read (one small
 * query, on either backend; on PostgreSQL they also count other nodes' changes); only when they
 * moved are the keys listed, and a file rewritten only when its content differs. A key,
 * certificate or revocation imported by the CLI, a worker or another node is served within about
 * a second. The store is opened on first use and kept: an unreachable database is retried each
 * second. Returns the function that stops it.
 */
function publishKeysWhileRunning(config: Config, group: number | undefined, log: Logger, first: Published | undefined): () => Promise<void> {
  let store: KeyStore | undefined;
  let previous = first;
  let stamp = '';
  let busy = false;
  let stopped = false;
  // Retried each second until it works; logged once per reason, not once per second.
  let failing = '';
  const tick = async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      store ??= await openPublicKeyStore(config, { role: 'supervisor' });
      const c = await store.changeCounters();
      const now = `${c.certificates}/${c.pgp}/${c.revocation}`;
      if (now !== stamp) {
        const g = group !== undefined ? { group } : {};
        previous = {
          keys: await publishPublicKeys(store, config, { ...g, ...(previous ? { previous: previous.keys } : {}) }),
          certificates: await publishPublicCertificates(store, config, { ...g, ...(previous ? { previous: previous.certificates } : {}) }),
        };
        stamp = now;
        failing = '';
      }
    } catch (err) {
      const reason = (err as Error).message;
      if (reason !== failing) log.error({ event: 'supervisor.keys_not_published', reason }, 'could not publish the public keys for the portal');
      failing = reason;
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), 1000);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await store?.close();
  };
}
