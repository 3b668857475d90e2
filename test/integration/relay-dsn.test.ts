/**
 * Retries, per-recipient outcomes that survive restarts, queue administration and delivery status
 * notifications, against a real SMTP next hop (smtp-server) on loopback. Every DSN is parsed by
 * Python's email package, an independent reading of RFC 3464.
 */
import { describe, expect, it } from 'vitest';
import type { Config, Route } from '../../src/config/types.js';
import { entryState, type Relay } from '../../src/relay/index.js';
import { deleteEntries, flushDeferred, holdEntries, releaseEntries } from '../../src/spool/index.js';
import { testConfig } from '../helpers/config.js';
import { parseDsn } from '../helpers/dsn-parse.js';
import { freePort } from '../helpers/gateway.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';
import type { SinkOptions, SmtpSink } from '../helpers/sink-smtp.js';

const message = (subject: string) =>
  Buffer.from(`From: Alice <alice@example.org>\r\nTo: team@example.net\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n\r\nHello team.\r\n`);

describe('relay: retries, recorded outcomes, queue administration, DSNs', () => {
  const h = useRelayHarness('postern-relay-dsn-');
  const sink = (opts: SinkOptions = {}): Promise<SmtpSink> => h.sink(opts);

  function config(target: Route['target'], relay: Partial<Config['relay']> = {}): Config {
    return testConfig(h.dir, { relay: { routes: [{ pattern: '*', target }], retry: [100], concurrency: 4, ...relay } as Config['relay'] });
  }

  const start = (c: Config): Promise<Relay> => h.start(c);

  const to = (s: SmtpSink): Route['target'] => ({ kind: 'smtp', host: s.host, port: s.port, tls: 'none' });
  const events = h.events;
  const notices = (s: SmtpSink) => s.transactions.filter((t) => t.mailFrom === '');
  const mail = (s: SmtpSink) => s.transactions.filter((t) => t.mailFrom !== '');
  const drained = () =>
    waitUntil(async () => (await h.spool.list('outgoing')).length + (await h.spool.list('delivering')).length + (await h.spool.list('deferred')).length === 0, 10_000, `spool drained; logs: ${JSON.stringify(h.logs.slice(-5))}`);

  it('a 550 for one recipient of three: the others get it once, the sender a bounce for that one only', async () => {
    const s = await sink({ rcptReply: (a) => (a === 'bad@example.net' ? { code: 550, message: '5.1.1 <bad@example.net>: no such user' } : undefined) });
    await start(config(to(s)));
    const env = envelope('alice@example.org', ['one@example.net', { address: 'bad@example.net', orcpt: 'rfc822;Bad+2BTeam@example.net' }, 'two@example.net'], {
      envid: 'ENV+2B42',
    });
    const name = await queueMessage(h.spool, env, message('quarterly figures'));
    await waitUntil(async () => notices(s).length === 1 && mail(s).length === 1, 10_000, 'message and bounce');
    await drained();

    expect(mail(s)[0]!.rcptTo).toEqual(['one@example.net', 'two@example.net']);
    const n = notices(s)[0]!;
    expect(n.rcptTo).toEqual(['alice@example.org']);
    const dsn = await parseDsn(n.data);
    expect(dsn).toMatchObject({ contentType: 'multipart/report', reportType: 'delivery-status', autoSubmitted: 'auto-replied', to: expect.stringContaining('alice@example.org') });
    expect(dsn.parts).toEqual(['text/plain', 'message/delivery-status', 'message/rfc822']);
    expect(dsn.perMessage).toMatchObject({ 'reporting-mta': 'dns; gw.test.example', 'original-envelope-id': 'ENV+42' });
    expect(dsn.recipients).toHaveLength(1);
    expect(dsn.recipients[0]).toMatchObject({
      'final-recipient': 'rfc822; bad@example.net',
      'original-recipient': 'rfc822;Bad+Team@example.net',
      action: 'failed',
      status: '5.1.1',
      'diagnostic-code': 'smtp; 550 5.1.1 <bad@example.net>: no such user',
      'remote-mta': 'dns; 127.0.0.1',
    });
    expect(dsn.returned).toMatchObject({ type: 'message/rfc822', headers: { subject: 'quarterly figures' }, body: expect.stringContaining('Hello team.') });
    expect(dsn.text).toMatch(/bad@example\.net/);
    expect(events('relay.dsn')).toEqual([expect.objectContaining({ queueId: name.split('.')[0], kind: 'failure', recipients: 1 })]);
  });

  it('RET=HDRS returns only the headers; every rejected recipient is in one report', async () => {
    const s = await sink({ rcptReply: (a) => (a.startsWith('x') ? { code: 550, message: '5.1.1 no such user' } : undefined) });
    await start(config(to(s)));
    await queueMessage(h.spool, envelope('alice@example.org', ['x1@example.net', 'x2@example.net'], { ret: 'HDRS' }), message('headers only'));
    await waitUntil(async () => notices(s).length === 1, 10_000, 'bounce');
    await drained();
    expect(mail(s)).toEqual([]);
    const dsn = await parseDsn(notices(s)[0]!.data);
    expect(dsn.recipients.map((r) => r['final-recipient'])).toEqual(['rfc822; x1@example.net', 'rfc822; x2@example.net']);
    expect(dsn.returned!.type).toBe('text/rfc822-headers');
    expect(dsn.returned!.headers.subject).toBe('headers only');
    expect(notices(s)[0]!.data.toString()).not.toContain('Hello team.');
  });

  it('a message Postern decrypted bounces with its headers only: the plaintext never goes back outside', async () => {
    const s = await sink({ rcptReply: (a) => (a === 'gone@example.net' ? { code: 550, message: '5.1.1 no such user' } : undefined) });
    await start(config(to(s)));
    await queueMessage(h.spool, envelope('mallory@partner.example', ['gone@example.net']), message('decrypted secret'), { decrypted: true });
    await waitUntil(async () => notices(s).length === 1, 10_000, 'bounce');
    await drained();
    const dsn = await parseDsn(notices(s)[0]!.data);
    expect(dsn.returned!.type).toBe('text/rfc822-headers');
    expect(notices(s)[0]!.data.toString()).not.toContain('Hello team.');
  });

  it('never bounces a bounce to its (null) sender nor to NOTIFY=NEVER, and reports success for NOTIFY=SUCCESS', async () => {
    const s = await sink({ rcptReply: (a) => (a.startsWith('bad') ? { code: 550, message: '5.1.1 no such user' } : undefined) });
    await start(config(to(s)));
    await queueMessage(h.spool, envelope('', ['bad1@example.net']), message('a bounce'));
    await queueMessage(h.spool, envelope('alice@example.org', [{ address: 'bad2@example.net', notify: ['NEVER'] }]), message('never'));
    await queueMessage(h.spool, envelope('alice@example.org', [{ address: 'good@example.net', notify: ['SUCCESS', 'FAILURE'] }]), message('tell me'));
    await waitUntil(async () => notices(s).length >= 2 && events('relay.bounce').length === 2, 10_000, 'success notice, postmaster copy and two bounces');
    await drained();
    await new Promise((r) => setTimeout(r, 200));
    // The bounce that failed has no sender to tell: the postmaster is told instead (a double
    // bounce, relay-double-bounce.test.ts); NOTIFY=NEVER tells nobody.
    expect(notices(s).map((n) => n.rcptTo).sort()).toEqual([['alice@example.org'], ['postmaster@example.com']]);
    const success = notices(s).find((n) => n.rcptTo[0] === 'alice@example.org')!;
    const dsn = await parseDsn(success.data);
    expect(dsn.subject).toMatch(/Successful/);
    // Handed to an SMTP next hop: "relayed" (RFC 3464 2.3.3); the content is never returned.
    expect(dsn.recipients).toEqual([expect.objectContaining({ 'final-recipient': 'rfc822; good@example.net', action: 'relayed', status: expect.stringMatching(/^2\./) })]);
    expect(dsn.returned?.type ?? 'text/rfc822-headers').toBe('text/rfc822-headers');
  });

  it('a next hop that always answers 4xx: retried until max_queue_lifetime, then a bounce quoting the last reply', async () => {
    const s = await sink({ rcptReply: (a) => (a === 'busy@example.net' ? { code: 451, message: '4.2.1 mailbox busy, come back later' } : undefined) });
    await start(config(to(s), { retry: [150], max_queue_lifetime: 1200 }));
    await queueMessage(h.spool, envelope('alice@example.org', ['busy@example.net']), message('expiring'));
    await waitUntil(async () => notices(s).length === 1, 10_000, 'expiry bounce');
    await drained();
    expect(events('relay.deferred').length).toBeGreaterThanOrEqual(3);
    expect(events('relay.expired')).toHaveLength(1);
    const dsn = await parseDsn(notices(s)[0]!.data);
    expect(dsn.recipients[0]).toMatchObject({ action: 'failed', status: '4.4.7', 'diagnostic-code': expect.stringContaining('451 4.2.1 mailbox busy, come back later') });
    expect(mail(s)).toEqual([]);
  });

  it('NOTIFY=DELAY: one delay notice once delay_warning has passed, however many retries follow', async () => {
    let busy = true;
    const s = await sink({ rcptReply: (a) => (a === 'slow@example.net' && busy ? { code: 450, message: '4.2.1 try later' } : undefined) });
    await start(config(to(s), { retry: [100], delay_warning: 300 }));
    await queueMessage(h.spool, envelope('alice@example.org', [{ address: 'slow@example.net', notify: ['DELAY', 'FAILURE'] }]), message('slow one'));
    await waitUntil(async () => notices(s).length === 1, 10_000, 'delay notice');
    const deferredBefore = events('relay.deferred').length;
    await waitUntil(async () => events('relay.deferred').length >= deferredBefore + 3, 10_000, 'more retries');
    busy = false;
    await waitUntil(async () => mail(s).length === 1, 10_000, 'delivered at last');
    await drained();
    expect(notices(s)).toHaveLength(1);
    const dsn = await parseDsn(notices(s)[0]!.data);
    expect(dsn.subject).toMatch(/Delayed/);
    expect(dsn.recipients[0]).toMatchObject({ action: 'delayed', status: '4.2.1', 'will-retry-until': expect.any(String) });
  });

  it('a next hop that is down, then up: deferred, then delivered at once by queue flush', async () => {
    const port = await freePort();
    await start(config({ kind: 'smtp', host: '127.0.0.1', port, tls: 'none' }, { retry: [3_600_000] }));
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['b@example.net']), message('flush me'));
    await waitUntil(async () => (await h.spool.list('deferred')).includes(name), 10_000, 'deferred');
    const s = await sink({ port });
    expect((await flushDeferred(h.spool)).done).toEqual([`deferred/${name}`]);
    // The entry's own retry is an hour away: a delivery within waitFor's 10 s can only be the
    // flush's doing (no stopwatch needed), and it is the second attempt, not a third.
    await s.waitFor(1);
    await drained();
    expect(mail(s)[0]!.rcptTo).toEqual(['b@example.net']);
    expect(events('relay.deferred')).toHaveLength(1);
  });

  it('a recipient delivered once is never delivered again, across a relay restart', async () => {
    let greylist = true;
    const s = await sink({ rcptReply: (a) => (a === 'grey@example.net' && greylist ? { code: 451, message: '4.7.1 greylisted' } : undefined) });
    const first = await start(config(to(s), { retry: [3_600_000] }));
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['a@example.net', 'grey@example.net', 'b@example.net']), message('restart'));
    await waitUntil(async () => (await h.spool.list('deferred')).includes(name), 10_000, 'deferred');
    await first.close(2000);

    // What the entry itself says (and `postern queue show` prints).
    const status = await h.spool.readStatus('deferred', name);
    const state = entryState(envelope('alice@example.org', ['a@example.net', 'grey@example.net', 'b@example.net']), status);
    expect(state.recipients.map((r) => [r.address, r.state])).toEqual([
      ['a@example.net', 'delivered'],
      ['grey@example.net', 'deferred'],
      ['b@example.net', 'delivered'],
    ]);
    expect(state.attempts).toBe(1);
    expect(state.nextAttempt).toBeGreaterThan(Date.now() + 3_000_000);

    greylist = false;
    await start(config(to(s), { retry: [3_600_000] }));
    await flushDeferred(h.spool);
    await s.waitFor(2);
    await drained();
    expect(s.transactions.map((t) => t.rcptTo)).toEqual([['a@example.net', 'b@example.net'], ['grey@example.net']]);
  });

  it('a restarted relay resumes a deferred entry at the time its records give, without a flush', async () => {
    let down = true;
    const s = await sink({ rcptReply: () => (down ? { code: 421, message: '4.3.2 shutting down' } : undefined) });
    const first = await start(config(to(s), { retry: [1500] }));
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['b@example.net']), message('resume'));
    await waitUntil(async () => (await h.spool.list('deferred')).includes(name), 10_000, 'deferred');
    const recorded = entryState(envelope('alice@example.org', ['b@example.net']), await h.spool.readStatus('deferred', name)).nextAttempt;
    await first.close(2000);
    down = false;
    await new Promise((r) => setTimeout(r, 500));
    await start(config(to(s), { retry: [1500] }));
    await waitUntil(async () => mail(s).length === 1, 10_000, 'delivered after the restart');
    const deliveredAt = Date.now();
    await drained();
    // At the next attempt time recorded in the entry, not at once when the relay starts (a lower
    // bound only: load can delay a timer, never advance it). How late it may be is bounded by the
    // 10 s of waitUntil, not by a stopwatch: an upper bound flaked when the restart itself took
    // long on a loaded machine.
    expect(deliveredAt).toBeGreaterThanOrEqual(recorded - 20);
    expect(events('relay.deferred')).toHaveLength(1);
  });

  it('the reply table: a 5xx that says "try again later" is deferred; an admin rule bounces a 4xx', async () => {
    const s = await sink({
      rcptReply: (a) =>
        a === 'limited@example.net' ? { code: 550, message: '5.7.1 rate limit exceeded, try again later' } : a === 'gone@example.net' ? { code: 450, message: '4.1.1 mailbox gone forever' } : undefined,
    });
    await start(config(to(s), { retry: [3_600_000], reply_rules: [{ match: 'mailbox gone forever', action: 'bounce', reason: 'this site says 450 for unknown users' }] }));
    await queueMessage(h.spool, envelope('alice@example.org', ['limited@example.net', 'gone@example.net']), message('rules'));
    await waitUntil(async () => notices(s).length === 1 && events('relay.deferred').length === 1, 10_000, 'one deferred, one bounced');
    expect(events('relay.deferred')[0]).toMatchObject({ recipients: 1, reason: expect.stringMatching(/^550 5\.7\.1 rate limit/), note: expect.stringMatching(/temporary/) });
    const dsn = await parseDsn(notices(s)[0]!.data);
    expect(dsn.recipients).toEqual([expect.objectContaining({ 'final-recipient': 'rfc822; gone@example.net', action: 'failed' })]);
  });

  it('hold keeps an entry from delivery, even through flush; release delivers it; delete removes it', async () => {
    const port = await freePort();
    await start(config({ kind: 'smtp', host: '127.0.0.1', port, tls: 'none' }, { retry: [3_600_000] }));
    const keep = await queueMessage(h.spool, envelope('alice@example.org', ['k@example.net']), message('keep'));
    const drop = await queueMessage(h.spool, envelope('alice@example.org', ['d@example.net']), message('drop'));
    await waitUntil(async () => (await h.spool.list('deferred')).length === 2, 10_000, 'both deferred');
    const id = keep.split('.')[0]!;
    expect((await holdEntries(h.spool, id)).done).toEqual([`deferred/${keep}`]);
    expect((await deleteEntries(h.spool, drop.split('.')[0]!)).done).toEqual([`deferred/${drop}`]);
    const s = await sink({ port });
    expect((await flushDeferred(h.spool)).done).toEqual([]);
    await new Promise((r) => setTimeout(r, 400));
    expect(s.transactions).toEqual([]);
    expect(await h.spool.list('hold')).toEqual([keep]);
    expect((await releaseEntries(h.spool, id)).done).toEqual([`hold/${keep}`]);
    await s.waitFor(1);
    await drained();
    expect(s.transactions.map((t) => t.rcptTo)).toEqual([['k@example.net']]);
    expect(await h.spool.list('hold')).toEqual([]);
  });
});
