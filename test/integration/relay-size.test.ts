/**
 * Size refusals are permanent: a next hop that answers 552 at the end of DATA, or announces a
 * SIZE limit the message exceeds, gets no retry; the sender gets a bounce (parsed by Python's
 * email package) on the first attempt, although retries are an hour apart.
 */
import { describe, expect, it } from 'vitest';
import type { Config, Route } from '../../src/config/types.js';
import { testConfig } from '../helpers/config.js';
import { parseDsn } from '../helpers/dsn-parse.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';
import type { SmtpSink } from '../helpers/sink-smtp.js';

const message = Buffer.from(
  `From: Alice <alice@example.org>\r\nTo: big@example.net\r\nSubject: the big one\r\nMessage-ID: <big@example.org>\r\n\r\n${'0123456789abcdef'.repeat(256)}\r\n`,
);

describe('relay: size refusals', () => {
  const h = useRelayHarness('postern-relay-size-');
  const to = (s: SmtpSink): Route['target'] => ({ kind: 'smtp', host: s.host, port: s.port, tls: 'none' });

  /** Mail for example.net goes to `hop`; bounces (to alice@example.org) to `home`. */
  async function run(hop: SmtpSink) {
    const home = await h.sink();
    const config: Config['relay'] = {
      routes: [
        { pattern: 'example.net', target: to(hop) },
        { pattern: '*', target: to(home) },
      ],
      retry: [3_600_000],
      concurrency: 4,
    } as Config['relay'];
    await h.start(testConfig(h.dir, { relay: config }));
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['big@example.net']), message);
    await home.waitFor(1, 10_000);
    await waitUntil(async () => (await h.spool.list('outgoing')).length + (await h.spool.list('delivering')).length + (await h.spool.list('deferred')).length === 0, 10_000, 'spool drained');
    expect(h.events('relay.deferred')).toEqual([]);
    expect(h.events('relay.bounce')).toEqual([expect.objectContaining({ queueId: name.split('.')[0] })]);
    const bounce = home.transactions[0]!;
    expect(bounce).toMatchObject({ mailFrom: '', rcptTo: ['alice@example.org'] });
    return parseDsn(bounce.data);
  }

  it('552 5.3.4 at the end of DATA bounces at once', async () => {
    const hop = await h.sink({ dataReply: () => ({ code: 552, message: '5.3.4 Message size exceeds fixed maximum message size' }) });
    const dsn = await run(hop);
    expect(hop.transactions).toHaveLength(1);
    expect(dsn.recipients).toEqual([
      expect.objectContaining({
        'final-recipient': 'rfc822; big@example.net',
        action: 'failed',
        status: '5.3.4',
        'diagnostic-code': 'smtp; 552 5.3.4 Message size exceeds fixed maximum message size',
      }),
    ]);
  });

  it('a message larger than the SIZE the next hop announced bounces at once, without being sent', async () => {
    const hop = await h.sink({ size: 1024 });
    const dsn = await run(hop);
    expect(hop.transactions).toEqual([]);
    expect(dsn.recipients).toEqual([
      expect.objectContaining({
        'final-recipient': 'rfc822; big@example.net',
        action: 'failed',
        status: '5.3.4',
        // Postfix's words; our own finding, so no Remote-MTA and an X- diagnostic type (RFC 3464 2.3.6).
        'diagnostic-code': `X-Postern; message size ${message.length} exceeds size limit 1024 of server 127.0.0.1[127.0.0.1]`,
      }),
    ]);
    expect(dsn.recipients[0]).not.toHaveProperty('remote-mta');
  });
});
