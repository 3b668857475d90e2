/**
 * The nodes of a cluster as they report themselves (keystore table cluster_nodes, migration 7):
 * each node's supervisor writes its row every cluster.heartbeat (cluster/heartbeat.ts), and
 * `postern cluster status` reads them all. One row per node name, replaced at each beat.
 *
 * Untrusted input: none beyond other nodes of the same cluster. Secrets: none (the detail holds
 * a process id, listen addresses, queue sizes and role counts).
 */
import type { Sql } from './sql/types.js';

export interface ClusterNodeBeat {
  name: string;
  /** Postern's version on that node. */
  version: string;
  started: Date;
  seen: Date;
  /** The policy in force there (policyHash of its text); null when not known. */
  policy: string | null;
  detail: Record<string, unknown>;
}

const UPSERT = `INSERT INTO cluster_nodes (name, version, started, seen, policy, detail) VALUES (?, ?, ?, ?, ?, ?)
  ON CONFLICT (name) DO UPDATE SET version = excluded.version, started = excluded.started, seen = excluded.seen, policy = excluded.policy, detail = excluded.detail`;

/** One heartbeat: the node's row written whole (a single statement: no transaction, no write lock). */
export async function writeClusterNode(sql: Sql, n: ClusterNodeBeat): Promise<void> {
  await sql.run(UPSERT, [n.name, n.version, n.started.getTime(), n.seen.getTime(), n.policy, JSON.stringify(n.detail)]);
}

/** Every node that ever beat, by name. */
export async function listClusterNodes(sql: Sql): Promise<ClusterNodeBeat[]> {
  const rows = await sql.all<{ name: string; version: string; started: number; seen: number; policy: string | null; detail: string | null }>(
    'SELECT name, version, started, seen, policy, detail FROM cluster_nodes ORDER BY name',
  );
  return rows.map((r) => ({
    name: r.name,
    version: r.version,
    started: new Date(Number(r.started)),
    seen: new Date(Number(r.seen)),
    policy: r.policy,
    detail: parseDetail(r.detail),
  }));
}

/** Another node's detail as written; anything but a JSON object reads as empty, never as an error. */
function parseDetail(text: string | null): Record<string, unknown> {
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
