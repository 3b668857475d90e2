/**
 * The relay as a mail admin reads it: deferral reasons in Postfix's words (never a library's error
 * code) in the log line, the entry's record (queue show) and the DSN, and next-hop connections
 * cached only briefly (Postfix's smtp_connection_cache_time_limit). The next hop is Postfix's own
 * smtp-sink, made to hang up or stall at each step of the conversation.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Config, Route } from '../../src/config/types.js';
import { entryState } from '../../src/relay/index.js';
import { testConfig } from '../helpers/config.js';
import { parseDsn } from '../helpers/dsn-parse.js';
import { freePort } from '../helpers/gateway.js';
import { startPostfixSink, type PostfixSink } from '../helpers/postfix-sink.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';

const body = Buffer.from('From: alice@example.org\r\nTo: bob@example.net\r\nSubject: diagnostics\r\n\r\nhello\r\n');

describe('relay: failures worded as Postfix words them', () => {
  const h = useRelayHarness('postern-relay-diag-');
  let sinks: PostfixSink[] = [];
  afterEach(async () => {
    for (const s of sinks) await s.stop();
    sinks = [];
  });
  const postfixSink = async (args: string[], verbose = false) => {
    const s = await startPostfixSink(args, { verbose });
    sinks.push(s);
    return s;
  };
  const to = (port: number): Route => ({ pattern: 'example.net', target: { kind: 'smtp', host: '127.0.0.1', port, tls: 'may' } });

  async function deferralOf(port: number, over: Partial<Config['relay']> = {}): Promise<Record<string, unknown>> {
    await h.start(testConfig(h.dir, { relay: { routes: [to(port)], retry: [3_600_000], ...over } as Config['relay'] }));
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await waitUntil(async () => (await h.spool.list('deferred')).includes(name), 15_000, `deferred; logs: ${JSON.stringify(h.logs)}`);
    // What `queue show` prints comes from the entry's record: the same words.
    const status = await h.spool.readStatus('deferred', name);
    const rcpt = entryState(envelope('alice@example.org', ['bob@example.net']), status).recipients[0]!;
    const d = h.events('relay.deferred')[0]!;
    expect(rcpt.last).toMatchObject({ reply: d.reason, dsn: d.dsn });
    expect(rcpt.last).not.toHaveProperty('remote');
    expect(String(d.reason)).not.toMatch(/\bE[A-Z]{4,}\b/); // ESOCKET, ECONNECTION, ETIMEDOUT …
    return d;
  }

  it('a refused connection: "connect to host[addr]:port: Connection refused", 4.4.1', async () => {
    const port = await freePort();
    expect(await deferralOf(port)).toMatchObject({ reason: `connect to 127.0.0.1[127.0.0.1]:${port}: Connection refused`, dsn: '4.4.1' });
  });

  it.each([
    ['CONNECT', 'receiving the initial server greeting'],
    ['EHLO', 'performing the EHLO handshake'],
    ['MAIL', 'sending MAIL FROM'],
    ['.', 'sending end of data -- message may be sent more than once'],
  ])('a next hop that hangs up after %s: "lost connection with … while %s", 4.4.2', async (command, phase) => {
    const s = await postfixSink(['-q', command]);
    expect(await deferralOf(s.port)).toMatchObject({ reason: `lost connection with 127.0.0.1[127.0.0.1] while ${phase}`, dsn: '4.4.2' });
  });

  it('a next hop that never greets: "conversation with … timed out while receiving the initial server greeting"', async () => {
    // The relay harness waits 2 s for a greeting; this sink waits 30 s before giving one.
    const s = await postfixSink(['-W', 'connect:30']);
    expect(await deferralOf(s.port)).toMatchObject({
      reason: 'conversation with 127.0.0.1[127.0.0.1] timed out while receiving the initial server greeting',
      dsn: '4.4.2',
    });
  });

  it('the DSN for a connection failure: Status 4.4.1, an X-Postern diagnostic, no Remote-MTA', async () => {
    const port = await freePort();
    const bounces = await h.sink();
    await h.start(
      testConfig(h.dir, {
        relay: { routes: [to(port), { pattern: '*', target: { kind: 'smtp', host: bounces.host, port: bounces.port, tls: 'none' } }], retry: [3_600_000], delay_warning: 0 } as Config['relay'],
      }),
    );
    await queueMessage(h.spool, envelope('alice@example.org', [{ address: 'bob@example.net', notify: ['DELAY', 'FAILURE'] }]), body);
    await bounces.waitFor(1, 15_000);
    const dsn = await parseDsn(bounces.transactions[0]!.data);
    expect(dsn.recipients).toHaveLength(1);
    expect(dsn.recipients[0]).toMatchObject({
      action: 'delayed',
      status: '4.4.1',
      'diagnostic-code': `X-Postern; connect to 127.0.0.1[127.0.0.1]:${port}: Connection refused`,
    });
    expect(dsn.recipients[0]).not.toHaveProperty('remote-mta');
    expect(dsn.text).toContain(`<bob@example.net>: connect to 127.0.0.1[127.0.0.1]:${port}: Connection refused`);
  });
});

describe('relay: next-hop connection cache', () => {
  const h = useRelayHarness('postern-relay-cache-');
  let sink: PostfixSink | undefined;
  afterEach(async () => {
    await sink?.stop();
    sink = undefined;
  });

  it('reuses a connection for the next message, then says QUIT once it has been idle for connection_cache_time', async () => {
    sink = await startPostfixSink([], { verbose: true });
    const lines = sink.lines;
    const count = (l: string) => lines.filter((x) => x === l).length;
    await h.start(
      testConfig(h.dir, {
        // One delivery at a time: the second message waits for the first, then finds its connection idle.
        relay: { routes: [{ pattern: '*', target: { kind: 'smtp', host: sink.host, port: sink.port, tls: 'may' } }], concurrency: 1, connection_cache_time: 1000 } as Config['relay'],
      }),
    );
    await queueMessage(h.spool, envelope('alice@example.org', ['a@example.net']), body);
    await queueMessage(h.spool, envelope('alice@example.org', ['b@example.net']), body);
    // The relay stays up: only the cache's idle limit can end the session, and it ends it politely.
    await waitUntil(async () => count('disconnect') === 1, 15_000, `QUIT after idling; sink: ${lines.join(' | ')}`);
    expect(lines.filter((l) => l.startsWith('connect (')).length).toBe(1);
    expect(count('.')).toBe(2);
    const quit = lines.indexOf('QUIT');
    expect(quit).toBeGreaterThan(lines.lastIndexOf('.'));
    expect(lines.indexOf('disconnect')).toBeGreaterThan(quit);
  });
});
