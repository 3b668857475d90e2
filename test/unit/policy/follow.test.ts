/**
 * A cluster's policy followed by every node (issue 19), on a real PostgreSQL: two nodes, each with
 * its own policy file and data_dir, one database. A push on node A reaches node B's file through
 * the notification (B's safety-net check is a minute away); the first node seeds an empty cluster
 * with its file; a text that is none of the cluster's versions is replaced but kept on the node; a
 * version that does not validate on B (its groups file exists only on A) is refused there with the
 * reason; an invalid push is refused with file and line; with the database stopped B keeps its
 * file and says so once, and follows again when the database is back.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DbPolicyVersions, FilePolicyVersions, policyHash, PolicyFollower, pushPolicy, type PolicyVersion } from '../../../src/policy/index.js';
import { tempDir } from '../../helpers/config.js';
import { usePolicyCluster } from '../../helpers/cluster-policy-db.js';

const policy = (n: number) => `rules:\n  - name: rule ${n}\n    do: [sign]\n`;

interface Node {
  dir: string;
  file: string;
  versions: DbPolicyVersions;
  local: FilePolicyVersions;
  follower: PolicyFollower;
  logs: Record<string, unknown>[];
  followed: PolicyVersion[];
}

async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`still waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('the cluster policy followed by every node', () => {
  const cluster = usePolicyCluster();
  const cleanups: (() => Promise<void>)[] = [];
  let url: string;
  beforeEach(async () => {
    ({ url } = await cluster.database());
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A node with `text` as its policy file; its follower not started yet. */
  async function node(text: string, intervalMs = 60_000): Promise<Node> {
    const tmp = await tempDir('postern-policy-node-');
    cleanups.push(tmp.cleanup);
    const file = join(tmp.dir, 'policy.yaml');
    await writeFile(file, text);
    const sql = await cluster.nodeSql(url);
    const logs: Record<string, unknown>[] = [];
    const followed: PolicyVersion[] = [];
    const record = (level: string) => (obj: object, msg?: string) => logs.push({ level, ...obj, msg });
    const versions = new DbPolicyVersions(sql);
    const local = new FilePolicyVersions(join(tmp.dir, 'policy-versions'));
    const follower = new PolicyFollower({ file, versions, local, intervalMs, log: { info: record('info'), warn: record('warn'), error: record('error') }, onFollowed: (v) => followed.push(v) });
    cleanups.push(async () => {
      await follower.stop();
      await sql.close();
    });
    return { dir: tmp.dir, file, versions, local, follower, logs, followed };
  }
  const events = (n: Node, code: string) => n.logs.filter((l) => l.event === code);

  it('seeds an empty cluster with the first node’s file; a node joining follows it and keeps its own text', async () => {
    const a = await node(policy(1));
    expect(await a.follower.start()).toMatchObject({ outcome: 'seeded', version: { by: null, hash: policyHash(policy(1)) } });
    const b = await node(policy(2));
    const r = await b.follower.start();
    expect(r).toMatchObject({ outcome: 'followed', version: { hash: policyHash(policy(1)) } });
    expect(await readFile(b.file, 'utf8')).toBe(policy(1));
    expect(b.followed.map((v) => v.hash)).toEqual([policyHash(policy(1))]);
    // B's own text was none of the cluster's: kept on B, and B says so.
    const kept = await b.local.list();
    expect(kept.map((v) => v.hash)).toEqual([policyHash(policy(2))]);
    expect(events(b, 'policy.local_edit_replaced')).toEqual([expect.objectContaining({ level: 'warn', kept: kept[0]!.id })]);
    // The cluster still has one version: a joining node never pushes its file.
    expect((await a.versions.list()).map((v) => v.hash)).toEqual([policyHash(policy(1))]);
  });

  it('follows a push on node A on node B through the notification', async () => {
    const a = await node(policy(1));
    const b = await node(policy(1));
    await a.follower.start();
    expect(await b.follower.start()).toMatchObject({ outcome: 'current' });
    const pushed = await pushPolicy(a.file, a.versions, { text: policy(3), base: policyHash(policy(1)), by: 'alice' });
    expect(pushed).toMatchObject({ outcome: 'activated', before: policy(1), version: { by: 'alice' } });
    // The safety-net check is a minute away: only the NOTIFY can bring it this soon.
    // The file is written before the follower reports it: wait for both.
    await until('node B to follow', async () => (await readFile(b.file, 'utf8')) === policy(3) && b.followed.length > 0 && events(b, 'policy.cluster_followed').length > 0);
    await until('node A to follow', async () => (await readFile(a.file, 'utf8')) === policy(3));
    expect(b.followed.map((v) => [v.by, v.hash])).toEqual([['alice', policyHash(policy(3))]]);
    expect(events(b, 'policy.cluster_followed')).toEqual([expect.objectContaining({ level: 'info', by: 'alice', version: pushed.outcome === 'activated' && pushed.version.id })]);
    // Followed from the cluster: no local copy of a text the cluster had.
    expect(await b.local.list()).toEqual([]);
  });

  it('refuses an invalid push with the file and line, and stores nothing', async () => {
    const a = await node(policy(1));
    await a.follower.start();
    const r = await pushPolicy(a.file, a.versions, { text: 'rules:\n  - name: broken\n    do: [shout]\n', base: null, by: 'alice' });
    expect(r.outcome).toBe('invalid');
    expect(r.outcome === 'invalid' && r.problems).toEqual([expect.objectContaining({ file: a.file, line: 3 })]);
    expect((await a.versions.list()).map((v) => v.hash)).toEqual([policyHash(policy(1))]);
  });

  it('keeps its file on a node where the newest version does not validate, says why once, and follows the next one', async () => {
    const a = await node(policy(1));
    const b = await node(policy(1));
    await writeFile(join(a.dir, 'groups.yaml'), 'groups:\n  Board: [ceo@example.com]\n');
    await a.follower.start();
    await b.follower.start();
    const grouped = `groups: groups.yaml\n${policy(4)}`;
    expect(await pushPolicy(a.file, a.versions, { text: grouped, base: null, by: 'alice' })).toMatchObject({ outcome: 'activated' });
    await until('node B to refuse it', () => events(b, 'policy.cluster_version_refused').length > 0);
    await until('node A to follow', async () => (await readFile(a.file, 'utf8')) === grouped);
    b.follower.check();
    await b.follower.settled();
    expect(events(b, 'policy.cluster_version_refused')).toEqual([expect.objectContaining({ level: 'error', by: 'alice', reason: expect.stringMatching(/groups\.yaml/) })]);
    expect(await readFile(b.file, 'utf8')).toBe(policy(1));
    expect(b.followed).toEqual([]);
    await pushPolicy(a.file, a.versions, { text: policy(5), base: null, by: 'alice' });
    await until('node B to follow the next version', async () => (await readFile(b.file, 'utf8')) === policy(5));
  });

  it('refuses a version from the database whose groups file is outside the policy file’s folder (root would read any file)', async () => {
    const a = await node(policy(1));
    const b = await node(policy(1));
    await a.follower.start();
    await b.follower.start();
    // Written straight into the table, as anyone with the database's login could.
    const outside = `groups: /etc/passwd\n${policy(7)}`;
    await a.versions.keep(outside, 'mallory');
    await until('node B to refuse it', () => events(b, 'policy.cluster_version_refused').length > 0);
    expect(events(b, 'policy.cluster_version_refused')).toEqual([expect.objectContaining({ by: 'mallory', reason: expect.stringMatching(/groups file must be in the policy file's folder/) })]);
    expect(JSON.stringify(events(b, 'policy.cluster_version_refused'))).not.toMatch(/root:x:0/);
    expect(await readFile(b.file, 'utf8')).toBe(policy(1));
  });

  it('replaces a hand edit of one node’s file with the cluster’s version, keeping the edit on that node', async () => {
    const a = await node(policy(1));
    await a.follower.start();
    await writeFile(a.file, policy(6));
    a.follower.check();
    await a.follower.settled();
    expect(await readFile(a.file, 'utf8')).toBe(policy(1));
    const kept = await a.local.list();
    expect(kept.map((v) => v.hash)).toEqual([policyHash(policy(6))]);
    expect((await a.local.read(kept[0]!.id))?.text).toBe(policy(6));
  });

  it('keeps running on its file while the database is stopped, says so once, and follows again when it is back', async () => {
    const pg = await cluster.postgres();
    const a = await node(policy(1), 100);
    const b = await node(policy(1), 100);
    await a.follower.start();
    await b.follower.start();
    await pg.halt();
    try {
      await until('node B to notice', () => events(b, 'policy.cluster_unreachable').length > 0);
      // Several checks later (asked for, and on its 100 ms timer): still one line, the file untouched.
      const checks = b.logs.length;
      for (let i = 0; i < 3; i++) {
        b.follower.check();
        await b.follower.settled();
      }
      await new Promise((r) => setTimeout(r, 300));
      expect(b.logs.length).toBe(checks);
      expect(events(b, 'policy.cluster_unreachable')).toEqual([expect.objectContaining({ level: 'warn', reason: expect.not.stringContaining(pg.password) })]);
      expect(await readFile(b.file, 'utf8')).toBe(policy(1));
    } finally {
      await pg.resume();
    }
    await until('node A to reach the database', async () => (await pushPolicy(a.file, a.versions, { text: policy(7), base: null, by: 'alice' }).catch(() => null)) !== null);
    await until('node B to follow again', async () => (await readFile(b.file, 'utf8')) === policy(7));
    expect(events(b, 'policy.cluster_reachable')).toHaveLength(1);
  });
});
