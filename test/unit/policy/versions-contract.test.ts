/**
 * The kept policy versions behind one interface (PolicyVersionStore): a single gateway's files and
 * a cluster's table, on SQLite and on a real PostgreSQL, pass the same tests — newest first, the
 * limit, order by time when a time given is older, unknown and malformed ids. Then what only the
 * table does: keep only if the newest is still the version an edit started from (one of two
 * nodes pushing at once wins), seed only an empty cluster, and tell the other nodes at COMMIT.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Sql } from '../../../src/keystore/sql/types.js';
import { DbPolicyVersions, FilePolicyVersions, policyHash, type PolicyVersionStore } from '../../../src/policy/index.js';
import { tempDir } from '../../helpers/config.js';
import { sqliteKeystoreSql, usePolicyCluster } from '../../helpers/cluster-policy-db.js';

const policy = (n: number) => `rules:\n  - name: rule ${n}\n    do: [sign]\n`;
const BACKENDS = ['files', 'sqlite', 'postgres'] as const;
type Backend = (typeof BACKENDS)[number];
const cluster = usePolicyCluster();

/** Open stores of `backend`, closed after each test. */
function stores(backend: Backend) {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return async (limit?: number): Promise<{ store: PolicyVersionStore; sql?: Sql; url?: string }> => {
    if (backend === 'files') {
      const tmp = await tempDir('postern-policy-versions-');
      cleanups.push(tmp.cleanup);
      return { store: new FilePolicyVersions(join(tmp.dir, 'v'), limit) };
    }
    if (backend === 'sqlite') {
      const { sql, cleanup } = await sqliteKeystoreSql();
      cleanups.push(cleanup);
      return { store: new DbPolicyVersions(sql, limit), sql };
    }
    const { url } = await cluster.database();
    const sql = await cluster.nodeSql(url);
    cleanups.push(() => sql.close());
    return { store: new DbPolicyVersions(sql, limit), sql, url };
  };
}

describe.each(BACKENDS)('policy versions (%s)', (backend) => {
  const open = stores(backend);

  it('keeps the newest versions up to the limit, newest first, and not the same text twice in a row', async () => {
    const { store } = await open(3);
    expect(await store.list()).toEqual([]);
    const t0 = Date.parse('2026-12-03T10:00:00Z');
    for (let i = 0; i < 5; i++) await store.keep(policy(i), `admin${i}`, new Date(t0 + i * 1000));
    expect(await store.keep(policy(4), 'someone else')).toMatchObject({ by: 'admin4' });
    const list = await store.list();
    expect(list.map((v) => [v.by, v.hash, v.size, v.time.toISOString()])).toEqual([
      ['admin4', policyHash(policy(4)), policy(4).length, '2026-12-03T10:00:04.000Z'],
      ['admin3', policyHash(policy(3)), policy(3).length, '2026-12-03T10:00:03.000Z'],
      ['admin2', policyHash(policy(2)), policy(2).length, '2026-12-03T10:00:02.000Z'],
    ]);
    expect(list[0]!.id).toBe(`20261203T100004000Z-${policyHash(policy(4)).slice(0, 12)}`);
    expect(await store.read(list[2]!.id)).toEqual({ version: list[2], text: policy(2) });
  });

  it('orders a version kept with an older time after the newest; a null author stays null', async () => {
    const { store } = await open();
    const a = await store.keep(policy(1), 'alice', new Date('2026-12-03T10:00:00Z'));
    const b = await store.keep(policy(2), null, new Date('2026-01-01T00:00:00Z'));
    expect(b.time.getTime()).toBe(a.time.getTime() + 1);
    expect((await store.list()).map((v) => [v.id, v.by])).toEqual([
      [b.id, null],
      [a.id, 'alice'],
    ]);
  });

  it('answers null for an id it does not have, and for one that is no id at all', async () => {
    const { store } = await open();
    const v = await store.keep(policy(1), 'alice');
    expect(await store.read(v.id.replace(/.$/, v.id.endsWith('0') ? '1' : '0'))).toBeNull();
    expect(await store.read('../../etc/passwd')).toBeNull();
    expect(await store.read(`${v.id}' OR '1'='1`)).toBeNull();
  });
});

describe.each(['sqlite', 'postgres'] as const)('the cluster policy table (%s)', (backend) => {
  const open = stores(backend);
  const generation = async (sql: Sql) => Number((await sql.get<{ generation: number }>("SELECT generation FROM store_changes WHERE topic = 'policy'"))!.generation);

  it('keeps a text only while the newest is the version it was edited from, and counts each change', async () => {
    const { store, sql } = await open();
    const db = store as DbPolicyVersions;
    expect(await db.newest()).toBeNull();
    const seeded = await db.keepIf(policy(0), null, { base: null, onlyIfEmpty: true });
    expect(seeded).toMatchObject({ outcome: 'kept', before: null, version: { by: null, hash: policyHash(policy(0)) } });
    // A second seed (another node starting with its own file) does not replace the first.
    expect(await db.keepIf(policy(9), null, { base: null, onlyIfEmpty: true })).toEqual({ outcome: 'stale', current: policyHash(policy(0)) });
    const g0 = await generation(sql!);
    const pushed = await db.keepIf(policy(1), 'alice', { base: policyHash(policy(0)) });
    expect(pushed).toMatchObject({ outcome: 'kept', before: { text: policy(0) }, version: { by: 'alice' } });
    expect(await db.keepIf(policy(2), 'bob', { base: policyHash(policy(0)) })).toEqual({ outcome: 'stale', current: policyHash(policy(1)) });
    expect(await db.keepIf(policy(1), 'carol', { base: policyHash(policy(1)) })).toMatchObject({ outcome: 'unchanged', version: { by: 'alice' } });
    expect(await generation(sql!)).toBe(g0 + 1);
    expect(await db.newest()).toEqual({ version: (await db.list())[0], text: policy(1) });
    expect(await db.newestHash()).toEqual({ id: (await db.list())[0]!.id, hash: policyHash(policy(1)) });
    expect(await db.knows(policyHash(policy(0)))).toBe(true);
    expect(await db.knows(policyHash(policy(2)))).toBe(false);
  });

  if (backend === 'postgres') {
    it('lets one of two nodes pushing from the same version win, and tells the other nodes when it commits', async () => {
      const { store, url } = await open();
      const a = store as DbPolicyVersions;
      await a.keep(policy(0), null);
      const b = new DbPolicyVersions(await cluster.nodeSql(url!));
      const c = await cluster.nodeSql(url!);
      try {
        const heard: string[] = [];
        const unlisten = await c.listen('postern_store_changes', (topic) => heard.push(topic));
        const base = policyHash(policy(0));
        const results = await Promise.all([a.keepIf(policy(1), 'alice', { base }), b.keepIf(policy(2), 'bob', { base })]);
        expect(results.map((r) => r.outcome).sort()).toEqual(['kept', 'stale']);
        const winner = results.find((r) => r.outcome === 'kept')!;
        expect((await b.list())[0]).toEqual(winner.outcome === 'kept' && winner.version);
        for (let i = 0; i < 100 && heard.length < 1; i++) await new Promise((r) => setTimeout(r, 20));
        expect(heard).toEqual(['policy']);
        await unlisten();
      } finally {
        await b.sql.close();
        await c.close();
      }
    });
  }
});
