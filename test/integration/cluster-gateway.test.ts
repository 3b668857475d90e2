/**
 * Two gateway nodes on one machine (issue 19, "Done when"): own ports, own data_dir and spool, one
 * PostgreSQL database (a real server, test/helpers/postgres.ts) and one KEK. Each takes mail and
 * delivers it; the database password reaches the roles through the environment only — no log
 * line, no command line holds it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_PASSWORD_ENV, startCluster, type Cluster } from '../helpers/cluster.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { maildirTokens, sendTokens, waitUntil } from '../helpers/send.js';

describe('two gateway nodes on one PostgreSQL database', () => {
  let pg: Postgres;
  let cluster: Cluster;
  beforeAll(async () => {
    pg = await startPostgres();
    cluster = await startCluster(pg);
  }, 180_000);
  afterAll(async () => {
    await cluster?.stop();
    await pg?.stop();
  });

  it('each node takes mail on its own port and delivers it from its own spool', async () => {
    const [a, b] = cluster.nodes as [Cluster['nodes'][0], Cluster['nodes'][0]];
    expect(a.port).not.toBe(b.port);
    expect((await sendTokens(a.port, ['via-a-1', 'via-a-2'])).failed).toEqual([]);
    expect((await sendTokens(b.port, ['via-b-1'])).failed).toEqual([]);
    await waitUntil(async () => (await maildirTokens(join(a.dir, 'maildir'))).size === 2 && (await maildirTokens(join(b.dir, 'maildir'))).size === 1, 60_000, 'deliveries on both nodes');
    expect([...(await maildirTokens(join(a.dir, 'maildir'))).keys()].sort()).toEqual(['via-a-1', 'via-a-2']);
    expect([...(await maildirTokens(join(b.dir, 'maildir'))).keys()]).toEqual(['via-b-1']);
  });

  it('keeps the database password out of logs and command lines, and out of the roles that never open the store', async () => {
    const proc = async (pid: number, what: string) => readFile(`/proc/${pid}/${what}`, 'latin1');
    for (const n of cluster.nodes) {
      const gw = n.gateway!;
      expect(JSON.stringify(gw.logs)).not.toContain(pg.password);
      for (const role of ['worker', 'smtpd', 'relay']) {
        const pids = gw.rolePids(role);
        expect(pids.length, role).toBeGreaterThan(0);
        for (const pid of pids) expect(await proc(pid, 'cmdline')).not.toContain(pg.password);
      }
      // The oracle: the workers have it (they open the store); smtpd and the relay do not.
      const live = async (role: string) => (await Promise.all(gw.rolePids(role).map((pid) => proc(pid, 'environ').catch(() => null)))).filter((e): e is string => e !== null);
      expect((await live('worker')).some((e) => e.includes(`${PG_PASSWORD_ENV}=${pg.password}`))).toBe(true);
      for (const role of ['smtpd', 'relay']) for (const e of await live(role)) expect(e).not.toContain(pg.password);
    }
  });
});
