/**
 * A running gateway in a cluster follows the cluster's policy (issue 19): node B runs (`postern
 * start`); `postern policy push` is run with node A's config (another folder, the same database and
 * KEK); B's supervisor writes the pushed version to its policy file and the workers reload it at
 * once — mail B accepts afterwards follows the new rule — and its file watcher does not load the
 * same policy a second time. Mail between two running nodes is test/integration/cluster-*.test.ts's.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCluster, type Cluster, type ClusterNode } from '../helpers/cluster.js';
import { usePolicyCluster } from '../helpers/cluster-policy-db.js';
import { sendTokens, waitUntil } from '../helpers/send.js';

const TAGGED = `rules:
  - name: tag inbound
    when: { direction: inbound }
    do: [{ add_header: { X-Policy-Version: pushed } }]
`;

describe('a cluster node following a policy pushed elsewhere', () => {
  const policyCluster = usePolicyCluster();
  let cluster: Cluster;
  let a: ClusterNode;
  let b: ClusterNode;

  const delivered = async (token: string) => {
    const box = join(b.dir, 'maildir', 'new');
    let found = '';
    await waitUntil(
      async () => {
        for (const n of await readdir(box).catch(() => [])) {
          const text = await readFile(join(box, n), 'latin1');
          if (text.includes(token)) found = text;
        }
        return found !== '';
      },
      60_000,
      `delivery of ${token}`,
    );
    return found;
  };

  beforeAll(async () => {
    cluster = await makeCluster(await policyCluster.postgres());
    [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
    await b.start();
  }, 240_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('seeds the empty cluster with its file, then follows a push from node A and reloads it once', async () => {
    const gw = b.gateway!;
    await gw.waitFor((l) => l.event === 'policy.cluster_seeded');
    expect((await sendTokens(b.port, ['before-push'])).accepted).toEqual(['before-push']);
    expect(await delivered('before-push')).not.toMatch(/^X-Policy-Version:/m);

    const reloadsBefore = gw.logs.filter((l) => l.event === 'supervisor.reloaded').length;
    const workersBefore = gw.logs.filter((l) => l.event === 'worker.reloaded').length;
    const file = join(a.dir, 'pushed.yaml');
    await writeFile(file, TAGGED);
    const pushed = await a.cli(['policy', 'push', file, '--comment', 'tag inbound mail']);
    expect(pushed.code, pushed.stderr).toBe(0);
    const id = pushed.stdout.trim().split('\n').at(-1);

    const followed = await gw.waitFor((l) => l.event === 'policy.cluster_followed');
    expect(followed).toMatchObject({ version: id, role: 'supervisor' });
    expect(await readFile(join(b.dir, 'policy.yaml'), 'utf8')).toBe(TAGGED);
    await waitUntil(async () => gw.logs.filter((l) => l.event === 'worker.reloaded').length >= workersBefore + 2, 60_000, 'both workers reloaded');
    expect((await sendTokens(b.port, ['after-push'])).accepted).toEqual(['after-push']);
    expect(await delivered('after-push')).toMatch(/^X-Policy-Version: pushed\r?$/m);
    // The watcher saw the file change too, after its pause: the policy was loaded already.
    await new Promise((r) => setTimeout(r, 1500));
    expect(gw.logs.filter((l) => l.event === 'supervisor.reloaded').length).toBe(reloadsBefore + 1);
  }, 180_000);
});
