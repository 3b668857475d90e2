import { fileURLToPath } from 'node:url';
import { watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { databaseFiles, openKeyStore, publishInternalCrl } from '../keystore/index.js';
import { createLogger } from '../log/index.js';
import { QUEUES, Spool } from '../spool/index.js';
import { securePaths, Supervisor } from '../supervisor/index.js';
import { DEFAULT_CONFIG, parse, type CliIo } from './args.js';
import { loadConfigAndPolicy } from './policy-load.js';

/** `postern start`: the supervisor in the foreground; logs are JSON lines on stdout. */
export async function startCommand(argv: string[], _io: CliIo, mainScript: string): Promise<number> {
  const { values } = parse(argv);
  const file = resolve(values.config ?? DEFAULT_CONFIG);
  // The policy must compile too: a gateway never runs with rules it cannot apply.
  const { config } = await loadConfigAndPolicy(file);
  const log = createLogger({ level: config.log.level, role: 'supervisor' });
  const spool = await Spool.open(config.data_dir);
  try {
    await securePaths({ dataDir: config.data_dir, privateDirs: [spool.root, ...QUEUES.map((q) => spool.dir(q))], privateFiles: databaseFiles(config.keystore.sqlite) }, log);
  } catch (err) {
    log.fatal({ event: 'supervisor.data_dir_unusable', reason: (err as Error).message }, 'cannot make data_dir private');
    log.flush();
    return 1;
  }
  // The keystore and its KEK are checked (and on first start created) before any role runs: a
  // KEK file others can read, a missing token or a wrong PIN stops the gateway with the reason.
  try {
    const store = await openKeyStore(config);
    try {
      await publishInternalCrl(store, config);
    } finally {
      await store.close();
    }
  } catch (err) {
    log.fatal({ event: 'supervisor.keystore_unusable', reason: (err as Error).message }, 'cannot open the keystore');
    log.flush();
    return 1;
  }
  const sup = new Supervisor({
    config,
    reloadConfig: async () => (await loadConfigAndPolicy(file)).config,
    spool,
    log,
    roleCommand: { script: mainScript, args: (role) => ['role', role, '-c', file] },
    onReady: (addresses) =>
      log.info({ event: 'supervisor.ready', listen: addresses.map((a) => `${a.host}:${a.port}`) }, 'accepting mail'),
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
    settle = setTimeout(() => void sup.reload(), 500);
  });
  watcher.on('error', () => undefined);
  void sup.exited.then(() => {
    clearTimeout(settle);
    watcher.close();
  });
  process.on('SIGTERM', () => void sup.stop(0));
  process.on('SIGINT', () => void sup.stop(0));
  await sup.start();
  const code = await sup.exited;
  log.flush();
  return code;
}

export function thisScript(metaUrl: string): string {
  return fileURLToPath(metaUrl);
}
