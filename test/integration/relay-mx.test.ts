/**
 * MX routing end to end: the relay resolves recipient domains through a fake zone and delivers to
 * real SMTP servers listening on several loopback addresses (127.0.0.3, 127.0.0.4 …) on one port,
 * standing in for a domain's mail exchangers; 127.0.0.2 has nothing listening (a host that is down).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/types.js';
import { testConfig } from '../helpers/config.js';
import { parseDsn } from '../helpers/dsn-parse.js';
import { FakeZone, type ZoneNode } from '../helpers/fake-dns.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';
import type { SinkOptions, SmtpSink } from '../helpers/sink-smtp.js';

const body = Buffer.from('From: alice@example.org\r\nTo: bob@example.net\r\nSubject: via MX\r\n\r\nhello\r\n');

describe('relay: mx routes', () => {
  const h = useRelayHarness('postern-relay-mx-');
  /** The "exchangers" by loopback address; all listen on one port, as MX hosts listen on 25. */
  const hosts = new Map<string, SmtpSink>();
  let port: number;

  beforeEach(async () => {
    hosts.clear();
    // The first sink picks the port, the others bind the same port on their own address.
    const first = await h.sink({ host: '127.0.0.3' });
    hosts.set(first.host, first);
    port = first.port;
  });

  async function mx(host: string, opts: SinkOptions = {}): Promise<SmtpSink> {
    const existing = hosts.get(host);
    if (existing && !Object.keys(opts).length) return existing;
    await existing?.close();
    const s = await h.sink({ ...opts, host, port });
    hosts.set(host, s);
    return s;
  }

  async function start(zone: Record<string, ZoneNode>, tls: 'may' | 'encrypt' = 'may', over: Partial<Config['relay']> = {}): Promise<FakeZone> {
    const resolver = new FakeZone({
      // Bounces to alice@example.org go by MX too.
      'example.org': { mx: [[10, 'mx.example.org']] },
      'mx.example.org': { a: ['127.0.0.3'] },
      ...zone,
    });
    const config = testConfig(h.dir, { relay: { routes: [{ pattern: '*', target: { kind: 'mx', tls } }], retry: [3_600_000], concurrency: 4, ...over } as Config['relay'] });
    await h.start(config, { resolver, mxPort: port, smtpTimeouts: { connection: 1000, greeting: 2000, socket: 5000 } });
    return resolver;
  }

  const events = h.events;
  const bounces = (s: SmtpSink) => s.transactions.filter((t) => t.mailFrom === '');
  const drained = () => waitUntil(async () => (await h.spool.list('outgoing')).length + (await h.spool.list('delivering')).length === 0, 10_000, 'outgoing empty');

  it('delivers to the most preferred exchanger', async () => {
    const low = await mx('127.0.0.3');
    const high = await mx('127.0.0.4');
    await start({
      'example.net': { mx: [[20, 'mx2.example.net'], [10, 'mx1.example.net']] },
      'mx1.example.net': { a: ['127.0.0.4'] },
      'mx2.example.net': { a: ['127.0.0.3'] },
    });
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await high.waitFor(1);
    await drained();
    expect(high.transactions[0]!.rcptTo).toEqual(['bob@example.net']);
    expect(high.transactions[0]!.data.equals(body)).toBe(true);
    expect(low.transactions).toEqual([]);
  });

  it('falls back to the next exchanger when the preferred one is down', async () => {
    const backup = await mx('127.0.0.4');
    await start({
      'example.net': { mx: [[10, 'down.example.net'], [20, 'backup.example.net']] },
      'down.example.net': { a: ['127.0.0.2'] },
      'backup.example.net': { a: ['127.0.0.4'] },
    });
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await backup.waitFor(1);
    await drained();
    expect(events('relay.deferred')).toEqual([]);
  });

  it('uses the address records of a domain without MX (RFC 5321 5.1 fallback)', async () => {
    const host = await mx('127.0.0.4');
    await start({ 'example.net': { a: ['127.0.0.4'] } });
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await host.waitFor(1);
    await drained();
  });

  it('sends one transaction per domain, and each domain to its own exchanger', async () => {
    const net = await mx('127.0.0.4');
    const com = await mx('127.0.0.5');
    await start({ 'example.net': { a: ['127.0.0.4'] }, 'example.com': { mx: [[5, 'in.example.com']] }, 'in.example.com': { a: ['127.0.0.5'] } });
    await queueMessage(h.spool, envelope('alice@example.org', ['a@example.net', 'b@example.com', 'c@example.net']), body);
    await net.waitFor(1);
    await com.waitFor(1);
    expect(net.transactions.map((t) => t.rcptTo)).toEqual([['a@example.net', 'c@example.net']]);
    expect(com.transactions.map((t) => t.rcptTo)).toEqual([['b@example.com']]);
  });

  it.each([
    ['a domain that does not exist (NXDOMAIN)', {}, /^5\.1\.2$/, /^X-Postern; Host or domain name not found\. Name service error for name=example\.net type=MX: Host not found$/],
    ['a null MX (RFC 7505)', { 'example.net': { mx: [[0, '']] } }, /^5\.1\.10$/, /^X-Postern; Domain example\.net does not accept mail \(nullMX\)$/],
  ] as const)('bounces mail to %s', async (_what, zone, status, diag) => {
    const bounceHost = await mx('127.0.0.3');
    await start(zone as Record<string, ZoneNode>);
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await waitUntil(async () => bounces(bounceHost).length === 1, 10_000, 'bounce');
    const dsn = await parseDsn(bounces(bounceHost)[0]!.data);
    expect(dsn.recipients[0]!.status).toMatch(status);
    expect(dsn.recipients[0]!['diagnostic-code']).toMatch(diag);
    expect(bounceHost.transactions.filter((t) => t.mailFrom !== '')).toEqual([]);
  });

  it('defers, keeping the entry, when DNS fails temporarily or every exchanger is down', async () => {
    await start({
      'example.net': { fail: { mx: 'ESERVFAIL' } },
      'example.com': { mx: [[10, 'down1.example.com'], [20, 'down2.example.com']] },
      'down1.example.com': { a: ['127.0.0.2'] },
      'down2.example.com': { a: ['127.0.0.6'] },
    });
    const a = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    const b = await queueMessage(h.spool, envelope('alice@example.org', ['carol@example.com']), body);
    await waitUntil(async () => (await h.spool.list('deferred')).length === 2, 10_000, 'both deferred');
    expect((await h.spool.list('deferred')).sort()).toEqual([a, b].sort());
    const reasons = events('relay.deferred').map((e) => String(e.reason));
    expect(reasons).toContain('Host or domain name not found. Name service error for name=example.net type=MX: Host not found, try again');
    // Every exchanger down: the last one tried is named, as Postfix names it.
    expect(reasons).toContain(`connect to down2.example.com[127.0.0.6]:${port}: Connection refused`);
    expect([...hosts.values()].flatMap((s) => s.transactions)).toEqual([]);
  });

  it('with tls: encrypt, an exchanger without STARTTLS gets nothing in clear', async () => {
    const plain = await mx('127.0.0.4', { starttls: false });
    await start({ 'example.net': { a: ['127.0.0.4'] } }, 'encrypt');
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await waitUntil(async () => (await h.spool.list('deferred')).includes(name), 10_000, 'deferred');
    expect(String(events('relay.deferred')[0]!.reason)).toMatch(/TLS is required/);
    expect(plain.transactions).toEqual([]);
    expect(plain.rcptAttempts).toEqual([]);
  });

  it('delivers over STARTTLS to an exchanger that offers it, by its name (SNI)', async () => {
    const tlsHost = await mx('127.0.0.4', { starttls: true });
    await start({ 'example.net': { mx: [[1, 'secure.example.net']] }, 'secure.example.net': { a: ['127.0.0.4'] } }, 'encrypt');
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await tlsHost.waitFor(1);
    expect(tlsHost.transactions[0]!.secure).toBe(true);
    // The sink has the message a moment before the relay has read the 250 and logged it.
    await waitUntil(async () => events('relay.delivered').length > 0, 10_000, 'relay.delivered logged');
    expect(events('relay.delivered')[0]).toMatchObject({ to: 'mx (tls encrypt) example.net' });
  });
});
