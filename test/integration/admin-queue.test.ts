/**
 * The queue and PDF routes of a running gateway's admin role (the built binary under its
 * supervisor), over HTTP with a signed-in session: the running relay learns of released and
 * flushed work by itself — no signal, as after `postern queue release|flush` — and delivers the
 * notice of a PDF password set through the API to its sender.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { openKeyStore } from '../../src/keystore/index.js';
import type { QueueRow } from '../../src/relay/index.js';
import { adminHttp, type AdminHttp } from '../helpers/admin.js';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { sendTokens, waitUntil } from '../helpers/send.js';
import { startSink, type SmtpSink } from '../helpers/sink-smtp.js';

const PASSWORD = 'correct horse battery staple';

describe('admin API of a running gateway: queue and PDF passwords', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let sink: SmtpSink | undefined;
  let port: number;
  let hopPort: number;
  let base: string;

  let client: AdminHttp;
  const api = <T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown) => client.api<T>(method, path, body);
  const deferred = async () => (await api<{ entries: QueueRow[] }>('GET', '/queue?queue=deferred')).json.entries;
  const delivered = (token: string) => (sink?.transactions ?? []).filter((t) => t.data.toString('latin1').includes(token)).length;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-admin-queue-'));
    hopPort = await freePort();
    port = await freePort();
    const adminPort = await freePort();
    base = `http://127.0.0.1:${adminPort}`;
    // example.net's next hop is down for now; retries are an hour apart, so only the API's
    // release or flush makes the relay try again within this test.
    const config = await writeGatewayConfig(dir, port, `admin: { listen: ["127.0.0.1:${adminPort}"] }\n`);
    await writeFile(config, (await readFile(config, 'utf8')).replace('relay:\n  routes:\n', `relay:\n  retry: [1h]\n  routes:\n    example.net: smtp://127.0.0.1:${hopPort}\n`));
    // The first account, as `postern admin add` makes it: in postern.db, before the gateway starts.
    const store = await openKeyStore(await loadConfig(config));
    await store.addAdminAccount({ name: 'netops', password: PASSWORD, roles: ['network_operator', 'user_operator'], actor: 'test' });
    await store.close();
    gw = await startGateway(config);
    await gw.waitFor((l) => l.event === 'admin.listening', 60_000);
    client = await adminHttp(base, 'netops', PASSWORD);

    expect((await sendTokens(port, ['adm-q1'], { to: ['far@example.net'] })).accepted).toEqual(['adm-q1']);
    await waitUntil(async () => (await deferred()).length === 1, 20_000, 'deferred');
  }, 120_000);
  afterAll(async () => {
    await gw?.stop();
    await sink?.close();
    await cleanup();
  });

  it('held, the message survives a flush; released, the running relay delivers it at once', async () => {
    const [entry] = await deferred();
    expect(entry).toMatchObject({ sender: 'alice@example.org', recipients: [{ address: 'far@example.net', state: 'deferred' }], attempts: 1 });
    expect(entry!.last_error).toContain('Connection refused');

    expect(await api('POST', `/queue/${entry!.id}/hold`, {})).toMatchObject({ status: 200, json: { done: [`deferred/${entry!.name}`] } });
    sink = await startSink({ port: hopPort });
    expect(await api('POST', '/queue/flush', { all: true })).toMatchObject({ status: 200, json: { done: [] } });
    expect((await api<{ entries: QueueRow[] }>('GET', '/queue?queue=hold')).json.entries.map((e) => e.name)).toEqual([entry!.name]);

    expect((await api('POST', `/queue/${entry!.id}/release`, {})).status).toBe(200);
    await waitUntil(async () => delivered('adm-q1') === 1, 20_000, 'delivered after release');
    await waitUntil(async () => (await api<{ total: number }>('GET', '/queue')).json.total === 0, 10_000, 'queue empty');
  });

  it('a flush for the domain sends its deferred mail at once', async () => {
    await sink!.close();
    sink = undefined;
    expect((await sendTokens(port, ['adm-q2'], { to: ['far@example.net'] })).accepted).toEqual(['adm-q2']);
    await waitUntil(async () => (await deferred()).length === 1, 20_000, 'deferred again');
    sink = await startSink({ port: hopPort });
    expect(await api('POST', '/queue/flush', { domain: 'Example.NET' })).toMatchObject({ status: 200, json: { done: [expect.stringMatching(/^deferred\//)] } });
    await waitUntil(async () => delivered('adm-q2') === 1, 20_000, 'delivered after flush');
  });

  it('a PDF password set through the API reaches its sender by the running relay; the trail names the account and the API', async () => {
    const set = await api('POST', '/pdf/passwords/set', { from: 'carol@example.com', to: 'dave@partner.example', password: 'ten-or-more characters' });
    expect(set).toMatchObject({ status: 200, json: { told: { how: 'notice' } } });
    const notice = await maildirOf(() => dir).waitDelivered('carol@example.com', 'New password for encrypted PDF mail to dave@partner.example');
    expect(await readFile(notice, 'utf8')).toContain('    ten-or-more characters');

    const store = await openKeyStore(await loadConfig(join(dir, 'postern.yaml')));
    try {
      // The account's changes (its sign-in is in the trail too).
      const trail = (await store.auditLog({ actor: 'netops' })).filter((r) => /^(queue|pdf)\./.test(r.action));
      expect(trail.map((r) => [r.action, r.object, r.via])).toEqual([
        ['queue.hold', expect.stringMatching(/^queue:/), 'api'],
        ['queue.release', expect.stringMatching(/^queue:/), 'api'],
        ['queue.flush', 'queue:@example.net', 'api'],
        ['pdf.set', 'pdf:carol@example.com→dave@partner.example', 'api'],
      ]);
    } finally {
      await store.close();
    }
  });
});
