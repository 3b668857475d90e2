/**
 * A test config on a contract-suite backend (keystore-config.ts backendConfig), with what tests
 * check the stored data by: its rows through a connection of their own, and the files it lies in.
 * Tests open stores the way the gateway does (openKeyStore, openKeyStoreWithPortal); two opens of
 * one config are two connections (two pools) to one database, as two processes or nodes have.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../../src/config/types.js';
import { PostgresSql } from '../../src/keystore/sql/postgres.js';
import type { Row, Sql, SqlValue } from '../../src/keystore/sql/types.js';
import { openSqliteKeystore } from '../../src/keystore/store-base.js';
import type { testConfig } from './config.js';
import { backendConfig, databaseOf } from './keystore-config.js';
import type { StoreBackend } from './store-backends.js';

export interface KeystoreOnBackend {
  config: Config;
  /** Rows of a query on the keystore's database, through a connection of its own (what was stored). */
  rows<T extends Row = Row>(sql: string, args?: readonly SqlValue[]): Promise<T[]>;
  /**
   * Every file the keystore's data can be in, to scan for plaintext: SQLite's file and its WAL;
   * PostgreSQL's directory of this database and the server's write-ahead log, after a checkpoint.
   */
  files(): Promise<string[]>;
}

/** `dir` is the test's data dir (KEK, portal.db, the SQLite file); `over` as testConfig's. */
export async function keystoreOnBackend(backend: StoreBackend, dir: string, over: Parameters<typeof testConfig>[1] = {}): Promise<KeystoreOnBackend> {
  const config = await backendConfig(backend, dir, over);
  if (backend.name === 'sqlite') {
    const file = config.keystore.sqlite;
    return {
      config,
      rows: (sql, args) => withSql(openSqliteKeystore(file), (s) => s.all(sql, args)),
      files: async () => [file, `${file}-wal`],
    };
  }
  const pg = await backend.postgres();
  const url = config.keystore.postgres!.url;
  return {
    config,
    rows: (sql, args) => withSql(new PostgresSql({ url, password: pg.password, pool: 1, schema: 'keystore', applicationName: 'postern-test' }), (s) => s.all(sql, args)),
    files: async () => {
      await pg.query('CHECKPOINT');
      const oid = (await pg.query('SELECT oid FROM pg_database WHERE datname = $1', [databaseOf(config)])).rows[0]!.oid as number;
      return [...(await filesIn(join(pg.dir, 'base', String(oid)))), ...(await filesIn(join(pg.dir, 'pg_wal')))];
    },
  };
}

async function withSql<T>(sql: Sql, use: (s: Sql) => Promise<T>): Promise<T> {
  try {
    return await use(sql);
  } finally {
    await sql.close();
  }
}

async function filesIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if ((await stat(path)).isFile()) out.push(path);
  }
  return out;
}
