/**
 * DSN parameters (RFC 3461) travel on to the next hop: what a client gave Postern's smtpd in
 * MAIL FROM (RET, ENVID) and RCPT TO (NOTIFY, ORCPT) reaches the next hop byte for byte, through
 * the whole gateway (smtpd → spool → worker → relay) to Postfix's smtp-sink, whose -v log shows
 * each command as it arrived; and smtp-server, a second real implementation, parses them back to
 * what the client said. Pipelined, as both next hops announce PIPELINING.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/types.js';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { startPostfixSink, type PostfixSink } from '../helpers/postfix-sink.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';
import { testConfig } from '../helpers/config.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';

describe('relay: DSN parameters reach the next hop', () => {
  let sink: PostfixSink | undefined;
  let gw: Gateway | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await gw?.stop();
    await sink?.stop();
    await cleanup?.();
    gw = sink = cleanup = undefined;
  });

  it('from a client through the gateway to Postfix smtp-sink, byte for byte', async () => {
    sink = await startPostfixSink([], { verbose: true });
    const t = await tempDir('postern-next-hop-dsn-');
    cleanup = t.cleanup;
    const port = await freePort();
    gw = await startGateway(await writeGatewayConfig(t.dir, port, '', `smtp://127.0.0.1:${sink.port}`));
    const c = await SmtpTestClient.connect(port);
    expect((await c.cmd('EHLO client.test')).code).toBe(250);
    expect((await c.cmd('MAIL FROM:<alice@example.com> RET=HDRS ENVID=QQ+2B314')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<bob@example.net> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Bob+2BTeam@example.net')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<carol@example.net> NOTIFY=NEVER')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<dave@example.net>')).code).toBe(250);
    expect((await c.cmd('DATA')).code).toBe(354);
    c.write('From: alice@example.com\r\nTo: bob@example.net\r\nSubject: dsn params\r\n\r\nhello\r\n.\r\n');
    expect((await c.read())?.code).toBe(250);
    await c.cmd('QUIT').catch(() => undefined);
    const lines = sink.lines;
    await waitUntil(async () => lines.includes('.'), 15_000, `message at the sink; sink: ${lines.join(' | ')}`);
    const mail = lines.find((l) => l.startsWith('MAIL FROM:'))!;
    // smtp-sink announces no SIZE, so none is sent.
    expect(mail).toBe('MAIL FROM:<alice@example.com> RET=HDRS ENVID=QQ+2B314');
    expect(lines.filter((l) => l.startsWith('RCPT TO:'))).toEqual([
      'RCPT TO:<bob@example.net> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Bob+2BTeam@example.net',
      'RCPT TO:<carol@example.net> NOTIFY=NEVER',
      'RCPT TO:<dave@example.net>',
    ]);
  });

  describe('to smtp-server', () => {
    const h = useRelayHarness('postern-next-hop-dsn-');

    it('parses back to what the client said', async () => {
      const s = await h.sink({ dsn: true });
      await h.start(testConfig(h.dir, { relay: { routes: [{ pattern: '*', target: { kind: 'smtp', host: s.host, port: s.port, tls: 'none' } }] } as Config['relay'] }));
      await queueMessage(
        h.spool,
        // As smtpd stores them: ENVID and ORCPT in xtext.
        envelope('alice@example.org', [{ address: 'bob@example.net', notify: ['FAILURE'], orcpt: 'rfc822;b+3Db@example.net' }, 'carol@example.net'], { ret: 'FULL', envid: 'ID+20with+20spaces' }),
        Buffer.from('Subject: x\r\n\r\nhello\r\n'),
      );
      await s.waitFor(1);
      expect(s.transactions[0]!.dsn).toEqual({
        ret: 'FULL',
        envid: 'ID with spaces',
        rcpt: [{ notify: ['FAILURE'], orcpt: 'rfc822;b=b@example.net' }, undefined],
      });
    });

    it('NOTIFY=SUCCESS given to a next hop that announced DSN: its notice counts, none of ours ("relayed" is for hops without DSN)', async () => {
      const s = await h.sink({ dsn: true });
      await h.start(testConfig(h.dir, { relay: { routes: [{ pattern: '*', target: { kind: 'smtp', host: s.host, port: s.port, tls: 'none' } }] } as Config['relay'] }));
      const name = await queueMessage(h.spool, envelope('alice@example.org', [{ address: 'bob@example.net', notify: ['SUCCESS', 'FAILURE'] }]), Buffer.from('Subject: x\r\n\r\nhello\r\n'));
      await s.waitFor(1);
      // Notices are queued before the entry goes: once it is gone, every notice it caused is known.
      await waitUntil(async () => !(await h.spool.list('outgoing')).includes(name) && (await h.spool.list('delivering')).length === 0, 10_000, 'entry done');
      expect(s.transactions[0]!.dsn!.rcpt).toEqual([{ notify: ['SUCCESS', 'FAILURE'] }]);
      expect(h.events('relay.delivered')).toHaveLength(1);
      expect(h.events('relay.dsn')).toEqual([]);
    });
  });
});
