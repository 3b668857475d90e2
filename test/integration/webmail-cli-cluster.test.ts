/**
 * `postern webmail` on a cluster (issue 19): two nodes' configs naming one PostgreSQL database
 * (keystore.postgres, the password in an environment variable), no gateway running. A mailbox
 * made and filled through the portal store is listed by node B's CLI, reset by node A's (the new
 * password opens the account's new key; the old mail is gone) and deleted by B's; each change is
 * in the portal's audit log, and no node made a portal.db file. A real server, the built CLI.
 *
 * Reads dist/: run `npm run build` first, as for every integration test.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PortalDb } from '../../src/keystore/portal-db.js';
import { openPortalStore } from '../../src/keystore/portal-store.js';
import { unwrapAccountKey } from '../../src/keystore/webmail-crypto.js';
import { makeCluster, PG_PASSWORD_ENV, type Cluster } from '../helpers/cluster.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { makeAccount, storeMessage } from '../helpers/webmail-store.js';

const BOB = 'bob@partner.example';

describe('postern webmail on a cluster (postgres)', () => {
  let pg: Postgres;
  let cluster: Cluster;
  let store: PortalDb;
  beforeAll(async () => {
    pg = await startPostgres();
    cluster = await makeCluster(pg);
    process.env[PG_PASSWORD_ENV] = pg.password;
    store = await openPortalStore({ data_dir: cluster.nodes[0]!.dir, keystore: { sqlite: '', postgres: { url: cluster.url, password_env: PG_PASSWORD_ENV, pool: 2 } }, cluster: { node: 'test' } }, { role: 'worker' });
  });
  afterAll(async () => {
    await store?.close();
    await cluster?.stop();
    await pg?.stop();
  });

  it('node B lists the mailbox made through the store, A resets it, B deletes it; all audited, no portal.db anywhere', async () => {
    const [a, b] = cluster.nodes as [Cluster['nodes'][0], Cluster['nodes'][0]];
    const account = await makeAccount(store, BOB, 'first password 1');
    await storeMessage(store, account, Buffer.from('Subject: one\r\n\r\nbody one\r\n'), { from: 'alice@example.com', subject: 'one' });

    const listed = await b.cli(['webmail', 'list', '--json']);
    expect(listed).toMatchObject({ code: 0 });
    expect(listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { address: string; messages: number })).toEqual([expect.objectContaining({ address: BOB, messages: 1 })]);

    const reset = await a.cli(['webmail', 'reset', BOB]);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stderr).toMatch(/1 message removed/);
    const renewed = (await store.account(BOB))!;
    expect(renewed.generation).toBe(2);
    expect(await unwrapAccountKey(reset.stdout.trim(), renewed.wrapped)).not.toBeNull();
    expect(await store.listMessages(renewed.id)).toEqual([]);

    expect(await b.cli(['webmail', 'delete', BOB])).toMatchObject({ code: 0 });
    expect(await store.account(BOB)).toBeNull();
    expect((await store.auditRecords()).map((r) => r.action)).toEqual(['webmail.delete', 'webmail.reset']);
    for (const n of cluster.nodes) expect(existsSync(join(n.dir, 'portal.db')), n.name).toBe(false);
  });
});
