/**
 * A cluster's policy from the shell and the admin API (issue 19), on a real PostgreSQL: `postern
 * policy push` checks the file (problems with file and line, as `postern check`), stores it as the
 * cluster's newest version and prints its id, refuses without a cluster; `policy activate` and
 * `policy versions` use the cluster's versions; the admin API's activation pushes, writes this
 * node's file at once and reloads, refuses a stale edit, rolls back from the database, and answers
 * 503 (nothing activated) while the database is stopped.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { API_ROUTES } from '../../../src/admin/api/index.js';
import type { AdminCaller, AdminContext, ApiResult } from '../../../src/admin/routes.js';
import { runCli } from '../../../src/cli/index.js';
import { loadConfig } from '../../../src/config/index.js';
import { openKeyStoreWithPortal } from '../../../src/keystore/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { DbPolicyVersions, policyHash } from '../../../src/policy/index.js';
import { Spool } from '../../../src/spool/index.js';
import { refusal } from '../../helpers/admin-handlers.js';
import { usePolicyCluster } from '../../helpers/cluster-policy-db.js';
import { tempDir } from '../../helpers/config.js';

const PW_ENV = 'POSTERN_TEST_POLICY_PG_PASSWORD';
const policy = (n: number) => `rules:\n  - name: rule ${n}\n    do: [sign]\n`;
const caller: AdminCaller = { account: 'polly', roles: ['policy_operator'], client: '192.0.2.7', via: 'api' };

describe('a cluster policy from the shell and the admin API', () => {
  const cluster = usePolicyCluster();
  let dir: string;
  let cleanup: () => Promise<void>;
  let configFile: string;
  let policyFile: string;
  let versions: DbPolicyVersions;
  const previousPw = process.env[PW_ENV];

  beforeEach(async () => {
    const db = await cluster.database();
    process.env[PW_ENV] = db.password;
    ({ dir, cleanup } = await tempDir('postern-policy-cluster-'));
    configFile = join(dir, 'postern.yaml');
    policyFile = join(dir, 'policy.yaml');
    await writeFile(configFile, `hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\nkeystore:\n  postgres: { url: "${db.url}", password_env: ${PW_ENV} }\ncluster: { node: mx1 }\n`);
    await writeFile(policyFile, policy(1));
    versions = new DbPolicyVersions(await cluster.nodeSql(db.url));
  });
  afterEach(async () => {
    await versions.sql.close();
    await cleanup();
  });
  afterAll(() => {
    if (previousPw === undefined) delete process.env[PW_ENV];
    else process.env[PW_ENV] = previousPw;
  });

  const cli = async (...argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli([...argv, '-c', configFile], 'postern', { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out, err };
  };

  it('pushes a checked file as the newest version and prints its id; versions lists the cluster’s', async () => {
    await writeFile(join(dir, 'new.yaml'), policy(2));
    const r = await cli('policy', 'push', join(dir, 'new.yaml'), '--comment', 'ticket 42');
    expect(r.code, r.err.join('\n')).toBe(0);
    const list = await versions.list();
    // The node's file seeded the empty cluster, then the pushed text.
    expect(list.map((v) => [v.hash, v.by === null])).toEqual([
      [policyHash(policy(2)), false],
      [policyHash(policy(1)), true],
    ]);
    expect(r.out.at(-1)).toBe(list[0]!.id);
    expect(r.out[0]).toContain(`the cluster's policy version ${list[0]!.id}`);
    // The node's file is its follower's to write, not the CLI's.
    expect(await readFile(policyFile, 'utf8')).toBe(policy(1));
    const shown = await cli('policy', 'versions');
    expect(shown.out.map((l) => l.split('\t').slice(0, 3))).toEqual(list.map((v) => [v.id, v.time.toISOString(), v.by ?? "(a node's policy file)"]));
    const again = await cli('policy', 'push', join(dir, 'new.yaml'));
    expect(again.out[0]).toContain(`already is this policy (version ${list[0]!.id})`);
    // Audited with the comment, in the keystore's trail.
    const config = await loadConfig(configFile);
    const { store, portal } = await openKeyStoreWithPortal(config);
    try {
      expect(await store.auditLog('policy')).toEqual([expect.objectContaining({ action: 'policy.push', detail: `version ${list[0]!.id}; ticket 42`, before: policy(1), after: policy(2) })]);
    } finally {
      await store.close();
      portal.close();
    }
  });

  it('refuses an invalid file with file and line, a stale --hash, and a gateway that is no cluster', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'rules:\n  - name: broken\n    do: [shout]\n');
    const r = await cli('policy', 'push', bad);
    expect(r.code).toBe(1);
    expect(r.err[0]).toMatch(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3:\\d+: `));
    expect(r.err.at(-1)).toBe(`${bad}: 1 problem; nothing pushed`);
    expect(await versions.list()).toEqual([]);
    await writeFile(join(dir, 'new.yaml'), policy(2));
    const stale = await cli('policy', 'push', join(dir, 'new.yaml'), '--hash', policyHash(policy(9)));
    expect(stale.code).toBe(1);
    expect(stale.err[0]).toMatch(/^the cluster's policy changed since the version --hash names/);
    await writeFile(configFile, 'hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\n');
    const single = await cli('policy', 'push', join(dir, 'new.yaml'));
    expect(single).toMatchObject({ code: 1, err: ['push is for a cluster (keystore.postgres); use `postern policy activate` for a single gateway'] });
  });

  it('activates in the cluster from the shell too: the same version store as push', async () => {
    await writeFile(join(dir, 'new.yaml'), policy(3));
    const r = await cli('policy', 'activate', join(dir, 'new.yaml'), '--hash', policyHash(policy(1)));
    expect(r.code, r.err.join('\n')).toBe(0);
    expect((await versions.newest())?.text).toBe(policy(3));
  });

  describe('the admin API', () => {
    let ctx: AdminContext;
    let reloads: number;
    let close: () => Promise<void>;
    beforeEach(async () => {
      const config = await loadConfig(configFile);
      const { store, portal } = await openKeyStoreWithPortal(config);
      reloads = 0;
      ctx = {
        config: () => config,
        configFile,
        store,
        portal,
        spool: await Spool.open(config.data_dir),
        log: silentLogger(),
        supervisor: { status: async () => [], reload: async () => (reloads++, true) },
        policyVersions: versions,
        audit: async () => undefined,
      };
      close = async () => {
        await store.close();
        portal.close();
      };
    });
    afterEach(() => close());
    const call = async (method: string, url: string, req: { params?: Record<string, string>; body?: unknown } = {}) => {
      const route = API_ROUTES.find((r) => r.method === method && r.url === url)!;
      return (await route.handler({ params: req.params ?? {}, query: {}, body: req.body, caller }, ctx)) as ApiResult & { json?: any };
    };

    it('pushes, writes this node’s file at once and reloads; refuses a stale edit; rolls back from the database', async () => {
      const r = await call('POST', '/policy/activate', { body: { text: policy(4), hash: policyHash(policy(1)) } });
      expect(r.json).toMatchObject({ outcome: 'activated', reloaded: true, version: { by: 'polly', hash: policyHash(policy(4)) } });
      expect(reloads).toBe(1);
      expect(await readFile(policyFile, 'utf8')).toBe(policy(4));
      expect((await versions.newest())?.version).toMatchObject({ by: 'polly', id: r.json.version.id });
      const stale = await refusal(call('POST', '/policy/activate', { body: { text: policy(5), hash: policyHash(policy(1)) } }));
      expect(stale.status).toBe(409);
      const listed = (await call('GET', '/policy/versions')).json.versions;
      expect(listed.map((v: { by: string | null; active: boolean }) => [v.by, v.active])).toEqual([
        ['polly', true],
        [null, false],
      ]);
      const back = await call('POST', '/policy/versions/:id/activate', { params: { id: listed[1].id }, body: {} });
      expect(back.json).toMatchObject({ outcome: 'activated', reloaded: true });
      expect(await readFile(policyFile, 'utf8')).toBe(policy(1));
      expect((await versions.newest())?.version).toMatchObject({ by: 'polly', hash: policyHash(policy(1)) });
    });

    it('answers 503 and activates nothing while the database is stopped', async () => {
      const pg = await cluster.postgres();
      await pg.halt();
      try {
        const err = await refusal(call('POST', '/policy/activate', { body: { text: policy(6), hash: policyHash(policy(1)) } }));
        expect(err.status).toBe(503);
        expect(err.message).not.toContain(pg.password);
        expect(await readFile(policyFile, 'utf8')).toBe(policy(1));
        expect(reloads).toBe(0);
      } finally {
        await pg.resume();
      }
    });
  });
});
