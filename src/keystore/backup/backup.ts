/**
 * `postern backup FILE`: a consistent copy of what a gateway needs to come back on a new machine,
 * taken while it runs. Each SQLite database is copied with VACUUM INTO, one read transaction: a
 * snapshot of the committed state that never blocks the roles writing (WAL), unlike copying the
 * file, which can catch a page half-written. The snapshots go to a private directory beside FILE,
 * then through the encrypted stream into FILE.tmp, which becomes FILE only when complete.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { POSTERN_VERSION } from '../../core/version.js';
import type { Config } from '../../config/types.js';
import { NO_KEK } from '../kek/none.js';
import { readCheckedFile } from '../kek/secret-file.js';
import { portalDbFile } from '../portal-db.js';
import { SqlKeyStore } from '../store.js';
import { openSqliteKeystore } from '../store-base.js';
import { configFiles, fileFacts, type Manifest, type ManifestEntry, type ManifestKek } from './contents.js';
import { BackupError, BackupWriter, type BackupHeader } from './format.js';
import type { ScryptCost } from '../scrypt.js';

export interface BackupOptions {
  passphrase: string;
  /** Who, for the audit log ("cli:root"). */
  actor: string;
  /** Tests use a cheaper cost; the default is BACKUP_SCRYPT. */
  cost?: ScryptCost;
}

export interface BackupSummary {
  file: string;
  bytes: number;
  entries: ManifestEntry[];
  kek: ManifestKek;
  leftOut: Manifest['left_out'];
}

/** A snapshot of a live SQLite database into `to` (which must not exist). */
function snapshot(from: string, to: string): void {
  const db = new Database(from, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 10000');
    db.prepare('VACUUM INTO ?').run(to);
  } finally {
    db.close();
  }
}

function kekOf(config: Config): ManifestKek {
  const k = config.kek;
  if ('pkcs11' in k) return { kind: 'pkcs11', token: k.pkcs11.token, key_label: k.pkcs11.key_label };
  return k.file !== undefined ? { kind: 'file' } : { kind: 'passphrase', passphrase_env: k.passphrase_env };
}

/**
 * A backup is SQLite files (VACUUM INTO) and the config: a cluster's keystore is in PostgreSQL,
 * which has its own tools for a consistent copy, and whose data other nodes write meanwhile.
 */
export function refuseClusterStore(config: Config, what: 'back up' | 'restore'): void {
  if (!config.keystore.postgres) return;
  throw new BackupError(
    `${config.file} keeps the keystore in PostgreSQL (keystore.postgres): postern cannot ${what} it; ` +
      `use pg_dump and pg_restore for the database${what === 'back up' ? ', and keep a copy of the KEK (kek:) yourself' : ''}`,
  );
}

