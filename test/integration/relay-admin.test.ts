/**
 * Admin commands during a delivery, against a real next hop (smtp-server) that takes its time
 * before it answers DATA: the relay delivers from its own claim (delivering/), so a hold given
 * meanwhile is honoured when the attempt ends, and nothing is delivered twice.
 */
import { describe, expect, it } from 'vitest';
import type { Config, Route } from '../../src/config/types.js';
import { flushDeferred, holdEntries, releaseEntries } from '../../src/spool/index.js';
import { testConfig } from '../helpers/config.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';
import type { SmtpSink } from '../helpers/sink-smtp.js';

const message = Buffer.from('From: alice@example.org\r\nTo: b@example.net\r\nSubject: slow\r\n\r\nhello\r\n');

describe('relay: admin commands during a delivery', () => {
  const h = useRelayHarness('postern-relay-admin-');
  const to = (s: SmtpSink): Route['target'] => ({ kind: 'smtp', host: s.host, port: s.port, tls: 'none' });
  const config = (s: SmtpSink): Config =>
    testConfig(h.dir, { relay: { routes: [{ pattern: '*', target: to(s) }], retry: [3_600_000], concurrency: 4 } as unknown as Config['relay'] });
  const inQueue = (q: 'hold' | 'deferred' | 'outgoing' | 'delivering') => h.spool.list(q);

  it('hold while the next hop answers 451: the entry goes to hold/, not deferred/; release then delivers it once', async () => {
    let attempts = 0;
    const s = await h.sink({ dataDelayMs: 600, dataReply: () => (++attempts === 1 ? { code: 451, message: '4.3.0 try again' } : undefined) });
    await h.start(config(s));
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['b@example.net']), message);
    await waitUntil(async () => s.transactions.length === 1, 10_000, 'delivery in progress');
    const r = await holdEntries(h.spool, name.split('.')[0]!);
    expect(r).toEqual({ done: [], marked: [expect.stringMatching(new RegExp(`^delivering/${name.replace('.', '\\.')}\\.\\d+$`))], busy: [] });
    // The move is the fact and its log line follows it: wait for both.
    await waitUntil(async () => (await inQueue('hold')).includes(name) && h.events('relay.held').length > 0, 10_000, 'held after the attempt');
    expect(await inQueue('deferred')).toEqual([]);
    expect(h.events('relay.held')).toEqual([expect.objectContaining({ name, reason: expect.stringMatching(/queue hold/) })]);
    // Held for real: a flush does not take it.
    expect((await flushDeferred(h.spool)).done).toEqual([]);

    expect((await releaseEntries(h.spool, name)).done).toEqual([`hold/${name}`]);
    await waitUntil(async () => s.transactions.length === 2 && (await inQueue('outgoing')).length + (await inQueue('delivering')).length === 0, 10_000, 'delivered after release');
    expect(attempts).toBe(2);
    expect(h.events('relay.delivered')).toHaveLength(1);
  });

  it('hold while the next hop accepts: delivered once, nothing left to hold', async () => {
    const s = await h.sink({ dataDelayMs: 600 });
    await h.start(config(s));
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['b@example.net']), message);
    await waitUntil(async () => s.transactions.length === 1, 10_000, 'delivery in progress');
    expect((await holdEntries(h.spool, name)).marked).toHaveLength(1);
    await waitUntil(async () => h.events('relay.delivered').length === 1, 10_000, 'delivered');
    await waitUntil(async () => (await inQueue('delivering')).length === 0, 10_000, 'claim given up');
    expect(await inQueue('hold')).toEqual([]);
    expect(await inQueue('outgoing')).toEqual([]);
    expect(s.transactions).toHaveLength(1);
  });
});
