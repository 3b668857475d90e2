/**
 * The keystore's contract suite runs against both backends (issue 19): a test file wraps its
 * tests in `describe.each(STORE_BACKENDS)('… (%s)', (name) => { const backend = useStoreBackend(name); … })`
 * and opens its databases through `backend`. PostgreSQL: one real server per test file
 * (test/helpers/postgres.ts), started on first use and stopped after the file; a fresh database
 * for every open, so tests stay independent as with a fresh SQLite file.
 */
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { tempDir } from './config.js';
import { startPostgres, type Postgres } from './postgres.js';
import type { Sql } from '../../src/keystore/sql/types.js';
import { PostgresSql } from '../../src/keystore/sql/postgres.js';
import { migratePostgres } from '../../src/keystore/sql/migrate-pg.js';
import { openSqliteKeystore } from '../../src/keystore/store-base.js';
import { KEYSTORE_PG_MIGRATIONS } from '../../src/keystore/schema-pg.js';
import { PORTAL_PG_MIGRATIONS } from '../../src/keystore/portal-schema-pg.js';

export const STORE_BACKENDS = ['sqlite', 'postgres'] as const;
export type StoreBackendName = (typeof STORE_BACKENDS)[number];

let server: Promise<Postgres> | null = null;

/**
 * This file's PostgreSQL server (started on first call). Stopped by the afterAll that
 * useStoreBackend registers at describe level — vitest never runs an afterAll registered while
 * a test runs — and, failing that, when the test process exits (scripts/postgres-server.js).
 */
export function sharedPostgres(): Promise<Postgres> {
  server ??= startPostgres();
  return server;
}

export async function stopSharedPostgres(): Promise<void> {
  const s = server;
  server = null;
  if (s) await (await s).stop();
}

export interface StoreBackend {
  name: StoreBackendName;
  /** A new, empty, migrated keystore database. */
  keystoreSql(): Promise<Sql>;
  /** The SQLite file (sqlite) or the database URL without password (postgres) of the last keystoreSql(). */
  lastWhere(): string;
  /** A PostgreSQL login for the database of the last keystoreSql() (postgres only): what a config names. */
  lastLogin(): { url: string; password: string } | undefined;
  /** The server (postgres only), e.g. to halt and resume it. */
  postgres(): Promise<Postgres>;
}

/** Call at describe level (it registers afterAll hooks). */
export function useStoreBackend(name: StoreBackendName): StoreBackend {
  const opened: Sql[] = [];
  const dirs: (() => Promise<void>)[] = [];
  let where = '';
  let login: { url: string; password: string } | undefined;
  afterAll(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => undefined);
    for (const c of dirs.splice(0)) await c();
    if (name === 'postgres') await stopSharedPostgres();
  });
  return {
    name,
    async keystoreSql() {
      if (name === 'sqlite') {
        const tmp = await tempDir('postern-store-');
        dirs.push(tmp.cleanup);
        where = join(tmp.dir, 'postern.db');
        const sql = openSqliteKeystore(where);
        opened.push(sql);
        return sql;
      }
      const pg = await sharedPostgres();
      const url = await pg.createDatabase();
      where = url;
      login = { url, password: pg.password };
      const sql = new PostgresSql({ url, password: pg.password, pool: 4, schema: 'keystore', applicationName: 'postern-test' });
      await migratePostgres(sql, KEYSTORE_PG_MIGRATIONS, 'keystore');
      opened.push(sql);
      return sql;
    },
    lastWhere: () => where,
    lastLogin: () => login,
    postgres: () => sharedPostgres(),
  };
}

/** A migrated portal schema in a fresh PostgreSQL database of this file's server. */
export async function portalPostgresSql(): Promise<{ sql: PostgresSql; url: string; password: string }> {
  const pg = await sharedPostgres();
  const url = await pg.createDatabase();
  const sql = new PostgresSql({ url, password: pg.password, pool: 4, schema: 'portal', applicationName: 'postern-test' });
  await migratePostgres(sql, PORTAL_PG_MIGRATIONS, 'portal');
  return { sql, url, password: pg.password };
}
