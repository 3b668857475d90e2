/**
 * The relay against real next hops: an in-process smtp-server sink (with and without STARTTLS,
 * implicit TLS, scripted 4xx/5xx replies) and maildirs, fed through the spool exactly as the
 * worker feeds it (createIncoming → claim → commitOutgoing).
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Config, Route } from '../../src/config/types.js';
import type { Envelope } from '../../src/core/index.js';
import type { Relay } from '../../src/relay/index.js';
import { testConfig } from '../helpers/config.js';
import { freePort } from '../helpers/gateway.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';
import type { SinkOptions, SmtpSink } from '../helpers/sink-smtp.js';

// Lines that SMTP must dot-stuff (a lone "." would end DATA), 8-bit bytes, an empty line at the end.
const tricky = Buffer.from(
  'Received: from client by gw.test.example\r\nFrom: a@example.org\r\nTo: b@example.net\r\nSubject: dots\r\n\r\n' +
    '.leading dot\r\n..two dots\r\n.\r\n. \r\nmiddle . dot\r\n\xe4\xf6\xfc\x00\xff 8-bit\r\n' +
    'x'.repeat(990) +
    '\r\n\r\n',
  'latin1',
);

describe('relay', () => {
  const h = useRelayHarness('postern-relay-');
  const sink = (opts: SinkOptions = {}): Promise<SmtpSink> => h.sink(opts);

  const queue = (env: Envelope, body: Buffer = tricky) => queueMessage(h.spool, env, body);

  function config(routes: Route[], retry = [50]): Config {
    return testConfig(h.dir, { relay: { routes, retry, concurrency: 4 } });
  }

  const start = (routes: Route[], retry = [50]): Promise<Relay> => h.start(config(routes, retry));
  const events = h.events;
  const waitEvent = (event: string, n = 1) => waitUntil(async () => events(event).length >= n, 10_000, `${n}x ${event}; logs: ${JSON.stringify(h.logs)}`);
  /** outgoing/ (and delivering/ and deferred/, where attempts run and retries wait) empty: every entry has its final answers. */
  const queueEmpty = (q: 'outgoing' | 'hold') =>
    waitUntil(
      async () => (await h.spool.list(q)).length === 0 && (q !== 'outgoing' || (await h.spool.list('deferred')).length + (await h.spool.list('delivering')).length === 0),
      10_000,
      `${q} empty`,
    );
  const smtpTo = (s: SmtpSink, tls: 'may' | 'encrypt' | 'none' = 'may'): Route['target'] => ({ kind: 'smtp', host: s.host, port: s.port, tls });

  it('delivers byte-identical over STARTTLS, with <> as MAIL FROM and dot lines intact, in one transaction', async () => {
    const s = await sink({ starttls: true });
    await start([{ pattern: 'example.net', target: smtpTo(s) }]);
    const name = await queue(envelope('', ['b@example.net', 'Carol@Example.NET']));
    await s.waitFor(1);
    const [t] = s.transactions;
    expect(t!.data.equals(tricky)).toBe(true);
    expect(t!.mailFrom).toBe('');
    // The domain goes out lower-cased (and punycoded), the local part as given.
    expect(t!.rcptTo).toEqual(['b@example.net', 'Carol@example.net']);
    expect(t!.secure).toBe(true);
    await queueEmpty('outgoing');
    const [d] = events('relay.delivered');
    expect(d).toMatchObject({ queueId: name.split('.')[0], to: `smtp://127.0.0.1:${s.port}`, recipients: 2 });
    expect(typeof d!.ms).toBe('number');
    // Never the body in the logs.
    expect(JSON.stringify(h.logs)).not.toContain('leading dot');
  });

  it('sends the sender as given and BODY=8BITMIME when the message came in with it', async () => {
    const s = await sink();
    await start([{ pattern: '*', target: smtpTo(s, 'none') }]);
    await queue(envelope('alice@example.org', ['b@example.net'], { body: '8BITMIME' }));
    await s.waitFor(1);
    expect(s.transactions[0]).toMatchObject({ mailFrom: 'alice@example.org', secure: false, body: '8BITMIME' });
    expect(s.transactions[0]!.data.equals(tricky)).toBe(true);
  });

  it('delivers over implicit TLS to smtps://', async () => {
    const s = await sink({ secure: true });
    await start([{ pattern: '*', target: { kind: 'smtps', host: s.host, port: s.port } }]);
    await queue(envelope('alice@example.org', ['b@example.net']));
    await s.waitFor(1);
    expect(s.transactions[0]!.secure).toBe(true);
    expect(s.transactions[0]!.data.equals(tricky)).toBe(true);
    await queueEmpty('outgoing');
  });

  it('does not use STARTTLS with tls: none even when offered', async () => {
    const s = await sink({ starttls: true });
    await start([{ pattern: '*', target: smtpTo(s, 'none') }]);
    await queue(envelope('alice@example.org', ['b@example.net']));
    await s.waitFor(1);
    expect(s.transactions[0]!.secure).toBe(false);
  });

  it('with tls: required and a next hop without STARTTLS defers and sends nothing in clear', async () => {
    const s = await sink({ starttls: false });
    await start([{ pattern: '*', target: smtpTo(s, 'encrypt') }]);
    const name = await queue(envelope('alice@example.org', ['b@example.net']));
    await waitEvent('relay.deferred', 2); // retried, still deferred
    const d = events('relay.deferred')[0]!;
    expect(d).toMatchObject({ queueId: name.split('.')[0], attempt: 1 });
    expect(events('relay.deferred')[1]).toMatchObject({ attempt: 2 });
    expect(String(d.reason)).toMatch(/TLS is required/);
    expect(s.rcptAttempts).toEqual([]);
    expect(s.transactions).toEqual([]);
    await waitUntil(async () => (await h.spool.list('deferred')).includes(name), 5000, 'entry in deferred/');
    expect(await h.spool.list('outgoing')).toEqual([]);
    expect(events('relay.bounce')).toEqual([]);
  });

  it('defers on 4xx and on retry sends only to the recipient that was deferred', async () => {
    let greylisted = true;
    const s = await sink({
      rcptReply: (a) => {
        if (a !== 'grey@example.net' || !greylisted) return undefined;
        greylisted = false;
        return { code: 450, message: '4.7.1 greylisted, try again' };
      },
    });
    await start([{ pattern: '*', target: smtpTo(s) }]);
    await queue(envelope('alice@example.org', ['ok@example.net', 'grey@example.net']));
    await s.waitFor(2);
    expect(s.transactions.map((t) => t.rcptTo)).toEqual([['ok@example.net'], ['grey@example.net']]);
    expect(s.transactions.every((t) => t.data.equals(tricky))).toBe(true);
    await queueEmpty('outgoing');
    expect(events('relay.deferred')).toHaveLength(1);
    expect(events('relay.deferred')[0]).toMatchObject({ recipients: 1, attempt: 1, reason: expect.stringMatching(/^450 .*greylisted/) });
    expect(events('relay.delivered')).toHaveLength(2);
  });

  it('defers when the next hop is unreachable, keeping the entry', async () => {
    const port = await freePort();
    await start([{ pattern: '*', target: { kind: 'smtp', host: '127.0.0.1', port, tls: 'may' } }]);
    const name = await queue(envelope('alice@example.org', ['b@example.net']));
    await waitEvent('relay.deferred');
    // As Postfix words it (dsn=4.4.1), not as the SMTP library codes it.
    expect(events('relay.deferred')[0]).toMatchObject({ reason: `connect to 127.0.0.1[127.0.0.1]:${port}: Connection refused`, dsn: '4.4.1' });
    await waitUntil(async () => (await h.spool.list('deferred')).includes(name), 5000, 'entry in deferred/');
    expect(await h.spool.list('outgoing')).toEqual([]);
  });

  it('splits recipients by route into one transaction per next hop', async () => {
    const net = await sink();
    const org = await sink();
    await start([
      { pattern: 'example.net', target: smtpTo(net) },
      { pattern: '*.example.org', target: smtpTo(org) },
    ]);
    await queue(envelope('alice@example.org', ['a@example.net', 'b@mx.example.org', 'c@example.net']));
    await net.waitFor(1);
    await org.waitFor(1);
    expect(net.transactions.map((t) => t.rcptTo)).toEqual([['a@example.net', 'c@example.net']]);
    expect(org.transactions.map((t) => t.rcptTo)).toEqual([['b@mx.example.org']]);
    await queueEmpty('outgoing');
  });

  it('delivers to a maildir, one file per recipient, byte-exact after the added headers', async () => {
    const md = join(h.dir, 'mail');
    await start([{ pattern: '*', target: { kind: 'maildir', path: md } }]);
    await queue(envelope('alice@example.org', ['a@example.com', 'b@example.com']));
    await queueEmpty('outgoing');
    const names = await readdir(join(md, 'new'));
    expect(names).toHaveLength(2);
    const files = await Promise.all(names.map((n) => readFile(join(md, 'new', n))));
    const rcpts = files.map((f) => {
      const head = /^Return-Path: <alice@example\.org>\r\nDelivered-To: (\S+)\r\n/.exec(f.toString('latin1'))!;
      expect(f.subarray(head[0].length).equals(tricky)).toBe(true);
      return head[1];
    });
    expect(rcpts.sort()).toEqual(['a@example.com', 'b@example.com']);
    expect(events('relay.delivered')[0]).toMatchObject({ to: `maildir:${md}`, recipients: 2 });
  });

  it('applies new routes on reload', async () => {
    const md = join(h.dir, 'mail');
    const r = await start([{ pattern: '*', target: { kind: 'smtp', host: '127.0.0.1', port: await freePort(), tls: 'may' } }]);
    await queue(envelope('alice@example.org', ['b@example.net']));
    await waitEvent('relay.deferred');
    r.reload(config([{ pattern: '*', target: { kind: 'maildir', path: md } }]));
    await queueEmpty('outgoing');
    expect(await readdir(join(md, 'new'))).toHaveLength(1);
  });

  it('holds an entry when a recipient has no route, before sending anything', async () => {
    const s = await sink();
    await start([{ pattern: 'example.net', target: smtpTo(s) }]);
    const name = await queue(envelope('alice@example.org', ['a@example.net', 'b@nowhere.test']));
    await waitEvent('relay.no_route');
    expect(events('relay.no_route')[0]).toMatchObject({ recipients: ['b@nowhere.test'] });
    expect(await h.spool.list('hold')).toEqual([name]);
    expect(s.transactions).toEqual([]);
  });

  it('moves an unreadable entry to corrupt/ with its reason', async () => {
    await writeFile(join(h.spool.dir('outgoing'), 'BROKEN.0'), 'POSTERN-SPOOL/1\n{"id":"BROKEN","envelope":{"recipients":[]}}\nbody without end marker');
    await start([{ pattern: '*', target: { kind: 'maildir', path: join(h.dir, 'mail') } }]);
    await waitEvent('relay.corrupt');
    expect((await readdir(h.spool.dir('corrupt'))).sort()).toEqual(['BROKEN.0', 'BROKEN.0.reason']);
    expect(await readFile(join(h.spool.dir('corrupt'), 'BROKEN.0.reason'), 'utf8')).toMatch(/end marker/);
    expect(await h.spool.list('outgoing')).toEqual([]);
  });

  it.each([
    ['claimed by a worker (active/)', 'active', '.99999'],
    ['reclaimed after a worker crash (incoming/)', 'incoming', ''],
  ] as const)('waits while the message is %s, then delivers', async (_what, q, suffix) => {
    const md = join(h.dir, 'mail');
    const name = await queue(envelope('alice@example.org', ['b@example.com']));
    // The worker may still rewrite this message's outputs: delivering now could send it twice.
    const marker = join(h.spool.dir(q), `${name.split('.')[0]}${suffix}`);
    await writeFile(marker, '');
    await start([{ pattern: '*', target: { kind: 'maildir', path: md } }]);
    await new Promise((r) => setTimeout(r, 300));
    expect(await h.spool.list('outgoing')).toEqual([name]);
    expect(events('relay.delivered')).toEqual([]);
    await rm(marker);
    await queueEmpty('outgoing');
    expect(await readdir(join(md, 'new'))).toHaveLength(1);
  });

  it('delivers many entries with bounded concurrency over pooled connections', async () => {
    const s = await sink();
    await start([{ pattern: '*', target: smtpTo(s) }]);
    const names = [];
    for (let i = 0; i < 30; i++) names.push(await queue(envelope('alice@example.org', [`r${i}@example.net`]), Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`)));
    await s.waitFor(30);
    await queueEmpty('outgoing');
    expect(new Set(s.transactions.map((t) => t.rcptTo[0])).size).toBe(30);
    for (const t of s.transactions) expect(t.data.toString()).toBe(`Subject: ${t.rcptTo[0]!.slice(1).split('@')[0]}\r\n\r\nbody ${t.rcptTo[0]!.slice(1).split('@')[0]}\r\n`);
  });

  it('close() lets a delivery in flight finish', async () => {
    const s = await sink({ dataDelayMs: 400 });
    const r = await start([{ pattern: '*', target: smtpTo(s) }]);
    await queue(envelope('alice@example.org', ['b@example.net']));
    await waitUntil(async () => s.rcptAttempts.length > 0, 10_000, 'delivery started');
    await r.close(5000);
    expect(s.transactions).toHaveLength(1);
    expect(await h.spool.list('outgoing')).toEqual([]);
  });

  it('close() gives up after the grace period and keeps the entry for the next run', async () => {
    // The next hop never answers the DATA (its reply is due in ten minutes): a close() that waited
    // for the delivery would never return, so its returning is the proof that it gave up — no
    // stopwatch (they flake on a loaded machine); the test's time-out guards against the hang.
    const s = await sink({ dataDelayMs: 600_000 });
    const r = await start([{ pattern: '*', target: smtpTo(s) }]);
    const name = await queue(envelope('alice@example.org', ['b@example.net']));
    await waitUntil(async () => s.rcptAttempts.length > 0, 10_000, 'delivery started');
    await r.close(100);
    await new Promise((res) => setTimeout(res, 100)); // the cut session reports back
    expect(await h.spool.list('outgoing')).toEqual([name]);
  });
});
