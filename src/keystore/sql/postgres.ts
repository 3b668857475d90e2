/**
 * The cluster backend: PostgreSQL through `pg`'s pool. Each store lives in a schema of its own
 * (keystore, portal: the portal may be given a login that reaches only its schema), selected by
 * search_path so the store classes' SQL names tables without a schema.
 *
 * Outages are expected, not fatal: a query against a stopped server fails as SqlError
 * 'unavailable' (the worker defers the message), the pool reconnects on the next query, and the
 * LISTEN connection reconnects by itself with back-off and tells its listeners it may have
 * missed notifications. No query hangs for ever: connect and query have time limits.
 *
 * Secrets: the password comes from the config's environment variable or file, never the URL
 * printed (`where` has it removed).
 */
import pg from 'pg';
import { TransactionScope } from './tx-scope.js';
import { SqlError, type Row, type Sql, type SqlErrorKind, type SqlValue } from './types.js';

export interface PostgresOptions {
  /** postgres://user@host:port/database?sslmode=… (a password in it is accepted but better given apart). */
  url: string;
  password?: string;
  /** Connections at most (per process). */
  pool: number;
  /** The schema the store's tables live in (created by the migrations). */
  schema: string;
  /** Shown in pg_stat_activity: which node and role holds a connection. */
  applicationName?: string;
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
  /** Told about an idle connection's failure (the pool replaces it); without it such errors are dropped. */
  onIdleError?: (err: Error) => void;
}

/** A database URL for messages and logs: the password removed. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/**
 * BIGINT (20) and NUMERIC (1700, what sum() of a BIGINT gives) as JS numbers, as SQLite gives
 * them: ours are millisecond times, ids and counts, far below 2^53.
 */
