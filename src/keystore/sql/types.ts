/**
 * The keystore's two backends behind one asynchronous interface (issue 19): SQLite, embedded, for
 * one machine; PostgreSQL for a cluster of gateways. The store classes (store-*.ts, portal-db.ts)
 * hold the SQL, written once in the subset both engines run the same way; each backend has its
 * own schema migrations (schema.ts / portal-schema.ts for SQLite, schema-pg.ts for PostgreSQL).
 *
 * The portable subset, which every query of a store class keeps to:
 * - `?` placeholders (the PostgreSQL driver numbers them); never `?` inside a string literal;
 * - `INSERT … ON CONFLICT … DO NOTHING | DO UPDATE SET x = excluded.x`, never `INSERT OR …`;
 * - a new row's id by `INSERT … RETURNING id` (get), never SQLite's lastInsertRowid or `rowid`;
 * - integers (times are milliseconds, flags 0/1; PostgreSQL's BIGINT comes back as a number),
 *   text, and BLOB/BYTEA as Buffer; no booleans, no JSON functions, no date functions;
 * - no `IS ?` (PostgreSQL needs IS NOT DISTINCT FROM), no scalar max()/min(), no `LIKE` where
 *   case matters (SQLite's is case-insensitive, PostgreSQL's is not);
 * - lower-case snake_case column aliases (PostgreSQL folds unquoted names to lower case);
 * - every selected column of a GROUP BY query grouped or aggregated (PostgreSQL insists).
 */
export type SqlValue = string | number | bigint | Buffer | null;
export type Row = Record<string, unknown>;
export type SqlDialect = 'sqlite' | 'postgres';

export interface Sql {
  readonly dialect: SqlDialect;
  /** Where the data is, for messages: a file name, or the URL without its password. */
  readonly where: string;
  get<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  all<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** A statement without a result; the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /**
   * A write transaction around an async body: every get/all/run the body makes (however deep,
   * through AsyncLocalStorage) runs in it. Serialised against every other writer of the same
   * database — SQLite's BEGIN IMMEDIATE, PostgreSQL's transaction-level advisory lock — so a
   * read-then-write inside is safe across processes and cluster nodes. A transaction begun
   * inside another joins it.
   */
  transaction<T>(body: () => Promise<T>): Promise<T>;
  /**
   * Tell every node that `topic` changed (PostgreSQL NOTIFY, sent at COMMIT when inside a
   * transaction). SQLite: nothing to do — every process of the one machine reads the same file
   * and sees the change counter (changes.ts).
   */
  notify(channel: string, payload: string): Promise<void>;
  /**
   * Call `onMessage` for each notification on `channel` (PostgreSQL LISTEN, on a connection of
   * its own, re-established after an outage, when `onReconnect` runs: notifications may have been
   * missed). SQLite: never called. Returns the function that stops listening.
   */
  listen(channel: string, onMessage: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * What went wrong, in the store's words rather than an engine's codes:
 * - unique: a UNIQUE or PRIMARY KEY constraint (a duplicate);
 * - constraint: another constraint (foreign key, check, not null; the append-only audit trail);
 * - busy: a lock or serialisation conflict that a retry may resolve;
 * - unavailable: the database cannot be reached or will not take writes now (PostgreSQL down,
 *   a standby, too many connections; a full disk) — transient: mail that needs the store is deferred;
 * - damaged: the data is not a database of ours (a corrupt SQLite file);
 * - other: anything else (a bug: SQL the engine refuses).
 */
export type SqlErrorKind = 'unique' | 'constraint' | 'busy' | 'unavailable' | 'damaged' | 'other';

export class SqlError extends Error {
  override readonly name = 'SqlError';
  constructor(
    readonly kind: SqlErrorKind,
    message: string,
    /** The engine's code (SQLITE_CONSTRAINT_UNIQUE, 23505, ECONNREFUSED …), for logs. */
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True for an error that says the store cannot be reached now (defer, retry later; never bounce). */
export function isStoreUnavailable(err: unknown): boolean {
  for (let e = err, i = 0; e instanceof Error && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    if (e instanceof SqlError) return e.kind === 'unavailable' || e.kind === 'busy';
  }
  return false;
}
