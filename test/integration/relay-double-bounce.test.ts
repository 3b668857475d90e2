/**
 * Double bounces, as Postfix sends them (notify_classes 2bounce): a bounce the sender's side
 * refuses has no sender to go back to, so the postmaster of our first internal domain gets it
 * ("Postmaster Copy: Undelivered Mail", the undelivered bounce attached) instead of nobody; a
 * postmaster copy refused in turn is logged and dropped, never a third notice. The next hop is a
 * private real Postfix that refuses some recipients by an access map and keeps the rest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/types.js';
import { testConfig } from '../helpers/config.js';
import { parseDsn } from '../helpers/dsn-parse.js';
import { startPostfix, type PostfixInstance } from '../helpers/postfix-instance.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';

const message = Buffer.from('From: Alice <alice@example.org>\r\nTo: bad@example.net\r\nSubject: figures\r\nMessage-ID: <figures@example.org>\r\n\r\nHello.\r\n');

describe('relay: double bounces to the postmaster', () => {
  const h = useRelayHarness('postern-relay-2bounce-');
  let postfix: PostfixInstance;

  beforeAll(async () => {
    postfix = await startPostfix({
      mainCf: [
        'smtpd_recipient_restrictions = check_recipient_access inline:{ { bad@example.net = 550 5.1.1 no such user }, { alice@example.org = 550 5.1.1 sender gone }, { postmaster@example.edu = 550 5.1.1 no postmaster here } }, permit_mynetworks, reject',
      ],
    });
  });
  afterAll(async () => {
    await postfix?.stop();
  });

  async function start(internal: string): Promise<void> {
    const config = testConfig(h.dir, {
      internal_domains: [internal],
      relay: { routes: [{ pattern: '*', target: { kind: 'smtp', host: postfix.host, port: postfix.port, tls: 'none' } }], retry: [100], concurrency: 4 } as Config['relay'],
    });
    await h.start(config);
  }
  const drained = () =>
    waitUntil(async () => (await h.spool.list('outgoing')).length + (await h.spool.list('delivering')).length + (await h.spool.list('deferred')).length === 0, 10_000, 'spool drained');

  it('a bounce the sender refuses goes to postmaster@<first internal domain>, with the bounce attached', async () => {
    const before = postfix.messages().length;
    await start('example.com');
    await queueMessage(h.spool, envelope('alice@example.org', ['bad@example.net']), message);
    const [copy] = (await postfix.waitForMessages(before + 1)).slice(before);
    await drained();
    expect(copy!.recipient).toBe('postmaster@example.com');
    expect(copy!.sender).toBe('');
    const dsn = await parseDsn(copy!.raw);
    expect(dsn.subject).toBe('Postmaster Copy: Undelivered Mail');
    expect(dsn.to).toContain('postmaster@example.com');
    // It reports the bounce's own failure: alice@example.org refused it.
    expect(dsn.recipients).toEqual([
      expect.objectContaining({ 'final-recipient': 'rfc822; alice@example.org', action: 'failed', status: '5.1.1', 'diagnostic-code': expect.stringContaining('550 5.1.1') }),
    ]);
    // ... and carries that bounce, which reports bad@example.net.
    expect(dsn.returned?.headers.subject).toBe('Undelivered Mail Returned to Sender');
    expect(copy!.raw.toString()).toContain('Final-Recipient: rfc822; bad@example.net');
    expect(dsn.text).toMatch(/postmaster/);
    // Postfix's own account: the original and the bounce refused, the postmaster copy delivered.
    expect(postfix.log()).toMatch(/NOQUEUE: reject: RCPT from \S+: 550 5\.1\.1 <bad@example\.net>/);
    expect(postfix.log()).toMatch(/NOQUEUE: reject: RCPT from \S+: 550 5\.1\.1 <alice@example\.org>.* from=<>/);
    expect(h.events('relay.dsn').map((e) => e.doubleBounce ?? false)).toEqual([false, true]);
    expect(h.events('relay.double_bounce_dropped')).toEqual([]);
  });

  it('a postmaster copy that is refused too is logged and dropped: no third notice', async () => {
    const before = postfix.messages().length;
    await start('example.edu');
    await queueMessage(h.spool, envelope('alice@example.org', ['bad@example.net']), message);
    await waitUntil(async () => h.events('relay.double_bounce_dropped').length === 1, 10_000, 'double bounce dropped');
    await drained();
    await new Promise((r) => setTimeout(r, 300));
    expect(h.events('relay.dsn')).toHaveLength(2);
    expect(h.events('relay.bounce')).toHaveLength(3);
    expect(postfix.log()).toMatch(/NOQUEUE: reject: RCPT from \S+: 550 5\.1\.1 <postmaster@example\.edu>.* from=<>/);
    expect(postfix.messages()).toHaveLength(before);
    expect(await h.spool.list('hold')).toEqual([]);
  });
});