const AS_NUMBER = new Set([20, 1700]);
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (AS_NUMBER.has(oid) ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

export function postgresErrorKind(code: string | undefined, message: string): SqlErrorKind {
  if (code === '23505') return 'unique';
  if (code?.startsWith('23') || code === 'P0001') return 'constraint';
  if (code === '40001' || code === '40P01' || code === '55P03') return 'busy';
  // 08: connection exceptions; 57P01-03: shutdown, crash, cannot connect now; 53: out of
  // resources (disk, memory, connections); 25006: a read-only standby; 57014: our query timeout.
  if (code && (/^(08|53|57P0)/.test(code) || code === '25006' || code === '57014')) return 'unavailable';
  if (code && UNAVAILABLE_ERRNO.has(code)) return 'unavailable';
  if (/Connection terminated|timeout exceeded|Query read timeout|connection timeout|Client has encountered a connection error|not queryable/i.test(message)) return 'unavailable';
  return 'other';
}

export function postgresError(err: unknown, where: string): unknown {
  if (err instanceof SqlError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  const c = typeof code === 'string' ? code : undefined;
  const kind = postgresErrorKind(c, err.message);
  // pg's messages for constraint errors can quote a value in `detail`; only the message is kept.
  return new SqlError(kind, `${where}: ${err.message}${c ? ` (${c})` : ''}`, c, { cause: err });
}

/** `?` placeholders numbered $1, $2 … (outside quoted strings and identifiers). */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${++n}`;
    } else out += ch;
  }
  return out;
}

type Queryable = Pick<pg.PoolClient, 'query'>;

export class PostgresSql implements Sql {
  readonly dialect = 'postgres' as const;
  readonly where: string;
  readonly pool: pg.Pool;
  private readonly texts = new Map<string, string>();
  private readonly tx = new TransactionScope<Queryable>();
  private listener: Listener | null = null;
  private closed = false;

  constructor(readonly options: PostgresOptions) {
    this.where = redactedUrl(options.url);
    this.pool = new pg.Pool(clientConfig(options, options.pool));
    // An idle connection that the server drops emits 'error' on the pool: unhandled, it would
    // kill the process. The pool replaces it; the next query reconnects.
    this.pool.on('error', (err) => options.onIdleError?.(err));
  }

  private text(sql: string): string {
    let t = this.texts.get(sql);
    if (t === undefined) this.texts.set(sql, (t = numberPlaceholders(sql)));
    return t;
  }

  private async query(sql: string, params: readonly SqlValue[]): Promise<pg.QueryResult> {
    const on: Queryable = this.tx.current() ?? this.pool;
    try {
      return await on.query(this.text(sql), params as unknown[]);
    } catch (err) {
      throw postgresError(err, this.where);
    }
  }

  async get<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.query(sql, params)).rows[0] as T | undefined;
  }

  async all<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return (await this.query(sql, params)).rows as T[];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await this.query(sql, params)).rowCount ?? 0;
  }

  /** Several statements at once, no parameters (migrations). */
  async exec(sql: string): Promise<void> {
    const on: Queryable = this.tx.current() ?? this.pool;
    try {
      await on.query(sql);
    } catch (err) {
      throw postgresError(err, this.where);
    }
  }

  async transaction<T>(body: () => Promise<T>): Promise<T> {
    if (this.tx.current()) return body();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw postgresError(err, this.where);
    }
    let broken: Error | undefined;
    let fromBody = false;
    try {
      await client.query('BEGIN');
      // One writer at a time per store, as SQLite's BEGIN IMMEDIATE: the store's read-then-write
      // bodies (a PDF password made once per pair, the last Administrator kept) stay correct
      // across nodes without retry loops. Writes are rare beside the mail path's reads.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`postern:${this.options.schema}`]);
      const out = await this.tx.run(client, body).catch((err: unknown) => {
        fromBody = true;
        throw err;
      });
      await client.query('COMMIT');
      return out;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (e) {
        broken = e as Error;
      }
      // The body's own errors pass as they are, as SQLite's driver lets them: a store's typed
      // refusal (an account that exists) must reach its caller, and its queries' errors are SqlErrors already.
      throw fromBody ? err : postgresError(err, this.where);
    } finally {
      client.release(broken);
    }
  }

  async notify(channel: string, payload: string): Promise<void> {
    await this.query('SELECT pg_notify(?, ?)', [channel, payload]);
  }

  async listen(channel: string, onMessage: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>> {
    if (this.closed) throw new SqlError('other', `${this.where}: closed`, undefined);
    this.listener ??= new Listener(this.options);
    return this.listener.add(channel, onMessage, onReconnect);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener?.close();
    await this.pool.end();
  }
}

function clientConfig(o: PostgresOptions, max: number): pg.PoolConfig {
  return {
    // pg lets the URL's fields override the config's, an absent password included: so the
    // password goes into the URL handed to pg (never into `where`, never logged).
    connectionString: withPassword(o.url, o.password),
    max,
    connectionTimeoutMillis: o.connectTimeoutMs ?? 5_000,
    query_timeout: o.queryTimeoutMs ?? 30_000,
    idleTimeoutMillis: 30_000,
    application_name: o.applicationName ?? 'postern',
    options: `-c search_path=${o.schema}`,
    types: TYPES,
  };
}

/** `url` with `password` set in it (percent-encoded), or as it is without one. */
export function withPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

interface Subscription {
  channel: string;
  onMessage: (payload: string) => void;
  onReconnect?: () => void;
}

/** One connection that LISTENs on every channel this process asked for; reconnects after an outage. */
class Listener {
  private subs = new Set<Subscription>();
  private client: pg.Client | null = null;
  private connecting: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private backoff = 250;
  private closed = false;

  constructor(private readonly options: PostgresOptions) {}

  async add(channel: string, onMessage: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>> {
    const sub: Subscription = { channel, onMessage, ...(onReconnect ? { onReconnect } : {}) };
    this.subs.add(sub);
    if (!this.client && !this.connecting) {
      await this.connect(false).catch(() => this.retry());
    } else if (this.client) {
      await this.client.query(`LISTEN ${ident(channel)}`).catch(() => undefined);
    } else await this.connecting?.catch(() => undefined);
    return async () => {
      this.subs.delete(sub);
      if (this.client && ![...this.subs].some((s) => s.channel === channel)) await this.client.query(`UNLISTEN ${ident(channel)}`).catch(() => undefined);
    };
  }

  private connect(reconnected: boolean): Promise<void> {
    const attempt = (async () => {
      const client = new pg.Client(clientConfig(this.options, 1));
      client.on('error', () => this.lost(client));
      client.on('end', () => this.lost(client));
      client.on('notification', (n) => {
        for (const s of this.subs) if (s.channel === n.channel) s.onMessage(n.payload ?? '');
      });
      try {
        await client.connect();
        for (const channel of new Set([...this.subs].map((s) => s.channel))) await client.query(`LISTEN ${ident(channel)}`);
      } catch (err) {
        client.removeAllListeners();
        client.on('error', () => undefined);
        await client.end().catch(() => undefined);
        throw err;
      }
      if (this.closed) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
      this.backoff = 250;
      if (reconnected) for (const s of this.subs) s.onReconnect?.();
    })();
    this.connecting = attempt;
    return attempt.finally(() => {
      if (this.connecting === attempt) this.connecting = null;
    });
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    client.removeAllListeners();
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    this.retry();
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect(true).catch(() => this.retry());
    }, this.backoff);
    this.timer.unref();
    this.backoff = Math.min(this.backoff * 2, 5_000);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.connecting?.catch(() => undefined);
    const c = this.client;
    this.client = null;
    if (c) {
      c.removeAllListeners();
      c.on('error', () => undefined);
      await c.end().catch(() => undefined);
    }
  }
}

/** A channel name as an SQL identifier (ours are constants, quoted all the same). */
function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
