/**
 * BINARYMIME content the worker could not convert (a signed binary part) goes to a next hop that
 * announces BINARYMIME and CHUNKING by BDAT (RFC 3030), byte for byte, and to any other with a
 * 5.6.3 bounce, never over DATA. Postern's own smtpd (BDAT with BODY=BINARYMIME in, issue 20) is
 * the next hop that takes it and shows what arrived: the same bytes, BODY=BINARYMIME. Postfix's
 * smtp-sink (8BITMIME, no CHUNKING) is the one that may not have it: its log shows no MAIL for it.
 * A 2 MB message streams from its spool file range, one BDAT per chunk read.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/types.js';
import { hostileBytes, signedBinary } from '../helpers/binary-mail.js';
import { testConfig } from '../helpers/config.js';
import { startPostfixSink, type PostfixSink } from '../helpers/postfix-sink.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';
import { splitReceived, startTestSmtpd, type SmtpdHarness } from '../helpers/smtp-harness.js';

describe('relay: BINARYMIME by BDAT', () => {
  const h = useRelayHarness('postern-relay-bdat-');
  let next: SmtpdHarness | undefined;
  let sink: PostfixSink | undefined;
  afterEach(async () => {
    await next?.stop();
    await sink?.stop();
    next = sink = undefined;
  });

  const route = (host: string, port: number) => testConfig(h.dir, { relay: { routes: [{ pattern: '*', target: { kind: 'smtp', host, port, tls: 'none' } }] } as Config['relay'] });

  async function arrives(message: Buffer): Promise<void> {
    next = await startTestSmtpd();
    await h.start(route('127.0.0.1', next.port));
    await queueMessage(h.spool, envelope('carol@example.com', ['frank@example.com'], { body: 'BINARYMIME' }), message);
    await waitUntil(async () => (await next!.incoming()).length === 1, 20_000, 'the message at the next hop');
    const [entry] = await next.incoming();
    expect(entry!.meta.envelope.body).toBe('BINARYMIME');
    // Byte for byte after the Received field the next hop added.
    expect(splitReceived(entry!.body).rest.equals(message)).toBe(true);
    // The next hop stores before it answers: the relay logs the delivery once the 250 is in.
    await waitUntil(async () => h.events('relay.delivered').length === 1, 10_000, 'relay.delivered');
  }

  it('sends a signed binary message to a BINARYMIME next hop by BDAT, byte for byte', async () => {
    await arrives(signedBinary(hostileBytes()));
  });

  it('sends a 2 MB one streamed from its spool file range (BDAT chunk by chunk)', async () => {
    const message = signedBinary(Buffer.concat([hostileBytes(), randomBytes(2 * 1024 * 1024), hostileBytes()]));
    await arrives(message);
  });

  it('bounces it 5.6.3 to a next hop without BINARYMIME and CHUNKING, sending nothing of it', async () => {
    sink = await startPostfixSink([], { verbose: true });
    await h.start(route(sink.host, sink.port));
    await queueMessage(h.spool, envelope('carol@example.com', ['frank@example.com'], { body: 'BINARYMIME' }), signedBinary(hostileBytes()));
    await waitUntil(async () => h.events('relay.bounce').length > 0, 20_000, 'the bounce');
    const [bounce] = h.events('relay.bounce') as { recipients: { outcome: string; dsn: string; reply: string }[] }[];
    expect(bounce!.recipients[0]).toMatchObject({ outcome: 'bounced_conversion', dsn: '5.6.3' });
    expect(bounce!.recipients[0]!.reply).toMatch(/^conversion required but prohibited: .*does not offer BINARYMIME and CHUNKING/);
    // The sink may see the bounce itself (from <>, routed there too), never carol's message.
    expect(sink.lines.filter((l) => /^(MAIL FROM:<carol@example\.com>|BDAT)/.test(l))).toEqual([]);
  });
});
