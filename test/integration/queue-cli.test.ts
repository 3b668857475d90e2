/**
 * Queue administration through the real `postern` binary while the gateway runs: a next hop that
 * is down leaves mail deferred; list and show explain why; hold, release, flush and delete act on
 * it; once the next hop is up, flush delivers at once.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirTokens, sendTokens, waitUntil } from '../helpers/send.js';
import { startSink, type SmtpSink } from '../helpers/sink-smtp.js';

describe('postern queue (while the gateway runs)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let sink: SmtpSink | undefined;
  let hopPort: number;
  let config: string;

  const postern = (...args: string[]) => runPostern(config, args);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-queue-cli-'));
    hopPort = await freePort();
    const port = await freePort();
    config = await writeGatewayConfig(dir, port);
    // example.net goes to a next hop that is down for now; retries are an hour apart, so only
    // the admin's flush makes the relay try again within this test.
    await writeFile(
      config,
      (await readFile(config, 'utf8')).replace('relay:\n  routes:\n', `relay:\n  retry: [1h]\n  routes:\n    example.net: smtp://127.0.0.1:${hopPort}\n`),
    );
    gw = await startGateway(config);
    const sent = await sendTokens(port, ['q1'], { to: ['far@example.net', 'near@example.com'] });
    expect(sent.accepted).toEqual(['q1']);
    await waitUntil(async () => (await postern('queue', 'list')).stdout.includes('\tdeferred\t'), 20_000, 'deferred');
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await sink?.close();
    await cleanup();
  });

  it('list shows the deferred entry and why it waits; show gives each recipient its state', async () => {
    const list = await postern('queue', 'list');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^(\S+)\tdeferred\t\S+\t\d+\talice@example\.org\tfar@example\.net,near@example\.com$/m);
    // Postfix's words for it, as mailq shows them: no library codes.
    const refused = `connect to 127.0.0.1[127.0.0.1]:${hopPort}: Connection refused`;
    expect(list.stdout).toContain(`\t(${refused}; next attempt 20`);

    const name = /^(\S+)\tdeferred/m.exec(list.stdout)![1]!;
    const show = await postern('queue', 'show', name.split('.')[0]!, '--json');
    expect(show.code).toBe(0);
    const doc = JSON.parse(show.stdout);
    expect(doc.entries).toHaveLength(1);
    expect(doc.entries[0]).toMatchObject({ name, queue: 'deferred', attempts: 1, next_attempt: expect.any(String) });
    expect(doc.entries[0].recipients).toEqual([
      expect.objectContaining({ address: 'far@example.net', state: 'deferred', reply: refused, dsn: '4.4.1' }),
      expect.objectContaining({ address: 'near@example.com', state: 'delivered' }),
    ]);
    const text = await postern('queue', 'show', name);
    expect(text.stdout).toMatch(/<far@example\.net> deferred/);
    expect(text.stdout).toMatch(/<near@example\.com> delivered/);
    expect((await maildirTokens(join(dir, 'maildir'))).get('q1')).toBe(1);
  });

  it('hold keeps it through a flush; release and flush deliver it once the next hop is up', async () => {
    const name = /^(\S+)\tdeferred/m.exec((await postern('queue', 'list')).stdout)![1]!;
    const id = name.split('.')[0]!;
    expect(await postern('queue', 'hold', id)).toMatchObject({ code: 0, stdout: expect.stringContaining(`held: deferred/${name}`) });
    sink = await startSink({ port: hopPort });
    expect(await postern('queue', 'flush')).toMatchObject({ code: 0, stdout: expect.stringContaining('nothing to do') });
    await new Promise((r) => setTimeout(r, 500));
    expect(sink.transactions).toEqual([]);
    expect((await postern('queue', 'list')).stdout).toMatch(new RegExp(`^${name}\\thold\\t`, 'm'));

    expect(await postern('queue', 'release', id)).toMatchObject({ code: 0, stdout: expect.stringContaining(`released: hold/${name}`) });
    await sink.waitFor(1, 15_000);
    // Only the recipient still waiting: near@example.com had it already.
    expect(sink.transactions.map((t) => t.rcptTo)).toEqual([['far@example.net']]);
    await waitUntil(async () => (await postern('queue', 'list')).stdout.includes('-- 0 entries'), 10_000, 'queue empty');
    expect((await maildirTokens(join(dir, 'maildir'))).get('q1')).toBe(1);
  });

  it('names what it cannot find, and refuses bad usage', async () => {
    expect(await postern('queue', 'delete', 'NOSUCHID')).toMatchObject({ code: 1, stderr: expect.stringContaining('no queue entry matches "NOSUCHID"') });
    expect(await postern('queue', 'show')).toMatchObject({ code: 2, stderr: expect.stringContaining('needs a queue id') });
    expect(await postern('queue', 'frobnicate')).toMatchObject({ code: 2, stderr: expect.stringContaining('expected: list, show') });
  });
});
