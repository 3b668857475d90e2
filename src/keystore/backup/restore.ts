/**
 * `postern restore FILE`: a backup back onto a machine, never half-way. Everything is decrypted
 * into private staging directories first (the config beside the config directory, the data in
 * data_dir), the whole file must authenticate, the staged keystore must open with the configured
 * KEK (and gets its `restore` audit record there), and only then are the files renamed into
 * place: the KEK, portal.db, and postern.db last, so a keystore in place means a complete restore.
 *
 * Two ways to say where: `config` (-c: an existing config whose data_dir receives the data; the
 * backed-up config files are not installed), or `configDir` (--config-dir: the backed-up config
 * files go there, and the data to the data_dir that restored config names).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, open, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { loadConfig } from '../../config/index.js';
import type { Config, KekConfig } from '../../config/types.js';
import { databaseFiles } from '../db-file.js';
import { openKeyStore, saltFile } from '../index.js';
import { openPortalDb, portalDbFile } from '../portal-db.js';
import { configName, readManifest, type Manifest, type ManifestEntry } from './contents.js';
import { refuseClusterStore, syncDir } from './backup.js';
import { BackupError, BackupReader, type BackupHeader } from './format.js';

export interface RestoreOptions {
  passphrase: string;
  actor: string;
  /** Replace an existing keystore, portal.db, KEK (and config files with configDir). */
  force: boolean;
  /** Exactly one of config and configDir. */
  config?: Config;
  configDir?: string;
  /** Owner of portal.db (the supervisor's root and the unprivileged account's group), when run as root. */
  portalOwner?: (config: Config) => { uid: number; gid: number } | undefined;
}

export interface RestoreSummary {
  header: BackupHeader;
  hostname: string;
  /** The config the gateway is to be started with. */
  configFile: string;
  dataDir: string;
  restored: string[];
  leftOut: Manifest['left_out'];
  kek: Manifest['kek'];
}

/** Names in the data staging directory; kek.salt where saltFile() looks for it. */
const STAGED_NAMES = { 'kek-file': 'kek.key', 'kek-salt': 'kek.salt', portal: 'portal.db', keystore: 'postern.db' } as const;

const kekKind = (k: KekConfig) => ('pkcs11' in k ? 'pkcs11' : k.file !== undefined ? 'file' : 'passphrase');

/** Where each kind of data entry goes under `config`. */
function dataTargets(config: Config): Record<Exclude<ManifestEntry['kind'], 'config'>, string> {
  return {
    'kek-file': 'file' in config.kek && config.kek.file ? config.kek.file : join(config.data_dir, 'kek.key'),
    'kek-salt': saltFile(config),
    portal: portalDbFile(config),
    keystore: config.keystore.sqlite,
  };
}

