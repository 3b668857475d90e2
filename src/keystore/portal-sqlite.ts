/**
 * portal.db as a file (the portal store on one machine): opened with the pragmas, the ownership
 * and the mode that let three kinds of process write it at once — the portal (as the unprivileged
 * `user:` account), the workers and the CLI (root). So WAL with a busy timeout, every write one
 * IMMEDIATE transaction (SqliteSql), and the file and its -wal/-shm given to `owner` 0660 by
 * whoever opens it as root (the account cannot create files in data_dir).
 */
import { chmod, chown } from 'node:fs/promises';
import { closeSync, existsSync, fchmodSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { migratePortal } from './portal-schema.js';
import { PortalDbError, portalDbError } from './portal-rows.js';
import { SqliteSql, sqliteError } from './sql/sqlite.js';

export interface PortalFileOptions {
  /** The supervisor (root) gives the file to this owner, mode 0660, so the unprivileged portal can write it. */
  owner?: { uid: number; gid: number };
  readonly?: boolean;
  /** false: the file must exist (the portal role: the supervisor made it). Default true unless readonly. */
  create?: boolean;
}

/** Create `file` empty and 0660 (whatever the umask) unless it exists; an existing file is left as it is. */
function createGroupFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o660);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new PortalDbError('io', `cannot create ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    fchmodSync(fd, 0o660);
  } finally {
    closeSync(fd);
  }
}

/** The database files whose owner and mode are set. */
const filesOf = (file: string) => [file, `${file}-wal`, `${file}-shm`];

/** A missing file is no outage to wait out: 'io', as before the store had two backends. */
function openError(err: unknown, file: string): unknown {
  const e = portalDbError(sqliteError(err, file));
  const code = (err as { code?: unknown }).code;
  if (e instanceof PortalDbError && code === 'SQLITE_CANTOPEN') return new PortalDbError('io', e.message, { cause: e.cause });
  return e;
}

/** Open (and create, unless `readonly` or `create: false`) portal.db, migrated to the current schema. */
export async function openPortalFile(file: string, opts: PortalFileOptions = {}): Promise<SqliteSql> {
  const readonly = opts.readonly ?? false;
  const create = !readonly && (opts.create ?? true);
  // 0660 before SQLite opens it: SQLite gives its -wal and -shm the database file's mode.
  if (create && file !== ':memory:') createGroupFile(file);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly, fileMustExist: !create });
  } catch (err) {
    throw openError(err, file);
  }
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    if (!readonly) {
      // WAL: the portal's reads never wait for a worker storing mail. FULL: a message the worker
      // stored is durable before it removes the spool entry it came from.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      migratePortal(db);
    }
    if (opts.owner && file !== ':memory:') {
      for (const f of filesOf(file)) {
        if (!existsSync(f)) continue;
        await chown(f, opts.owner.uid, opts.owner.gid);
        await chmod(f, 0o660);
      }
    }
  } catch (err) {
    db.close();
    throw openError(err, file);
  }
  return new SqliteSql(db, file);
}
