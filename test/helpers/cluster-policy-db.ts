/**
 * A keystore database for the cluster policy tests: SQLite migrated as the keystore is, or a fresh
 * database on this file's PostgreSQL server with the keystore schema migrated.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { KEYSTORE_PG_MIGRATIONS } from '../../src/keystore/schema-pg.js';
import { migrate } from '../../src/keystore/schema.js';
import { migratePostgres } from '../../src/keystore/sql/migrate-pg.js';
import { PostgresSql } from '../../src/keystore/sql/postgres.js';
import { SqliteSql } from '../../src/keystore/sql/sqlite.js';
import type { Sql } from '../../src/keystore/sql/types.js';
import { tempDir } from './config.js';
import { startPostgres, type Postgres } from './postgres.js';


export interface PolicyCluster {
  /** This file's PostgreSQL server, started on first use. */
  postgres(): Promise<Postgres>;
  /** A fresh keystore database on the server: its URL; open it (as each node does) with `nodeSql`. */
  database(): Promise<{ url: string; password: string }>;
  /** One node's connection to the cluster database at `url` (migrated: several nodes may start at once). */
  nodeSql(url: string): Promise<PostgresSql>;
}

/**
 * Call at the top level of a test file or in a describe block, never inside a test or hook: the
 * server's stop is registered here, and vitest never runs an afterAll registered while tests run
 * (the server would outlive the file).
 */
export function usePolicyCluster(): PolicyCluster {
  let server: Promise<Postgres> | null = null;
  afterAll(async () => {
    const s = server;
    server = null;
    if (s) await (await s).stop();
  });
  const postgres = () => (server ??= startPostgres());
  const nodeSql = async (url: string) => {
    const pg = await postgres();
    const sql = new PostgresSql({ url, password: pg.password, pool: 2, schema: 'keystore', applicationName: 'postern-test', connectTimeoutMs: 1000 });
    await migratePostgres(sql, KEYSTORE_PG_MIGRATIONS, 'keystore');
    return sql;
  };
  return {
    postgres,
    nodeSql,
    async database() {
      const pg = await postgres();
      const url = await pg.createDatabase();
      await (await nodeSql(url)).close();
      return { url, password: pg.password };
    },
  };
}

/** A migrated SQLite keystore file in a temporary folder; `cleanup` closes and removes it. */
export async function sqliteKeystoreSql(): Promise<{ sql: Sql; cleanup: () => Promise<void> }> {
  const tmp = await tempDir('postern-policy-db-');
  const file = join(tmp.dir, 'postern.db');
  const db = new Database(file);
  migrate(db);
  const sql = new SqliteSql(db, file);
  return {
    sql,
    cleanup: async () => {
      await sql.close();
      await tmp.cleanup();
    },
  };
}
