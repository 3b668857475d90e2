/**
 * A running gateway in a cluster follows the cluster's policy (issue 19): `postern start` on node
 * B; `postern policy push` run with node A's config (another folder, the same database); B's
 * supervisor writes the pushed version to its policy file and the workers reload it at once — mail
 * B accepts afterwards follows the new rule — and its file watcher does not load the same policy a
 * second time. The two-gateway mail tests of a cluster are test/integration's cluster suites.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usePolicyCluster } from '../helpers/cluster-policy-db.js';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { sendTokens, waitUntil } from '../helpers/send.js';

const PW_ENV = 'POSTERN_TEST_POLICY_PG_PASSWORD';
const TAGGED = `rules:
  - name: tag inbound
    when: { direction: inbound }
    do: [{ add_header: { X-Policy-Version: pushed } }]
`;

describe('a cluster node following a policy pushed elsewhere', () => {
  const policyCluster = usePolicyCluster();
  const cleanups: (() => Promise<void>)[] = [];
  let gw: Gateway;
  let port: number;
  let dirA: string;
  let dirB: string;
  let configA: string;
  const env: NodeJS.ProcessEnv = { ...process.env };

  const delivered = async (token: string) => {
    const box = join(dirB, 'maildir', 'new');
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
    const db = await policyCluster.database();
    env[PW_ENV] = db.password;
    const cluster = (node: string) => `keystore:\n  postgres: { url: "${db.url}", password_env: ${PW_ENV} }\ncluster: { node: ${node}, heartbeat: 60s }\n`;
    const a = await tempDir('postern-cluster-a-');
    const b = await tempDir('postern-cluster-b-');
    cleanups.push(a.cleanup, b.cleanup);
    dirA = a.dir;
    dirB = b.dir;
    configA = await writeGatewayConfig(a.dir, await freePort(), cluster('mx-a'));
    port = await freePort();
    const configB = await writeGatewayConfig(b.dir, port, cluster('mx-b'));
    // The supervisor reads the database password from its environment, as an admin exports it.
    process.env[PW_ENV] = db.password;
    gw = await startGateway(configB);
  }, 240_000);
  afterAll(async () => {
    await gw?.stop();
    delete process.env[PW_ENV];
    for (const c of cleanups) await c();
  });

  it('seeds the empty cluster with its file, then follows a push from node A and reloads it once', async () => {
    const seeded = await gw.waitFor((l) => l.event === 'policy.cluster_seeded');
    expect(seeded).toMatchObject({ role: 'supervisor', level: expect.anything() });
    expect((await sendTokens(port, ['before-push'])).accepted).toEqual(['before-push']);
    expect(await delivered('before-push')).not.toMatch(/^X-Policy-Version:/m);

    const reloadsBefore = gw.logs.filter((l) => l.event === 'supervisor.reloaded').length;
    const workersBefore = gw.logs.filter((l) => l.event === 'worker.reloaded').length;
    const file = join(dirA, 'pushed.yaml');
    await writeFile(file, TAGGED);
    const pushed = await runPostern(configA, ['policy', 'push', file, '--comment', 'tag inbound mail'], env);
    expect(pushed.code, pushed.stderr).toBe(0);
    const id = pushed.stdout.trim().split('\n').at(-1);

    const followed = await gw.waitFor((l) => l.event === 'policy.cluster_followed');
    expect(followed).toMatchObject({ version: id, role: 'supervisor' });
    expect(await readFile(join(dirB, 'policy.yaml'), 'utf8')).toBe(TAGGED);
    await waitUntil(async () => gw.logs.filter((l) => l.event === 'worker.reloaded').length >= workersBefore + 2, 60_000, 'both workers reloaded');
    expect((await sendTokens(port, ['after-push'])).accepted).toEqual(['after-push']);
    expect(await delivered('after-push')).toMatch(/^X-Policy-Version: pushed\r?$/m);
    // The watcher saw the file change too, after its pause: the policy was loaded already.
    await new Promise((r) => setTimeout(r, 1500));
    expect(gw.logs.filter((l) => l.event === 'supervisor.reloaded').length).toBe(reloadsBefore + 1);
  }, 180_000);
});
