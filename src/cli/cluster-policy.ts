/**
 * Where this gateway's policy versions are: the cluster's database when `keystore.postgres` is
 * set (issue 19), data_dir/policy-versions otherwise. The CLI, the admin role and the supervisor's
 * policy follower open it here. Only the raw Sql is needed (two tables of the keystore schema), not
 * the keystore with its KEK.
 */
import type { Config, PostgresLogin } from '../config/types.js';
import { KEYSTORE_PG_MIGRATIONS } from '../keystore/schema-pg.js';
import { openPostgres } from '../keystore/sql/open.js';
import { DbPolicyVersions, FilePolicyVersions, policyVersionsDir, type PolicyVersionStore } from '../policy/index.js';

export interface OpenedPolicyVersions<V extends PolicyVersionStore = PolicyVersionStore> {
  versions: V;
  close(): Promise<void>;
}

/**
 * The policy versions of `config`'s gateway. `migrate`: bring the keystore schema up to date first
 * (the CLI and the supervisor, which may be the first to reach a new database); a role leaves
 * that to them. Opening PostgreSQL connects lazily: an unreachable database fails the first query.
 */
export async function openPolicyVersions(config: Config, who: string, opts: { migrate?: boolean } = {}): Promise<OpenedPolicyVersions> {
  if (!config.keystore.postgres) return { versions: new FilePolicyVersions(policyVersionsDir(config)), close: async () => undefined };
  return openClusterPolicyVersions(config.keystore.postgres, config.cluster.node, who, opts);
}

export async function openClusterPolicyVersions(login: PostgresLogin, node: string, who: string, opts: { migrate?: boolean } = {}): Promise<OpenedPolicyVersions<DbPolicyVersions>> {
  const sql = await openPostgres(login, {
    schema: 'keystore',
    // One for the queries, the notifications have a connection of their own.
    pool: 2,
    applicationName: `postern ${node} ${who}`,
    ...(opts.migrate ? { migrations: KEYSTORE_PG_MIGRATIONS } : {}),
  });
  return { versions: new DbPolicyVersions(sql), close: () => sql.close() };
}
