/**
 * The queue's admin API against a running gateway (the built binary under its supervisor): the
 * handlers act on its spool as the admin role does, and the running relay learns of released and
 * flushed work by itself — no signal, as after `postern queue release|flush`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueRoutes } from '../../src/admin/api/queue.js';
import type { QueueRow } from '../../src/relay/index.js';
import { handlerHarness, json, type HandlerHarness } from '../helpers/admin-handlers.js';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { sendTokens, waitUntil } from '../helpers/send.js';
import { startSink, type SmtpSink } from '../helpers/sink-smtp.js';

describe('admin API: queue of a running gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let sink: SmtpSink | undefined;
  let h: HandlerHarness;
  let port: number;
  let hopPort: number;

  const call = (method: 'GET' | 'POST', url: string, req: Parameters<HandlerHarness['call']>[3] = {}) => h.call(queueRoutes, method, url, req);
  const deferred = async () => json<{ entries: QueueRow[] }>(await call('GET', '/queue', { query: { queue: 'deferred' } })).entries;
  const delivered = (token: string) => (sink?.transactions ?? []).filter((t) => t.data.toString('latin1').includes(token)).length;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-admin-queue-'));
    hopPort = await freePort();
    port = await freePort();
    const config = await writeGatewayConfig(dir, port);
    // example.net's next hop is down for now; retries are an hour apart, so only the API's
    // release or flush makes the relay try again within this test.
    await writeFile(config, (await readFile(config, 'utf8')).replace('relay:\n  routes:\n', `relay:\n  retry: [1h]\n  routes:\n    example.net: smtp://127.0.0.1:${hopPort}\n`));
    gw = await startGateway(config);
    h = await handlerHarness({}, dir);
    expect((await sendTokens(port, ['adm-q1'], { to: ['far@example.net'] })).accepted).toEqual(['adm-q1']);
    await waitUntil(async () => (await deferred()).length === 1, 20_000, 'deferred');
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await sink?.close();
    await h?.close();
    await cleanup();
  });

  it('held, the message survives a flush; released, the running relay delivers it at once', async () => {
    const [entry] = await deferred();
    expect(entry).toMatchObject({ sender: 'alice@example.org', recipients: [{ address: 'far@example.net', state: 'deferred' }], attempts: 1 });
    expect(entry!.last_error).toContain('Connection refused');

    expect(json(await call('POST', '/queue/:id/hold', { params: { id: entry!.id }, body: {} }))).toMatchObject({ done: [`deferred/${entry!.name}`] });
    sink = await startSink({ port: hopPort });
    expect(json(await call('POST', '/queue/flush', { body: { all: true } }))).toMatchObject({ done: [] });
    const held = json<{ entries: QueueRow[] }>(await call('GET', '/queue', { query: { queue: 'hold' } })).entries;
    expect(held.map((e) => e.name)).toEqual([entry!.name]);

    await call('POST', '/queue/:id/release', { params: { id: entry!.id }, body: {} });
    await waitUntil(async () => delivered('adm-q1') === 1, 20_000, 'delivered after release');
    await waitUntil(async () => json<{ total: number }>(await call('GET', '/queue')).total === 0, 10_000, 'queue empty');
    expect(h.audits.map((a) => a.action)).toEqual(['queue.hold', 'queue.release']);
  });

  it('a flush for the domain sends its deferred mail at once', async () => {
    await sink!.close();
    sink = undefined;
    expect((await sendTokens(port, ['adm-q2'], { to: ['far@example.net'] })).accepted).toEqual(['adm-q2']);
    await waitUntil(async () => (await deferred()).length === 1, 20_000, 'deferred again');
    sink = await startSink({ port: hopPort });
    expect(json(await call('POST', '/queue/flush', { body: { domain: 'Example.NET' } }))).toMatchObject({ done: [expect.stringMatching(/^deferred\//)] });
    await waitUntil(async () => delivered('adm-q2') === 1, 20_000, 'delivered after flush');
    expect(h.audits.at(-1)).toMatchObject({ action: 'queue.flush', object: 'queue:@example.net' });
  });
});
