/**
 * The real gateway: workers announce what they commit to the relay over data_dir/relay.sock,
 * not through the supervisor, and mail flows; the socket is root's alone.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { startPostfixSink, type PostfixSink } from '../helpers/postfix-sink.js';
import { waitUntil } from '../helpers/send.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';

describe('worker → relay hand-off in the gateway', () => {
  let sink: PostfixSink | undefined;
  let gw: Gateway | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await gw?.stop();
    await sink?.stop();
    await cleanup?.();
    gw = sink = cleanup = undefined;
  });

  it('workers connect to relay.sock (0600) and mail is delivered', async () => {
    sink = await startPostfixSink([], { verbose: true });
    const t = await tempDir('postern-handoff-');
    cleanup = t.cleanup;
    const port = await freePort();
    gw = await startGateway(await writeGatewayConfig(t.dir, port, '', `smtp://127.0.0.1:${sink.port}`));
    // Both workers connect as they start (the relay starts first).
    await waitUntil(async () => gw!.logs.filter((l) => l.event === 'relay.handoff_connected').length === 2, 15_000, `two workers connected; ${gw.tail()}`);
    expect((await stat(join(t.dir, 'relay.sock'))).mode & 0o777).toBe(0o600);
    const c = await SmtpTestClient.connect(port);
    for (let i = 0; i < 3; i++) {
      if (i === 0) expect((await c.cmd('EHLO client.test')).code).toBe(250);
      expect((await c.cmd('MAIL FROM:<alice@example.com>')).code).toBe(250);
      expect((await c.cmd(`RCPT TO:<bob${i}@example.net>`)).code).toBe(250);
      expect((await c.cmd('DATA')).code).toBe(354);
      c.write(`Subject: ${i}\r\n\r\nhello\r\n.\r\n`);
      expect((await c.read())?.code).toBe(250);
    }
    await c.cmd('QUIT').catch(() => undefined);
    await waitUntil(async () => sink!.lines.filter((l) => l === '.').length === 3, 15_000, `three messages at the sink; ${gw.tail()}`);
  });
});
