/**
 * Opening the portal store the config names, for every process that uses it: portal.db in
 * data_dir on one machine, or the schema `portal` of the cluster's PostgreSQL database
 * (`keystore.postgres`), where every node finds the reply links and webmail accounts any node made.
 *
 * The portal role faces the Internet: with `keystore.postgres.portal` it logs in as that login,
 * which the admin grants the portal schema alone (README, "Running a cluster"), and it never
 * migrates (the login may not create tables): it checks the schema's version instead. Every other
 * role, and the portal without a login of its own, uses the keystore's login and migrates the
 * schema when it opens it for writing; the supervisor does so before any role starts.
 *
 * KEK-free like portal-db.ts (the portal imports it). Secrets: the database passwords, read from
 * their variable or file by sql/open.ts, never logged or put in an error (`where` has no password).
 */
import type { Config } from '../config/types.js';
import { openPortalDb, portalDbFile, PortalDb } from './portal-db.js';
import { PortalDbError, portalDbError } from './portal-rows.js';
import { PORTAL_PG_MIGRATIONS } from './portal-schema-pg.js';
import { openPostgres, StoreConfigError } from './sql/open.js';
import type { PostgresSql } from './sql/postgres.js';
import { isStoreUnavailable } from './sql/types.js';

/** Who opens the store: names the connections (pg_stat_activity) and decides the login. */
export type PortalStoreUser = 'portal' | 'worker' | 'admin' | 'supervisor' | 'cli';

export interface PortalStoreOptions {
  role: PortalStoreUser;
  /** SQLite: the supervisor (root) gives portal.db to this owner, mode 0660, for the unprivileged portal. */
  owner?: { uid: number; gid: number };
  /**
   * SQLite — false: the file must exist (the portal role, unprivileged, cannot create one in
   * data_dir: the supervisor made it). Default true. PostgreSQL: the schema is made or migrated by
   * every login that may, whatever this says; the portal's own login may not, so with it the
   * schema must be at this Postern's version already (the supervisor migrates it first).
   */
  create?: boolean;
  /** Reads only: nothing created or migrated (`postern policy explain`). */
  readonly?: boolean;
}

type StoreConfig = Pick<Config, 'data_dir' | 'keystore'> & { cluster?: Pick<Config['cluster'], 'node'> };

/** The database a URL names (its path), for telling whether two logins reach the same one. */
function databaseOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  } catch {
    throw new StoreConfigError('keystore.postgres: a URL cannot be parsed');
  }
}

export async function openPortalStore(config: StoreConfig, opts: PortalStoreOptions): Promise<PortalDb> {
  const pgc = config.keystore.postgres;
  if (!pgc) {
    return openPortalDb(portalDbFile(config), {
      ...(opts.owner ? { owner: opts.owner } : {}),
      ...(opts.readonly !== undefined ? { readonly: opts.readonly } : {}),
      ...(opts.create !== undefined ? { create: opts.create } : {}),
    });
  }
  // The workers write reply links and mail with the keystore's login into the keystore's
  // database: a portal login reaching another database would find none of them.
  if (pgc.portal && databaseOf(pgc.portal.url) !== databaseOf(pgc.url)) {
    throw new StoreConfigError('keystore.postgres.portal: its URL must name the same database as keystore.postgres.url (another login, the same data)');
  }
  const ownLogin = opts.role === 'portal' && pgc.portal !== undefined;
  const login = ownLogin ? pgc.portal! : pgc;
  const migrate = !ownLogin && !opts.readonly;
  const sql = await openPostgres(login, {
    schema: 'portal',
    pool: pgc.pool,
    applicationName: `postern ${config.cluster?.node ?? ''} ${opts.role}`.replace(/ +/g, ' '),
    ...(migrate ? { migrations: PORTAL_PG_MIGRATIONS } : {}),
  }).catch((err: unknown) => {
    throw portalDbError(err);
  });
  if (!migrate) {
    try {
      await checkVersion(sql);
    } catch (err) {
      await sql.close();
      throw err;
    }
  }
  return new PortalDb(sql);
}

/**
 * A store not migrated here must be at this Postern's version. Unreachable now is no reason to
 * refuse to start (the portal's key and CRL pages need no database; its other pages say the
 * store is unavailable until it is back): the pool connects when asked next.
 */
async function checkVersion(sql: PostgresSql): Promise<void> {
  let version: number | undefined;
  try {
    const r = await sql.get('SELECT version FROM schema_version');
    version = r ? Number(r.version) : undefined;
  } catch (err) {
    if (isStoreUnavailable(err)) return;
    throw new PortalDbError('io', `the portal schema at ${sql.where} cannot be read (not made yet, or the login has no access to it): ${(err as Error).message}`, { cause: err });
  }
  const wanted = PORTAL_PG_MIGRATIONS.length;
  if (version === wanted) return;
  if (version !== undefined && version > wanted) throw new PortalDbError('io', `the portal schema at ${sql.where} has version ${version}, newer than this Postern (${wanted}): upgrade Postern`);
  throw new PortalDbError('io', `the portal schema at ${sql.where} is at version ${version ?? 0}, this Postern needs ${wanted}: start the gateway (or a command) with the keystore's login to migrate it`);
}
