/**
 * The policy activated through the admin role of a running gateway (`postern start` with
 * admin.listen): a Policy Operator signs in over HTTP, reads the policy, activates an edited one;
 * the workers reload and mail sent afterwards follows the new rule, while mail sent before did
 * not. The activation is in the audit trail with the texts before and after, a second edit from
 * the old version is refused (409), and a rollback restores the first policy for the next mail.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { openKeyStore } from '../../src/keystore/index.js';
import { adminHttp, type AdminHttp } from '../helpers/admin.js';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { sendTokens, waitUntil } from '../helpers/send.js';

const PASSWORD = 'correct horse battery staple';
const TAGGED = `rules:
  - name: tag inbound
    when: { direction: inbound }
    do: [{ add_header: { X-Policy-Version: two } }]
`;

describe('policy activation through the admin role of a running gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let base: string;
  let config: string;

  let client: AdminHttp;
  const api = (method: 'GET' | 'POST', path: string, body?: unknown) => client.api<any>(method, path, body);
  /** The delivered copy of the message with `token`, as text. */
  const delivered = async (token: string) => {
    const box = join(dir, 'maildir', 'new');
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
  /** Activate through `call`, then wait until every worker took the reload. */
  const reloadedAfter = async <T>(call: () => Promise<T>): Promise<T> => {
    const before = gw.logs.filter((l) => l.event === 'worker.reloaded').length;
    const r = await call();
    await waitUntil(async () => gw.logs.filter((l) => l.event === 'worker.reloaded').length >= before + 2, 60_000, 'both workers reloaded');
    return r;
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-admin-policy-'));
    port = await freePort();
    const adminPort = await freePort();
    config = await writeGatewayConfig(dir, port, `admin: { listen: ["127.0.0.1:${adminPort}"] }\n`);
    const store = await openKeyStore(await loadConfig(config), { createKek: true });
    await store.addAdminAccount({ name: 'polly', password: PASSWORD, roles: ['policy_operator'], actor: 'test' });
    await store.close();
    gw = await startGateway(config);
    // The admin role starts after the mail roles; on a busy machine that can take a while.
    await gw.waitFor((l) => l.event === 'admin.listening', 150_000);
    base = `http://127.0.0.1:${adminPort}`;
    client = await adminHttp(base, 'polly', PASSWORD);
  }, 240_000);
  afterAll(async () => {
    await gw?.stop();
    await cleanup();
  });

  it('activates an edited policy: mail sent afterwards follows the new rule', async () => {
    expect((await sendTokens(port, ['before-activation'])).accepted).toEqual(['before-activation']);
    expect(await delivered('before-activation')).not.toMatch(/^X-Policy-Version:/m);

    const shown = await api('GET', '/policy');
    expect(shown.json.text).toBe('rules: []\n');
    const r = await reloadedAfter(() => api('POST', '/policy/activate', { text: TAGGED, hash: shown.json.hash }));
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ outcome: 'activated', reloaded: true, version: { by: 'polly' } });
    expect(await readFile(join(dir, 'policy.yaml'), 'utf8')).toBe(TAGGED);

    expect((await sendTokens(port, ['after-activation'])).accepted).toEqual(['after-activation']);
    expect(await delivered('after-activation')).toMatch(/^X-Policy-Version: two\r?$/m);

    // Another admin's edit of the old text is refused: it would undo this one unseen.
    const stale = await api('POST', '/policy/activate', { text: 'rules: []\n# mine\n', hash: shown.json.hash });
    expect(stale.status).toBe(409);
  }, 180_000);

  it('keeps the change in the audit trail with the texts before and after, and rolls back', async () => {
    const store = await openKeyStore(await loadConfig(config));
    try {
      const records = await store.auditLog({ object: 'policy' });
      expect(records).toEqual([expect.objectContaining({ actor: 'polly', action: 'policy.activate', via: 'api', client: '127.0.0.1', before: 'rules: []\n', after: TAGGED })]);
    } finally {
      await store.close();
    }
    const versions = (await api('GET', '/policy/versions')).json.versions;
    expect(versions.map((v: { by: string | null; active: boolean }) => [v.by, v.active])).toEqual([
      ['polly', true],
      [null, false],
    ]);
    const back = await reloadedAfter(() => api('POST', `/policy/versions/${versions[1].id}/activate`, {}));
    expect(back.json).toMatchObject({ outcome: 'activated', reloaded: true });
    expect((await sendTokens(port, ['after-rollback'])).accepted).toEqual(['after-rollback']);
    expect(await delivered('after-rollback')).not.toMatch(/^X-Policy-Version:/m);
  }, 180_000);
});