export async function makeBackup(config: Config, file: string, opts: BackupOptions): Promise<BackupSummary> {
  refuseClusterStore(config, 'back up');
  const out = resolve(file);
  if (!existsSync(dirname(out))) throw new BackupError(`the directory ${dirname(out)} for the backup does not exist`);
  if (!existsSync(config.keystore.sqlite)) throw new BackupError(`there is no keystore at ${config.keystore.sqlite}: nothing to back up (is -c the gateway's config?)`);
  const { files, leftOut } = await configFiles(config);
  const kek = kekOf(config);

  // Recorded before the snapshot, so the backup's own audit log says it was made (and by whom):
  // the file holds every private key.
  const audit = new SqlKeyStore(openSqliteKeystore(config.keystore.sqlite), NO_KEK);
  try {
    await audit.audit({ actor: opts.actor, action: 'backup', object: 'keystore', detail: `to ${out}` });
  } finally {
    await audit.close();
  }

  const work = await mkdtemp(join(dirname(out), `.${basename(out)}.work-`));
  const tmp = `${out}.${randomBytes(6).toString('hex')}.tmp`;
  let fh: FileHandle | undefined;
  let writer: BackupWriter | undefined;
  try {
    // Every piece is settled (read or snapshotted) before the first byte is written, so the
    // manifest's sizes are the sizes streamed.
    const pieces: { entry: ManifestEntry; data?: Buffer; path?: string }[] = [];
    for (const f of files) {
      const data = await readFile(f.path).catch((err: NodeJS.ErrnoException) => {
        throw new BackupError(`cannot read ${f.key} ${f.path}: ${err.code ?? err.message}`);
      });
      const { mode } = await fileFacts(f.path, f.key);
      pieces.push({ entry: { kind: 'config', name: f.name, size: data.length, mode }, data });
    }
    if (kek.kind === 'file' && 'file' in config.kek && config.kek.file) {
      const key = await readCheckedFile(config.kek.file, { what: 'KEK file', exactSize: 32, privateMode: true });
      if (!key) throw new BackupError(`the KEK file ${config.kek.file} does not exist`);
      pieces.push({ entry: { kind: 'kek-file', name: 'kek.key', size: key.length, mode: 0o600 }, data: key });
    } else if (kek.kind === 'passphrase') {
      const salt = await readCheckedFile(join(config.data_dir, 'kek.salt'), { what: 'KEK salt file', maxSize: 1024 });
      if (!salt) throw new BackupError(`the KEK salt file ${join(config.data_dir, 'kek.salt')} does not exist`);
      pieces.push({ entry: { kind: 'kek-salt', name: 'kek.salt', size: salt.length, mode: 0o600 }, data: salt });
    }
    const portal = portalDbFile(config);
    if (existsSync(portal)) {
      snapshot(portal, join(work, 'portal.db'));
      pieces.push({ entry: { kind: 'portal', name: 'portal.db', ...(await fileFacts(join(work, 'portal.db'), 'portal.db snapshot')) }, path: join(work, 'portal.db') });
    }
    snapshot(config.keystore.sqlite, join(work, 'postern.db'));
    pieces.push({ entry: { kind: 'keystore', name: 'postern.db', ...(await fileFacts(join(work, 'postern.db'), 'keystore snapshot')) }, path: join(work, 'postern.db') });

    const manifest: Manifest = {
      hostname: config.hostname,
      config_file: config.file,
      data_dir: config.data_dir,
      kek,
      entries: pieces.map((p) => p.entry),
      left_out: leftOut,
    };
    const contents: BackupHeader['contents'] = {
      keystore: true,
      portal: pieces.some((p) => p.entry.kind === 'portal'),
      kek: kek.kind === 'file' ? 'file' : kek.kind === 'passphrase' ? 'passphrase-salt' : 'pkcs11-not-included',
      config_files: files.length,
    };
    fh = await open(tmp, 'wx', 0o600);
    writer = await BackupWriter.start(fh, { passphrase: opts.passphrase, created: new Date(), postern: POSTERN_VERSION, contents, ...(opts.cost ? { cost: opts.cost } : {}) });
    const json = Buffer.from(JSON.stringify(manifest), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(json.length);
    await writer.write(Buffer.concat([len, json]));
    for (const p of pieces) {
      if (p.data) {
        await writer.write(p.data);
        p.data.fill(0);
      } else await streamFile(p.path!, p.entry.size, writer);
    }
    await writer.finish();
    await fh.sync();
    const { size } = await fh.stat();
    await fh.close();
    fh = undefined;
    await rename(tmp, out);
    await syncDir(dirname(out));
    return { file: out, bytes: size, entries: manifest.entries, kek, leftOut };
  } catch (err) {
    writer?.abandon();
    await fh?.close();
    await rm(tmp, { force: true });
    throw err;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Exactly `size` bytes of `path` into the writer, a chunk at a time. */
async function streamFile(path: string, size: number, writer: BackupWriter): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(1024 * 1024);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - done), done);
      if (bytesRead === 0) throw new BackupError(`${path} shrank while it was backed up`);
      await writer.write(buf.subarray(0, bytesRead));
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  try {
    await fh?.sync();
  } catch {
    /* some file systems cannot sync a directory */
  } finally {
    await fh?.close();
  }
}
