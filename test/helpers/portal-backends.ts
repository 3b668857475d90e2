/**
 * The portal store's contract suite runs against both backends (issue 19): a test file wraps its
 * tests in `describe.each(PORTAL_BACKENDS)('… (%s)', (name) => { const backend = usePortalBackend(name); … })`
 * and opens its stores through `backend`. SQLite: portal.db in a fresh temporary data_dir;
 * PostgreSQL: one real server per test file (test/helpers/postgres.ts, started on first use,
 * stopped after the file) and a fresh database per store, so tests stay independent. Stores are
 * opened as the gateway opens them (openPortalStore from a config), never by hand.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { Config } from '../../src/config/types.js';
import type { PortalDb } from '../../src/keystore/portal-db.js';
import { openPortalStore, type PortalStoreOptions } from '../../src/keystore/portal-store.js';
import { tempDir } from './config.js';
import { startPostgres, type Postgres } from './postgres.js';

export const PORTAL_BACKENDS = ['sqlite', 'postgres'] as const;
export type PortalBackendName = (typeof PORTAL_BACKENDS)[number];

/** The variable the test configs name for the database password (as an admin's config would). */
export const PG_PASSWORD_ENV = 'POSTERN_TEST_PG_PASSWORD';

/** What openPortalStore reads of a config. */
export type PortalStoreConfig = Pick<Config, 'data_dir' | 'keystore'> & { cluster: Pick<Config['cluster'], 'node'> };

export interface PortalBackend {
  name: PortalBackendName;
  /** A new, empty store (its own data_dir; on PostgreSQL its own database), migrated; closed after the file if the test did not. */
  open(opts?: Partial<PortalStoreOptions>): Promise<PortalDb>;
  /** Another PortalDb on the last store opened: another process, or (PostgreSQL) another node. */
  another(opts?: Partial<PortalStoreOptions>): Promise<PortalDb>;
  /** The config of the last store opened (what a node's postern.yaml would say). */
  config(): PortalStoreConfig;
  /** The file (SQLite) or the database URL without password (PostgreSQL) of the last store. */
  where(): string;
  /** This file's server (PostgreSQL only): halt, resume, query as superuser. */
  postgres(): Promise<Postgres>;
  /** Run SQL on the last store behind Postern's back (SQLite: the file; PostgreSQL: as superuser, in schema portal). */
  raw(sql: string): Promise<void>;
  /** The files holding the last store's data (SQLite: the file and its WAL; PostgreSQL: the database's files and the WAL, after a checkpoint). */
  dataFiles(): Promise<string[]>;
}

let server: Promise<Postgres> | null = null;

/** This file's server, started on first use (stopped by the afterAll of the describe that uses it). */
function sharedPostgres(): Promise<Postgres> {
  server ??= startPostgres();
  return server;
}

const databaseName = (url: string) => new URL(url).pathname.slice(1);

/** Call at describe level (it registers afterAll hooks). */
export function usePortalBackend(name: PortalBackendName): PortalBackend {
  const opened: PortalDb[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let config: PortalStoreConfig | null = null;
  afterAll(async () => {
    for (const db of opened.splice(0)) await db.close().catch(() => undefined);
    for (const c of cleanups.splice(0)) await c();
    if (name === 'postgres' && server) {
      const s = server;
      server = null;
      await (await s).stop();
    }
  });
  const openOn = async (c: PortalStoreConfig, opts: Partial<PortalStoreOptions>) => {
    const db = await openPortalStore(c, { role: 'worker', ...opts });
    opened.push(db);
    return db;
  };
  return {
    name,
    async open(opts = {}) {
      const tmp = await tempDir('postern-portal-store-');
      cleanups.push(tmp.cleanup);
      if (name === 'sqlite') {
        config = { data_dir: tmp.dir, keystore: { sqlite: `${tmp.dir}/postern.db` }, cluster: { node: 'node-a' } };
      } else {
        const pg = await sharedPostgres();
        process.env[PG_PASSWORD_ENV] = pg.password;
        const url = await pg.createDatabase();
        config = { data_dir: tmp.dir, keystore: { sqlite: `${tmp.dir}/postern.db`, postgres: { url, password_env: PG_PASSWORD_ENV, pool: 4 } }, cluster: { node: 'node-a' } };
      }
      return openOn(config, opts);
    },
    async another(opts = {}) {
      if (!config) throw new Error('another() before open()');
      return openOn({ ...config, cluster: { node: 'node-b' } }, opts);
    },
    config() {
      if (!config) throw new Error('config() before open()');
      return config;
    },
    where() {
      const c = this.config();
      return c.keystore.postgres?.url ?? `${c.data_dir}/portal.db`;
    },
    postgres() {
      if (name !== 'postgres') throw new Error('postgres() on the SQLite backend');
      return sharedPostgres();
    },
    async raw(sql) {
      const c = this.config();
      if (!c.keystore.postgres) {
        const db = new Database(join(c.data_dir, 'portal.db'));
        try {
          db.exec(sql);
        } finally {
          db.close();
        }
        return;
      }
      await (await sharedPostgres()).query(`SET search_path = portal; ${sql}`, [], databaseName(c.keystore.postgres.url));
    },
    async dataFiles() {
      const c = this.config();
      if (!c.keystore.postgres) return [join(c.data_dir, 'portal.db'), join(c.data_dir, 'portal.db-wal')].filter((f) => existsSync(f));
      const pg = await sharedPostgres();
      await pg.query('CHECKPOINT');
      const oid = (await pg.query('SELECT oid FROM pg_database WHERE datname = $1', [databaseName(c.keystore.postgres.url)])).rows[0].oid as number;
      const dirs = [join(pg.dir, 'base', String(oid)), join(pg.dir, 'pg_wal')];
      const files: string[] = [];
      for (const d of dirs) for (const e of await readdir(d, { withFileTypes: true })) if (e.isFile()) files.push(join(d, e.name));
      return files;
    },
  };
}
