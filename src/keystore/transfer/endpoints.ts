/**
 * The two ends of `store migrate`: where a store is (`sqlite:PATH`, `postgres://user@host/db`),
 * the source opened as a read-only snapshot (the running gateway keeps writing meanwhile; the
 * copy sees one instant), and the target opened for writing with its schema made by the same
 * migrations a gateway runs at start.
 *
 * Secrets: a PostgreSQL password comes apart from the URL (environment variable or file); a URL
 * carrying one is refused, since command lines show in `ps` and shell history. Only URLs without
 * passwords reach messages.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { createPrivateDatabaseFile, databaseFiles } from '../db-file.js';
import { migratePortal } from '../portal-schema.js';
import { migrate } from '../schema.js';
import { migratePostgres } from '../sql/migrate-pg.js';
import { numberPlaceholders, PostgresSql, postgresError, redactedUrl } from '../sql/postgres.js';
import { SqliteSql, sqliteError } from '../sql/sqlite.js';
import type { Row, Sql, SqlValue } from '../sql/types.js';
import { quoteName, type TableReader } from './catalogue.js';

export type StoreLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; password?: string };
export type StorePart = 'keystore' | 'portal';

export class StoreLocationError extends Error {
  override readonly name = 'StoreLocationError';
}

/** `sqlite:PATH` or `postgres://…` (also `postgresql://`); `password` goes with a PostgreSQL one. */
export function parseStoreLocation(text: string, password?: string): StoreLocation {
  if (text.startsWith('sqlite:')) {
    const path = text.slice('sqlite:'.length);
    if (!path) throw new StoreLocationError(`${text}: give the database file, as sqlite:/var/lib/postern/postern.db`);
    return { kind: 'sqlite', path };
  }
  if (/^postgres(ql)?:\/\//.test(text)) {
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      throw new StoreLocationError(`${redactedUrl(text)}: not a valid URL`);
    }
    if (u.password) throw new StoreLocationError(`${redactedUrl(text)}: give the password with --password-env or --password-file, never in the URL (command lines show in ps and shell history)`);
    return { kind: 'postgres', url: text, ...(password !== undefined ? { password } : {}) };
  }
  throw new StoreLocationError(`${JSON.stringify(redactedUrl(text))}: a store is sqlite:PATH or postgres://user@host/database`);
}

/** For messages and the audit trail: the file, or the URL (which never has a password). */
export function describeLocation(loc: StoreLocation, part: StorePart): string {
  return loc.kind === 'sqlite' ? `sqlite:${loc.path}` : `${redactedUrl(loc.url)} (schema ${part})`;
}

export interface OpenedStore {
  reader: TableReader;
  /** The schema version its migrations reached; null where there is no schema at all. */
  version: number | null;
  close(): Promise<void>;
}

async function schemaVersion(reader: TableReader): Promise<number | null> {
  if (reader.dialect === 'sqlite') {
    const tables = await reader.all("SELECT name FROM sqlite_master WHERE type = 'table' LIMIT 1");
    const [v] = await reader.all<{ user_version: number }>('SELECT user_version FROM pragma_user_version');
    return tables.length || Number(v?.user_version) ? Number(v!.user_version) : null;
  }
  const has = await reader.all("SELECT 1 AS one FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_version'");
  if (!has.length) return null;
  const [v] = await reader.all<{ version: number }>('SELECT version FROM schema_version');
  return v ? Number(v.version) : 0;
}

function postgresSql(loc: Extract<StoreLocation, { kind: 'postgres' }>, part: StorePart, pool: number): PostgresSql {
  return new PostgresSql({ url: loc.url, ...(loc.password !== undefined ? { password: loc.password } : {}), pool, schema: part, applicationName: 'postern store migrate' });
}

/**
 * The store as one read-only snapshot: SQLite's read transaction (WAL: writers go on), PostgreSQL's
 * REPEATABLE READ READ ONLY. Null when a SQLite file is not there (a gateway without portal.db).
 */
