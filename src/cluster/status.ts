/**
 * What `postern cluster status` says of each node: up (its heartbeat came within three
 * intervals), late (missed a few: busy, cut off from the database, or killed a moment ago), gone
 * (stopped cleanly, or silent for long). The interval is each node's own, as it wrote it.
 */
import type { ClusterNodeBeat } from '../keystore/index.js';

export type NodeState = 'up' | 'late' | 'gone';

/** Heartbeats a node may miss before it is late, and before it is gone. */
export const LATE_AFTER_BEATS = 3;
export const GONE_AFTER_BEATS = 30;

export interface NodeStatus {
  name: string;
  version: string;
  policy: string | null;
  started: string;
  seen: string;
  ageMs: number;
  state: NodeState;
  /** The node this command runs on (cluster.node). */
  self: boolean;
  detail: Record<string, unknown>;
}

export function nodeState(n: ClusterNodeBeat, now: Date, defaultIntervalMs: number): NodeState {
  if (n.detail.stopped === true) return 'gone';
  const interval = typeof n.detail.heartbeat === 'number' && n.detail.heartbeat > 0 ? n.detail.heartbeat : defaultIntervalMs;
  const age = now.getTime() - n.seen.getTime();
  if (age <= LATE_AFTER_BEATS * interval) return 'up';
  return age <= GONE_AFTER_BEATS * interval ? 'late' : 'gone';
}

export function nodeStatuses(nodes: ClusterNodeBeat[], o: { now: Date; self: string; intervalMs: number }): NodeStatus[] {
  return nodes.map((n) => ({
    name: n.name,
    version: n.version,
    policy: n.policy,
    started: n.started.toISOString(),
    seen: n.seen.toISOString(),
    ageMs: Math.max(0, o.now.getTime() - n.seen.getTime()),
    state: nodeState(n, o.now, o.intervalMs),
    self: n.name === o.self,
    detail: n.detail,
  }));
}

/** "4s", "12m", "3h", "2d": how long ago, at a glance. */
export function age(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

/** The table: one line per node, this node marked with "*"; names from other nodes shown escaped. */
export function statusTable(rows: NodeStatus[]): string[] {
  const shown = (s: string) => s.replace(/[\p{Cc}\p{Cf}\s]/gu, (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`);
  const lines = [['NODE', 'VERSION', 'POLICY', 'SEEN', 'STATE'], ...rows.map((r) => [`${shown(r.name)}${r.self ? ' *' : ''}`, shown(r.version), r.policy ? r.policy.slice(0, 12) : '-', `${age(r.ageMs)} ago`, r.state])];
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}