export async function restoreBackup(file: string, opts: RestoreOptions): Promise<RestoreSummary> {
  if (!opts.config === !opts.configDir) throw new BackupError('name the target either by its config (-c) or by --config-dir, not both');
  if (opts.config) refuseClusterStore(opts.config, 'restore');
  const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new BackupError(`cannot read ${file}: ${err.code ?? err.message}`);
  });
  // Staging directories go in any case; a data_dir this restore created goes unless it finished.
  const cleanup: string[] = [];
  let createdDataDir: string | undefined;
  let installed = false;
  try {
    const reader = await BackupReader.open(fh, opts.passphrase);
    try {
      const manifest = await readManifest(reader);
      const configDir = opts.configDir ? resolve(opts.configDir) : undefined;
      const configs = manifest.entries.filter((e) => e.kind === 'config');
      if (configDir && !opts.force) {
        const there = configs.filter((e) => existsSync(join(configDir, e.name)));
        if (there.length) throw new BackupError(`${configDir} already holds ${there.map((e) => e.name).join(', ')}: restore into a new directory, or add --force to replace them`);
      }
      let stagedConfigDir: string | undefined;
      if (configDir) {
        await mkdir(dirname(configDir), { recursive: true, mode: 0o755 });
        // Beside the target, so paths in the restored config resolve alike from both (see relocate).
        stagedConfigDir = await mkdtemp(join(dirname(configDir), `.${basename(configDir)}.restore-`));
        cleanup.push(stagedConfigDir);
      }
      for (const e of configs) {
        if (!stagedConfigDir) {
          await reader.pipe(e.size, async () => undefined);
          continue;
        }
        const to = join(stagedConfigDir, ...e.name.split('/'));
        await mkdir(dirname(to), { recursive: true, mode: 0o755 });
        await receive(reader, e, to, e.mode & 0o755);
      }
      const config = opts.config ?? relocate(await loadRestoredConfig(join(stagedConfigDir!, configName(manifest))), stagedConfigDir!, configDir!);
      if (kekKind(config.kek) !== manifest.kek.kind) {
        throw new BackupError(`the backup was made with a ${manifest.kek.kind} KEK, but ${config.file} configures a ${kekKind(config.kek)} KEK: configure the same kind (kek: in postern.yaml)`);
      }
      refuseClusterStore(config, 'restore');
      const targets = dataTargets(config);
      const data = manifest.entries.filter((e): e is ManifestEntry & { kind: keyof typeof targets } => e.kind !== 'config');
      if (!opts.force) refuseOccupied(data.map((e) => targets[e.kind]), config);

      if (!existsSync(config.data_dir)) createdDataDir = config.data_dir;
      await mkdir(config.data_dir, { recursive: true, mode: 0o700 });
      const stage = await mkdtemp(join(config.data_dir, '.restore-'));
      cleanup.push(stage);
      const staged = (kind: keyof typeof targets) => join(stage, STAGED_NAMES[kind]);
      for (const e of data) await receive(reader, e, staged(e.kind), e.kind === 'portal' ? 0o660 : 0o600);
      // Only a backup that authenticates to its last byte is installed.
      await reader.end();

      await prepareData(config, stage, staged, data, manifest, reader.header, opts);
      if (configDir) await installConfig(stagedConfigDir!, configDir, configs);
      const restored: string[] = configDir ? configs.map((e) => join(configDir, e.name)) : [];
      for (const kind of ['kek-file', 'kek-salt', 'portal', 'keystore'] as const) {
        if (!data.some((e) => e.kind === kind)) continue;
        await install(staged(kind), targets[kind], kind === 'portal' || kind === 'keystore');
        restored.push(targets[kind]);
      }
      installed = true;
      return { header: reader.header, hostname: manifest.hostname, configFile: config.file, dataDir: config.data_dir, restored, leftOut: manifest.left_out, kek: manifest.kek };
    } finally {
      reader.close();
    }
  } finally {
    await fh.close();
    for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
    if (createdDataDir && !installed) await rm(createdDataDir, { recursive: true, force: true });
  }
}

/** Decrypt one entry into a new private file. */
async function receive(reader: BackupReader, e: ManifestEntry, to: string, mode: number): Promise<void> {
  const out = await open(to, 'wx', mode);
  try {
    await reader.pipe(e.size, async (piece) => {
      await out.write(piece);
    });
    await out.chmod(mode);
    await out.sync();
  } finally {
    await out.close();
  }
}

async function loadRestoredConfig(file: string): Promise<Config> {
  try {
    return await loadConfig(file);
  } catch (err) {
    throw new BackupError(`the restored config does not load, so nothing was restored: ${(err as Error).message.split('\n').slice(0, 3).join('; ')}`);
  }
}

/**
 * The config loaded from the staging directory, with its paths as they will be in `to`: the
 * staging directory is a sibling of `to`, so a path that climbs out of it (../var) or an
 * absolute one means the same from both; only paths inside it move.
 */
