/**
 * The two SQL drivers behind the keystore (sql/): the same statements give the same answers on
 * SQLite and on a real PostgreSQL server; errors arrive as SqlError kinds; PostgreSQL's write
 * transactions exclude each other across connection pools (two nodes), and its LISTEN
 * connection comes back by itself after the server restarts.
 */
import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberPlaceholders, PostgresSql, postgresErrorKind, redactedUrl, withPassword } from '../../../src/keystore/sql/postgres.js';
import { SqliteSql, sqliteErrorKind } from '../../../src/keystore/sql/sqlite.js';
import { isStoreUnavailable, SqlError, type Sql } from '../../../src/keystore/sql/types.js';
import { startPostgres, type Postgres } from '../../helpers/postgres.js';

const until = async (what: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('placeholders and names', () => {
  it('numbers ? outside quoted strings and identifiers', () => {
    expect(numberPlaceholders("SELECT * FROM t WHERE a = ? AND b = '?' AND \"c?\" = ? OR d IN (?, ?)")).toBe(
      "SELECT * FROM t WHERE a = $1 AND b = '?' AND \"c?\" = $2 OR d IN ($3, $4)",
    );
  });
  it('never shows a password in a URL it prints, and puts one in only for pg', () => {
    expect(redactedUrl('postgres://u:secret@h:5432/db')).toBe('postgres://u:***@h:5432/db');
    expect(redactedUrl('not a url')).not.toContain('not a url');
    expect(withPassword('postgres://u@h/db', 'p@ss:/w')).toBe('postgres://u:p%40ss%3A%2Fw@h/db');
  });
  it('classifies engine errors by what the store does about them', () => {
    expect(postgresErrorKind('23505', '')).toBe('unique');
    expect(postgresErrorKind('23503', '')).toBe('constraint');
    expect(postgresErrorKind('40001', '')).toBe('busy');
    expect(postgresErrorKind('57P01', '')).toBe('unavailable');
    expect(postgresErrorKind('ECONNREFUSED', '')).toBe('unavailable');
    expect(postgresErrorKind(undefined, 'Connection terminated unexpectedly')).toBe('unavailable');
    expect(postgresErrorKind('42601', 'syntax error')).toBe('other');
    expect(sqliteErrorKind('SQLITE_CONSTRAINT_UNIQUE')).toBe('unique');
    expect(sqliteErrorKind('SQLITE_CONSTRAINT_TRIGGER')).toBe('constraint');
    expect(sqliteErrorKind('SQLITE_BUSY')).toBe('busy');
    expect(sqliteErrorKind('SQLITE_FULL')).toBe('unavailable');
    expect(sqliteErrorKind('SQLITE_NOTADB')).toBe('damaged');
    expect(isStoreUnavailable(new Error('wrapped', { cause: new SqlError('unavailable', 'x', undefined) }))).toBe(true);
    expect(isStoreUnavailable(new SqlError('unique', 'x', undefined))).toBe(false);
    expect(isStoreUnavailable(new Error('other'))).toBe(false);
  });
});

const TABLE = {
  sqlite: 'CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, data BLOB, at INTEGER NOT NULL)',
  postgres: 'CREATE TABLE t (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, data BYTEA, at BIGINT NOT NULL)',
};

let pg: Postgres;
beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

async function open(dialect: 'sqlite' | 'postgres'): Promise<Sql> {
  if (dialect === 'sqlite') {
    const s = new SqliteSql(new Database(':memory:'), ':memory:');
    await s.run(TABLE.sqlite);
    return s;
  }
  const url = await pg.createDatabase();
  const s = new PostgresSql({ url, password: pg.password, pool: 3, schema: 'public' });
  await s.run(TABLE.postgres);
  return s;
}

/**
 * How many AsyncLocalStorages the process has enabled, as Node 20 shows it: each enabled one
 * stamps its own symbol on every async resource created while it is, a new one included. Node's
 * later async context frames stamp nothing: then the count is 0, whatever is enabled.
 */
function enabledContexts(): number {
  return Object.getOwnPropertySymbols(new AsyncResource('postern-probe')).filter((s) => s.description === 'kResourceStore').length;
}

/** Whether enabledContexts() can see an AsyncLocalStorage on this Node at all. */
function contextsVisible(): boolean {
  const probe = new AsyncLocalStorage<true>();
  const before = enabledContexts();
  const during = probe.run(true, enabledContexts);
  probe.disable();
  return during > before;
}

describe.each(['sqlite', 'postgres'] as const)('one SQL on %s', (dialect) => {
  it('answers the portable statements alike: RETURNING id, BLOBs, big integers, ON CONFLICT', async () => {
    const sql = await open(dialect);
    const at = 1_796_000_000_123;
    const a = await sql.get('INSERT INTO t (name, data, at) VALUES (?, ?, ?) RETURNING id', ['a', Buffer.from([0, 1, 255]), at]);
    expect(a).toEqual({ id: 1 });
    expect(await sql.run('INSERT INTO t (name, data, at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING', ['a', null, 1])).toBe(0);
    expect(await sql.run('INSERT INTO t (name, data, at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET at = excluded.at', ['a', null, at + 1])).toBe(1);
    const row = await sql.get('SELECT id, name, data, at, count(*) OVER () AS n FROM t WHERE name = ?', ['a']);
    expect(row).toEqual({ id: 1, name: 'a', data: Buffer.from([0, 1, 255]), at: at + 1, n: 1 });
    expect(await sql.get('SELECT count(*) AS n, sum(at) AS s FROM t')).toEqual({ n: 1, s: at + 1 });
    await sql.close();
  });

  it('reports a duplicate as unique and a bad statement as other', async () => {
    const sql = await open(dialect);
    await sql.run('INSERT INTO t (name, at) VALUES (?, ?)', ['x', 1]);
    await expect(sql.run('INSERT INTO t (name, at) VALUES (?, ?)', ['x', 2])).rejects.toMatchObject({ name: 'SqlError', kind: 'unique' });
    await expect(sql.run('INSERT INTO nowhere VALUES (1)')).rejects.toMatchObject({ kind: 'other' });
    await sql.close();
  });

  it('runs a transaction body, however deep, in the transaction; rolls back on a throw; nested joins', async () => {
    const sql = await open(dialect);
    const insert = (name: string) => sql.run('INSERT INTO t (name, at) VALUES (?, ?)', [name, 1]);
    await expect(
      sql.transaction(async () => {
        await insert('one');
        await sql.transaction(async () => insert('two'));
        await new Promise((r) => setTimeout(r, 5));
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(await sql.all('SELECT name FROM t')).toEqual([]);
    await sql.transaction(async () => {
      await insert('one');
      await sql.transaction(async () => insert('two'));
    });
    expect((await sql.all('SELECT name FROM t ORDER BY id')).map((r) => r.name)).toEqual(['one', 'two']);
    await sql.close();
  });

  // An AsyncLocalStorage left enabled makes every promise of the process walk it: the MIME corpus
  // tests ran 20× slower after the unit files before them had opened a few hundred stores.
  it('keeps no async context enabled once its transactions are over, open or closed', async (ctx) => {
    if (!contextsVisible()) ctx.skip('this Node keeps async context without async_hooks: nothing to leave behind');
    const before = enabledContexts();
    const sql = await open(dialect);
    let inside = -1;
    await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        sql.transaction(async () => {
          await sql.run('INSERT INTO t (name, at) VALUES (?, ?)', [name, 1]);
          inside = Math.max(inside, enabledContexts());
        }),
      ),
    );
    expect(inside).toBe(before + 1);
    expect(enabledContexts()).toBe(before);
    // The store stays usable: its next transaction finds its own connection again.
    await sql.transaction(async () => {
      await sql.run('INSERT INTO t (name, at) VALUES (?, ?)', ['d', 1]);
      await sql.transaction(async () => sql.run('INSERT INTO t (name, at) VALUES (?, ?)', ['e', 1]));
    });
    expect(await sql.get('SELECT count(*) AS n FROM t')).toEqual({ n: 5 });
    await sql.close();
    expect(enabledContexts()).toBe(before);
  });
});

describe('PostgreSQL across nodes', () => {
  it('lets one write transaction at a time into a schema, whichever pool it comes from', async () => {
    const url = await pg.createDatabase();
    const nodes = [0, 1].map(() => new PostgresSql({ url, password: pg.password, pool: 3, schema: 'public' }));
    await nodes[0]!.run('CREATE TABLE counter (n BIGINT NOT NULL)');
    await nodes[0]!.run('INSERT INTO counter (n) VALUES (0)');
    // Read, wait, write: without mutual exclusion increments would be lost.
    const bump = (sql: PostgresSql) =>
      sql.transaction(async () => {
        const { n } = (await sql.get('SELECT n FROM counter'))!;
        await new Promise((r) => setTimeout(r, 2));
        await sql.run('UPDATE counter SET n = ?', [Number(n) + 1]);
      });
    await Promise.all(Array.from({ length: 20 }, (_, i) => bump(nodes[i % 2]!)));
    expect(await nodes[1]!.get('SELECT n FROM counter')).toEqual({ n: 20 });
    for (const n of nodes) await n.close();
  });

  it('delivers a NOTIFY at commit, not before, and not after a rollback', async () => {
    const url = await pg.createDatabase();
    const a = new PostgresSql({ url, password: pg.password, pool: 2, schema: 'public' });
    const b = new PostgresSql({ url, password: pg.password, pool: 2, schema: 'public' });
    const got: string[] = [];
    const stop = await b.listen('postern_test', (p) => got.push(p));
    await expect(
      a.transaction(async () => {
        await a.notify('postern_test', 'rolled-back');
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    let inside = -1;
    await a.transaction(async () => {
      await a.notify('postern_test', 'committed');
      await new Promise((r) => setTimeout(r, 100));
      inside = got.length;
    });
    await until(() => got.length === 1);
    expect(inside).toBe(0);
    expect(got).toEqual(['committed']);
    await stop();
    await a.close();
    await b.close();
  });

  it('fails fast as unavailable while the server is down, then works again with the same object; LISTEN comes back', async () => {
    const url = await pg.createDatabase();
    const sql = new PostgresSql({ url, password: pg.password, pool: 2, schema: 'public', connectTimeoutMs: 2_000 });
    const got: string[] = [];
    let reconnects = 0;
    await sql.listen('postern_test', (p) => got.push(p), () => reconnects++);
    await pg.halt();
    const err = await sql.get('SELECT 1 AS one').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SqlError);
    expect((err as SqlError).kind).toBe('unavailable');
    expect(String((err as Error).message)).not.toContain(pg.password);
    await expect(sql.transaction(async () => undefined)).rejects.toMatchObject({ kind: 'unavailable' });
    await pg.resume();
    expect(await sql.get('SELECT 1 AS one')).toEqual({ one: 1 });
    await until(() => reconnects > 0, 15_000);
    await sql.notify('postern_test', 'after');
    await until(() => got.includes('after'));
    await sql.close();
  });
});
