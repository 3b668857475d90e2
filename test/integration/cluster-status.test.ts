/**
 * The cluster's heartbeat and `postern cluster status` against a real PostgreSQL server: two
 * nodes beating are up; a node stopped cleanly is gone at once; rows of a node killed a while ago
 * (seen ten heartbeats back) and long ago read late and gone. While the database is down the
 * heartbeat fails quietly (one warning per outage, one line when it is back) and the status
 * command exits 1 naming the database without its password. A gateway on SQLite is no cluster.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/index.js';
import { Heartbeat, supervisorFacts } from '../../src/cluster/heartbeat.js';
import { nodeState, statusTable, nodeStatuses } from '../../src/cluster/status.js';
import { listClusterNodes, writeClusterNode } from '../../src/keystore/cluster-nodes.js';
import { migratePostgres } from '../../src/keystore/sql/migrate-pg.js';
import { PostgresSql } from '../../src/keystore/sql/postgres.js';
import { policyHash } from '../../src/policy/index.js';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig } from '../helpers/gateway.js';
import { pgMigrationsFor, realPgSchemas } from '../helpers/pg-schema-derived.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

interface Logged {
  level: 'warn' | 'info';
  event: unknown;
}

describe('cluster heartbeat and postern cluster status', () => {
  let server: Postgres;
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: string;
  let url: string;
  const opened: PostgresSql[] = [];
  const env = { CLUSTER_PG_PW: '' };

  const sqlFor = () => {
    const s = new PostgresSql({ url, password: server.password, pool: 1, schema: 'keystore', applicationName: 'cluster-test', connectTimeoutMs: 2000 });
    opened.push(s);
    return s;
  };
  const logger = (into: Logged[]) => ({
    warn: (o: { event?: unknown }) => void into.push({ level: 'warn', event: o.event }),
    info: (o: { event?: unknown }) => void into.push({ level: 'info', event: o.event }),
  });
  const facts = (n: number) => async () => ({ policy: `${n}`.repeat(64), detail: { pid: 1000 + n } });
  const cli = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    process.env.CLUSTER_PG_PW = env.CLUSTER_PG_PW;
    try {
      const code = await runCli(args, 'postern', { out: (l) => out.push(l), err: (l) => err.push(l) });
      return { code, out: out.join('\n'), err: err.join('\n') };
    } finally {
      delete process.env.CLUSTER_PG_PW;
    }
  };

  beforeAll(async () => {
    server = await startPostgres();
    env.CLUSTER_PG_PW = server.password;
    url = await server.createDatabase();
    const setup = sqlFor();
    await migratePostgres(setup, pgMigrationsFor('keystore'), 'keystore');
    ({ dir, cleanup } = await tempDir('postern-cluster-'));
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
    config = join(dir, 'postern.yaml');
    await writeFile(
      config,
      `hostname: mx1.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\n` +
        `keystore: { postgres: { url: "${url}", password_env: CLUSTER_PG_PW } }\ncluster: { node: mx1, heartbeat: 2s }\n`,
    );
  });
  afterAll(async () => {
    for (const s of opened) await s.close().catch(() => undefined);
    await server?.stop();
    await cleanup?.();
  });

  it('lists two beating nodes as up, a cleanly stopped one as gone, and killed ones late or gone by their last beat', async () => {
    const a = new Heartbeat({ sql: sqlFor(), node: 'mx1', intervalMs: 2000, log: logger([]), facts: facts(1) });
    const b = new Heartbeat({ sql: sqlFor(), node: 'mx2', intervalMs: 2000, log: logger([]), facts: facts(2), version: '9.9.9' });
    expect(await a.beat()).toBe(true);
    expect(await b.beat()).toBe(true);
    let r = await cli('cluster', 'status', '--json', '-c', config);
    expect(r.code, r.err).toBe(0);
    let nodes = JSON.parse(r.out) as { name: string; state: string; self: boolean; version: string; policy: string; detail: Record<string, unknown> }[];
    expect(nodes.map((n) => [n.name, n.state, n.self])).toEqual([['mx1', 'up', true], ['mx2', 'up', false]]);
    expect(nodes[1]).toMatchObject({ version: '9.9.9', policy: '2'.repeat(64), detail: { pid: 1002, heartbeat: 2000 } });

    await b.stop();
    // Killed nodes write nothing more: their rows as a kill left them, 10 and 100 heartbeats ago.
    const now = Date.now();
    const killed = (name: string, beatsAgo: number) =>
      writeClusterNode(opened[0]!, { name, version: '1.0.0', started: new Date(now - 3_600_000), seen: new Date(now - beatsAgo * 2000), policy: null, detail: { heartbeat: 2000 } });
    await killed('mx3', 10);
    await killed('mx4', 100);
    r = await cli('cluster', 'status', '--json', '-c', config);
    nodes = JSON.parse(r.out);
    expect(nodes.map((n) => [n.name, n.state])).toEqual([['mx1', 'up'], ['mx2', 'gone'], ['mx3', 'late'], ['mx4', 'gone']]);

    r = await cli('cluster', 'status', '-c', config);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(/^NODE\s+VERSION\s+POLICY\s+SEEN\s+STATE$/);
    expect(lines[1]).toMatch(/^mx1 \*\s+\S+\s+111111111111\s+\d+s ago\s+up$/);
    expect(lines[3]).toMatch(/^mx3\s+1\.0\.0\s+-\s+\d+s ago\s+late$/);
  });

  it('survives a database outage quietly: one warning, one line when back; status exits 1 naming the database without its password', async () => {
    const log: Logged[] = [];
    const hb = new Heartbeat({ sql: sqlFor(), node: 'mx5', intervalMs: 2000, log: logger(log), facts: facts(5) });
    expect(await hb.beat()).toBe(true);
    await server.halt();
    try {
      expect(await hb.beat()).toBe(false);
      expect(await hb.beat()).toBe(false);
      const r = await cli('cluster', 'status', '-c', config);
      expect(r.code).toBe(1);
      expect(r.err).toContain(url);
      expect(r.err).not.toContain(server.password);
    } finally {
      await server.resume();
    }
    expect(await hb.beat()).toBe(true);
    expect(log).toEqual([
      { level: 'warn', event: 'supervisor.heartbeat_failed' },
      { level: 'info', event: 'supervisor.heartbeat_resumed' },
    ]);
  });

  it('says what a node runs: the policy in force, pid, listeners, queues and roles up', async () => {
    const f = await supervisorFacts({
      policy: () => policyHash('rules: []\n'),
      roles: () => [{ role: 'worker', running: true }, { role: 'worker', running: true }, { role: 'smtpd', running: true }, { role: 'relay', running: false }],
      queues: async () => ({ incoming: 3, deferred: 1 }),
      listen: () => ['127.0.0.1:2525'],
    })();
    expect(f.policy).toBe(policyHash('rules: []\n'));
    expect(f.detail).toEqual({ pid: process.pid, listen: ['127.0.0.1:2525'], queues: { incoming: 3, deferred: 1 }, roles: { worker: 2, smtpd: 1 } });
  });

  it('judges a node by its own heartbeat interval, and escapes names in the table', () => {
    const seen = new Date(0);
    const node = (detail: Record<string, unknown>) => ({ name: 'mx\u001b[31m', version: '1', started: seen, seen, policy: null, detail });
    expect(nodeState(node({ heartbeat: 60_000 }), new Date(150_000), 10_000)).toBe('up');
    expect(nodeState(node({}), new Date(150_000), 10_000)).toBe('late');
    expect(nodeState(node({}), new Date(301_000), 10_000)).toBe('gone');
    const [line] = statusTable(nodeStatuses([node({})], { now: new Date(5000), self: 'x', intervalMs: 10_000 })).slice(1);
    expect(line).toMatch(/^mx\\u001b\[31m\s/);
  });

  // The gateway migrates its PostgreSQL schema with the real migrations (schema-pg.ts), which the
  // derived test schema stands in for elsewhere in this file: until they exist, a gateway cannot
  // start on PostgreSQL at all, so this runs from the moment they land.
  it.runIf(realPgSchemas)('postern start on a cluster node beats with its roles, listeners and queues, and says when it stopped', async () => {
    const nodeDir = join(dir, 'node');
    await mkdir(nodeDir);
    const port = await freePort();
    const file = await writeGatewayConfig(nodeDir, port, `keystore: { postgres: { url: "${url}", password_env: CLUSTER_PG_PW } }\ncluster: { node: mxg, heartbeat: 1s }\n`);
    // A cluster node is ready later than a single gateway (its roles reach the database first).
    const gw = await startGateway(file, { env: { ...process.env, CLUSTER_PG_PW: server.password }, readyTimeoutMs: 60_000 });
    const reader = sqlFor();
    try {
      // The first beat goes out once the roles are started; the one that sees smtpd up follows.
      let mine;
      for (let i = 0; i < 100; i++) {
        mine = (await listClusterNodes(reader)).find((n) => n.name === 'mxg');
        if ((mine?.detail.roles as Record<string, number> | undefined)?.smtpd) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(mine?.detail).toMatchObject({ listen: [`127.0.0.1:${port}`], roles: { smtpd: 1, worker: 2, relay: 1 }, queues: { incoming: 0, deferred: 0, hold: 0 }, heartbeat: 1000 });
      expect(mine?.detail.pid).toBe(gw.proc.pid);
      expect(mine?.policy).toBe(policyHash('rules: []\n'));
    } finally {
      expect((await gw.stop()).code).toBe(0);
    }
    const last = (await listClusterNodes(reader)).find((n) => n.name === 'mxg');
    expect(last?.detail.stopped).toBe(true);
    expect(gw.logs.filter((l) => l.event === 'supervisor.heartbeat_failed')).toEqual([]);
  });

  it('says so when no node has started on the database yet', async () => {
    const empty = await server.createDatabase();
    const file = join(dir, 'fresh.yaml');
    await writeFile(file, `hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\nkeystore: { postgres: { url: "${empty}", password_env: CLUSTER_PG_PW } }\n`);
    const r = await cli('cluster', 'status', '-c', file);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`no node has started on ${empty} yet (it has no keystore schema)`);
  });

  it('says a gateway on SQLite is not a cluster', async () => {
    const single = join(dir, 'single.yaml');
    await writeFile(single, 'hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\n');
    const r = await cli('cluster', 'status', '-c', single);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`not a cluster: this gateway keeps its store in SQLite (${join(dir, 'postern.db')})`);
  });
});