export async function openSnapshot(loc: StoreLocation, part: StorePart): Promise<OpenedStore | null> {
  if (loc.kind === 'sqlite') {
    if (!existsSync(loc.path)) return null;
    let db: Database.Database;
    try {
      db = new Database(loc.path, { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 5000');
      db.exec('BEGIN');
    } catch (err) {
      throw sqliteError(err, loc.path);
    }
    const reader = new SqliteSql(db, loc.path);
    try {
      const close = async () => {
        if (db.inTransaction) db.exec('COMMIT');
        db.close();
      };
      return { reader, version: await schemaVersion(reader), close };
    } catch (err) {
      db.close();
      throw err;
    }
  }
  const sql = postgresSql(loc, part, 1);
  let client;
  try {
    client = await sql.pool.connect();
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  } catch (err) {
    client?.release();
    await sql.close();
    throw postgresError(err, sql.where);
  }
  const c = client;
  const reader: TableReader = {
    dialect: 'postgres',
    where: sql.where,
    async all<T extends Row = Row>(text: string, params: readonly unknown[] = []) {
      try {
        return (await c.query(numberPlaceholders(text), params as unknown[])).rows as T[];
      } catch (err) {
        throw postgresError(err, sql.where);
      }
    },
  };
  const close = async () => {
    await c.query('COMMIT').catch(() => undefined);
    c.release();
    await sql.close();
  };
  try {
    return { reader, version: await schemaVersion(reader), close };
  } catch (err) {
    await close();
    throw err;
  }
}

export interface WritableStore {
  sql: Sql;
  close(): Promise<void>;
  /** Remove what opening made (a SQLite file that was not there before); nothing for PostgreSQL. */
  discard(): void;
}

/**
 * The target opened for writing, its schema created or brought up to date by the migrations a
 * gateway runs at start (PostgreSQL: `migrations`, advisory-locked against nodes starting).
 */
export async function openWritable(loc: StoreLocation, part: StorePart, migrations: readonly string[]): Promise<WritableStore> {
  if (loc.kind === 'postgres') {
    const sql = postgresSql(loc, part, 2);
    try {
      await migratePostgres(sql, migrations, part);
    } catch (err) {
      await sql.close();
      throw err;
    }
    return { sql, close: () => sql.close(), discard: () => undefined };
  }
  const fresh = !existsSync(loc.path) || statSync(loc.path).size === 0;
  let db: Database.Database | undefined;
  const discard = () => {
    if (db?.open) db.close();
    if (fresh) for (const f of databaseFiles(loc.path)) rmSync(f, { force: true });
  };
  try {
    createPrivateDatabaseFile(loc.path);
    db = new Database(loc.path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    if (part === 'keystore') migrate(db);
    else migratePortal(db);
  } catch (err) {
    discard();
    throw sqliteError(err, loc.path);
  }
  const sql = new SqliteSql(db, loc.path);
  return { sql, close: () => sql.close(), discard };
}

/**
 * Rows of `table` in primary-key order, a page at a time (a mailbox's bodies never all in memory):
 * after the last key seen when the key is one column, by offset otherwise (small tables).
 */
export async function* tableRows(reader: TableReader, table: string, columns: string[], orderBy: string[], page = 200): AsyncGenerator<Row> {
  const cols = columns.map(quoteName).join(', ');
  const order = (orderBy.length ? orderBy : columns).map(quoteName).join(', ');
  if (orderBy.length === 1) {
    const key = orderBy[0]!;
    let last: SqlValue | undefined;
    for (;;) {
      const rows = await reader.all(
        `SELECT ${cols} FROM ${quoteName(table)}${last === undefined ? '' : ` WHERE ${quoteName(key)} > ?`} ORDER BY ${order} LIMIT ?`,
        last === undefined ? [page] : [last, page],
      );
      yield* rows;
      if (rows.length < page) return;
      last = rows[rows.length - 1]![key] as SqlValue;
    }
  }
  for (let offset = 0; ; offset += page) {
    const rows = await reader.all(`SELECT ${cols} FROM ${quoteName(table)} ORDER BY ${order} LIMIT ? OFFSET ?`, [page, offset]);
    yield* rows;
    if (rows.length < page) return;
  }
}
