/**
 * `postern cluster status [--json]`: the nodes sharing this gateway's PostgreSQL store, from their
 * heartbeats (cluster/heartbeat.ts). Exit 0 when the list could be read (whatever the nodes'
 * states), 1 when this node cannot reach the database. A gateway on SQLite is not a cluster: it
 * says so and exits 0.
 */
import { loadConfig } from '../config/index.js';
import { nodeStatuses, statusTable } from '../cluster/status.js';
import { listClusterNodes, openPostgres } from '../keystore/index.js';
import { SqlError } from '../keystore/sql/types.js';
import { DEFAULT_CONFIG, parse, UsageError, type CliIo } from './args.js';

/** PostgreSQL's undefined_table. */
const UNDEFINED_TABLE = '42P01';

export async function clusterCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  if (positionals[0] !== 'status' || positionals.length > 1) throw new UsageError('usage: postern cluster status [--json]');
  const config = await loadConfig(values.config ?? DEFAULT_CONFIG);
  const login = config.keystore.postgres;
  if (!login) {
    io.out(`not a cluster: this gateway keeps its store in SQLite (${config.keystore.sqlite})`);
    return 0;
  }
  const sql = await openPostgres(login, { schema: 'keystore', pool: 1, applicationName: `postern ${config.cluster.node} cluster status`, onIdleError: () => undefined });
  let nodes;
  try {
    nodes = await listClusterNodes(sql);
  } catch (err) {
    // Reached, but no node has made the schema yet: nothing to list, nothing wrong with this node.
    if (err instanceof SqlError && err.code === UNDEFINED_TABLE) {
      io.out(`no node has started on ${sql.where} yet (it has no keystore schema)`);
      return 0;
    }
    // The driver's message names the database by its URL without the password.
    io.err(`postern: cannot read the cluster's nodes: ${(err as Error).message}`);
    return 1;
  } finally {
    await sql.close();
  }
  const rows = nodeStatuses(nodes, { now: new Date(), self: config.cluster.node, intervalMs: config.cluster.heartbeat });
  if (values.json) {
    io.out(JSON.stringify(rows.map((r) => ({ name: r.name, version: r.version, policy: r.policy, started: r.started, seen: r.seen, age_ms: r.ageMs, state: r.state, self: r.self, detail: r.detail }))));
    return 0;
  }
  if (!rows.length) {
    io.out(`no node has written a heartbeat to ${sql.where} yet`);
    return 0;
  }
  for (const l of statusTable(rows)) io.out(l);
  return 0;
}