function relocate(config: Config, from: string, to: string): Config {
  const move = (p: string) => {
    const r = relative(from, p);
    return r === '' ? to : r.startsWith('..') || r.startsWith(sep) ? p : join(to, r);
  };
  const kek: KekConfig = 'file' in config.kek && config.kek.file ? { file: move(config.kek.file) } : config.kek;
  return { ...config, file: move(config.file), data_dir: move(config.data_dir), keystore: { ...config.keystore, sqlite: move(config.keystore.sqlite) }, kek, policy: { ...config.policy, file: move(config.policy.file) } };
}

function refuseOccupied(targets: string[], config: Config): void {
  const there = targets.flatMap((t) => databaseFiles(t)).filter((f, i, all) => all.indexOf(f) === i && existsSync(f));
  if (there.length) {
    throw new BackupError(`${config.data_dir} already holds ${there.map((f) => basename(f)).join(', ')}: restore onto a fresh data_dir, or stop that gateway and add --force to replace them`);
  }
}

/**
 * The staged keystore opened as the gateway will open it: migrated to this Postern's schema, its
 * keys checked to be wrapped by the configured KEK, and the restore recorded in its audit log.
 */
async function prepareData(
  config: Config,
  stage: string,
  staged: (kind: 'kek-file' | 'kek-salt' | 'portal' | 'keystore') => string,
  data: ManifestEntry[],
  manifest: Manifest,
  header: BackupHeader,
  opts: RestoreOptions,
): Promise<void> {
  const kek: KekConfig = 'file' in config.kek && config.kek.file ? { file: staged('kek-file') } : config.kek;
  // saltFile() is data_dir/kek.salt: the staged salt (STAGED_NAMES), for a passphrase KEK.
  const stagedConfig: Config = { ...config, data_dir: stage, keystore: { sqlite: staged('keystore') }, kek };
  const store = await openKeyStore(stagedConfig, { createKek: false }).catch((err: Error) => {
    throw new BackupError(`the restored keystore does not open with ${config.file}'s KEK, so nothing was restored: ${err.message}`);
  });
  try {
    await store.canUnseal().catch((err: Error) => {
      throw new BackupError(`the restored keys do not unseal with ${config.file}'s KEK, so nothing was restored: ${err.message}`);
    });
    await store.audit({
      actor: opts.actor,
      action: 'restore',
      object: 'keystore',
      detail: `from a backup of ${manifest.hostname} made ${header.created} by Postern ${header.postern}`,
    });
  } finally {
    await store.close();
  }
  if (data.some((e) => e.kind === 'portal')) {
    const owner = opts.portalOwner?.(config);
    await (await openPortalDb(staged('portal'), owner ? { owner } : {})).close();
  }
  for (const f of databaseFiles(staged('keystore')).slice(1)) await rm(f, { force: true });
  for (const f of databaseFiles(staged('portal')).slice(1)) await rm(f, { force: true });
}

/** Move a staged file into place (copying when it crosses file systems); a database's stale -wal/-shm go first. */
async function install(from: string, to: string, database: boolean): Promise<void> {
  await mkdir(dirname(to), { recursive: true, mode: 0o700 });
  // A WAL left from the replaced database would be replayed into the restored one.
  if (database) for (const f of databaseFiles(to).slice(1)) await unlink(f).catch(() => undefined);
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const tmp = `${to}.${randomBytes(6).toString('hex')}.restore`;
    await copyFile(from, tmp);
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, to);
  }
  await syncDir(dirname(to));
}

/** The config files into `configDir`: the staged directory itself when configDir is new or empty, else file by file. */
async function installConfig(staged: string, configDir: string, entries: ManifestEntry[]): Promise<void> {
  if (!existsSync(configDir) || readdirSync(configDir).length === 0) {
    if (existsSync(configDir)) await rmdir(configDir);
    await chmod(staged, 0o755);
    await rename(staged, configDir);
    await syncDir(dirname(configDir));
    return;
  }
  for (const e of entries) {
    const to = join(configDir, ...e.name.split('/'));
    await mkdir(dirname(to), { recursive: true, mode: 0o755 });
    await install(join(staged, ...e.name.split('/')), to, false);
  }
}
