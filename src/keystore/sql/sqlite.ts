/**
 * The embedded backend: better-sqlite3, synchronous, behind the asynchronous Sql interface. One
 * connection per store; writers in this process take turns (their bodies may await a KEK), and
 * BEGIN IMMEDIATE makes writers of other processes (the CLI, the other workers) wait for the
 * file's write lock (busy_timeout) instead of failing half way.
 */
import type Database from 'better-sqlite3';
import { TransactionScope } from './tx-scope.js';
import { SqlError, type Row, type Sql, type SqlErrorKind, type SqlValue } from './types.js';

export function sqliteErrorKind(code: string): SqlErrorKind {
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return 'unique';
  if (code.startsWith('SQLITE_CONSTRAINT')) return 'constraint';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'busy';
  if (/^SQLITE_(CORRUPT|NOTADB|FORMAT)/.test(code)) return 'damaged';
  if (/^SQLITE_(FULL|IOERR|CANTOPEN|NOLFS)/.test(code)) return 'unavailable';
  return 'other';
}

/** better-sqlite3's errors as SqlErrors (their messages name no value: every value is a bound parameter). */
export function sqliteError(err: unknown, where: string): unknown {
  if (err instanceof SqlError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
  return new SqlError(sqliteErrorKind(code), `${where}: ${err.message} (${code})`, code, { cause: err });
}

export class SqliteSql implements Sql {
  readonly dialect = 'sqlite' as const;
  /** Statements by SQL text: preparing costs more than running most of these queries (profiled: 0.3 ms a message). */
  private readonly statements = new Map<string, Database.Statement>();
  private writing: Promise<unknown> = Promise.resolve();
  private readonly inTx = new TransactionScope<true>();

  constructor(
    /** The connection, open and migrated (schema.ts and portal-schema.ts work on it directly). */
    readonly db: Database.Database,
    readonly where: string,
  ) {}

  private stmt(text: string): Database.Statement {
    let s = this.statements.get(text);
    if (!s) this.statements.set(text, (s = this.db.prepare(text)));
    return s;
  }

  get<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    try {
      return Promise.resolve(this.stmt(sql).get(...params) as T | undefined);
    } catch (err) {
      return Promise.reject(sqliteError(err, this.where));
    }
  }

  all<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    try {
      return Promise.resolve(this.stmt(sql).all(...params) as T[]);
    } catch (err) {
      return Promise.reject(sqliteError(err, this.where));
    }
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    try {
      return Promise.resolve(this.stmt(sql).run(...params).changes);
    } catch (err) {
      return Promise.reject(sqliteError(err, this.where));
    }
  }

  transaction<T>(body: () => Promise<T>): Promise<T> {
    if (this.inTx.current()) return body();
    const work = () =>
      this.inTx.run(true, async () => {
        try {
          this.db.exec('BEGIN IMMEDIATE');
        } catch (err) {
          throw sqliteError(err, this.where);
        }
        try {
          const out = await body();
          this.db.exec('COMMIT');
          return out;
        } catch (err) {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
          throw sqliteError(err, this.where);
        }
      });
    const run = this.writing.then(work, work);
    this.writing = run.catch(() => undefined);
    return run;
  }

  async notify(): Promise<void> {}

  async listen(): Promise<() => Promise<void>> {
    return async () => {};
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
