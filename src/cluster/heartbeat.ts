/**
 * A cluster node's heartbeat: the supervisor writes this node's row of cluster_nodes (version,
 * policy in force, pid, listen addresses, queue sizes, roles running) every cluster.heartbeat,
 * so `postern cluster status` on any node shows which nodes are up.
 *
 * Never fatal and never noisy: the heartbeat is about the cluster, not the mail. While the
 * database cannot be reached, one warning says so when the outage begins and one line when it
 * ends; the mail path has its own handling of the outage (deferral).
 */
import type { Config } from '../config/types.js';
import { POSTERN_VERSION } from '../core/version.js';
import { openPostgres, writeClusterNode, type ClusterNodeBeat } from '../keystore/index.js';
import type { Sql } from '../keystore/sql/types.js';
import type { Logger } from '../log/index.js';
import type { QueueName, Spool } from '../spool/index.js';

/** What a node says about itself at each beat. */
export interface NodeFacts {
  policy: string | null;
  detail: Record<string, unknown>;
}

export interface HeartbeatOptions {
  sql: Sql;
  node: string;
  intervalMs: number;
  log: Pick<Logger, 'warn' | 'info'>;
  facts: () => Promise<NodeFacts>;
  version?: string;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<boolean> | null = null;
  private failing = false;
  private readonly started = new Date();

  constructor(private readonly o: HeartbeatOptions) {}

  /** Beat now, then every interval. */
  start(): void {
    if (this.timer) return;
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.o.intervalMs);
    this.timer.unref();
  }

  /** One beat (skipped while the last one still waits on the database); true when written. */
  beat(extra: Record<string, unknown> = {}): Promise<boolean> {
    this.running ??= this.write(extra).finally(() => (this.running = null));
    return this.running;
  }

  private async write(extra: Record<string, unknown>): Promise<boolean> {
    const facts = await this.o.facts().catch((err: Error) => ({ policy: null, detail: { facts_error: err.message } }));
    const row: ClusterNodeBeat = {
      name: this.o.node,
      version: this.o.version ?? POSTERN_VERSION,
      started: this.started,
      seen: new Date(),
      policy: facts.policy,
      detail: { ...facts.detail, heartbeat: this.o.intervalMs, ...extra },
    };
    try {
      await writeClusterNode(this.o.sql, row);
    } catch (err) {
      if (!this.failing) {
        this.failing = true;
        this.o.log.warn(
          { event: 'supervisor.heartbeat_failed', node: this.o.node, where: this.o.sql.where, reason: (err as Error).message },
          'cannot write this node\'s cluster heartbeat; trying again each interval (said once per outage)',
        );
      }
      return false;
    }
    if (this.failing) {
      this.failing = false;
      this.o.log.info({ event: 'supervisor.heartbeat_resumed', node: this.o.node }, 'the cluster heartbeat is written again');
    }
    return true;
  }

  /** Stop beating; a last beat says the node stopped (cluster status shows it gone at once). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    await this.beat({ stopped: true });
  }
}

export interface SupervisorView {
  /** policyHash of the policy the roles last loaded (null: not known). */
  policy: () => string | null;
  /** The roles' processes (Supervisor.status()). */
  roles: () => { role: string; running: boolean }[];
  /** Entries per spool queue that says something about load. */
  queues: () => Promise<Record<string, number>>;
  /** smtpd's bound addresses once it reported them. */
  listen: () => string[];
}

/** The facts of a node run by `postern start`: the policy in force, pid, listeners, queues, roles. */
export function supervisorFacts(view: SupervisorView): () => Promise<NodeFacts> {
  return async () => {
    const policy = view.policy();
    const roles: Record<string, number> = {};
    for (const r of view.roles()) if (r.running) roles[r.role] = (roles[r.role] ?? 0) + 1;
    return { policy, detail: { pid: process.pid, listen: view.listen(), queues: await view.queues(), roles } };
  };
}

const LOAD_QUEUES: QueueName[] = ['incoming', 'active', 'outgoing', 'deferred', 'hold', 'corrupt'];

/** Entries per queue of the node's spool (mail in flight belongs to the node that accepted it). */
export async function spoolQueueSizes(spool: Spool): Promise<Record<string, number>> {
  return Object.fromEntries(await Promise.all(LOAD_QUEUES.map(async (q) => [q, (await spool.list(q)).length] as const)));
}

/**
 * The heartbeat of a node whose store is PostgreSQL (keystore.postgres); null on a single
 * gateway. Its own one-connection pool, so a busy store never delays it nor it the store.
 */
export async function startClusterHeartbeat(config: Config, log: Logger, facts: () => Promise<NodeFacts>): Promise<{ stop: () => Promise<void> } | null> {
  const login = config.keystore.postgres;
  if (!login) return null;
  const sql = await openPostgres(login, { schema: 'keystore', pool: 1, applicationName: `postern ${config.cluster.node} heartbeat`, onIdleError: () => undefined });
  const hb = new Heartbeat({ sql, node: config.cluster.node, intervalMs: config.cluster.heartbeat, log, facts });
  hb.start();
  return {
    stop: async () => {
      await hb.stop();
      await sql.close();
    },
  };
}
