/**
 * Loops by address, end to end through the relay: an MX whose name is not ours but whose address
 * is one of our listen addresses (or relay.own_addresses) is never connected to; with it, every MX
 * at the same or a worse preference is dropped (RFC 5321 §5.1), and when nothing better is left
 * the sender gets a 5.4.6 bounce, as from Postfix ("mail for D loops back to myself"). Real SMTP
 * servers on loopback addresses stand in for the exchangers and for us (127.0.0.6).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/types.js';
import { testConfig } from '../helpers/config.js';
import { parseDsn } from '../helpers/dsn-parse.js';
import { FakeZone, type ZoneNode } from '../helpers/fake-dns.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';
import type { SmtpSink } from '../helpers/sink-smtp.js';

const body = Buffer.from('From: alice@example.org\r\nTo: bob@example.net\r\nSubject: loop?\r\n\r\nhello\r\n');
const US = '127.0.0.6';

describe('relay: an MX that resolves to us is a loop', () => {
  const h = useRelayHarness('postern-relay-loop-');
  let port: number;
  let senderMx: SmtpSink;
  let other: SmtpSink;
  let us: SmtpSink;

  beforeEach(async () => {
    senderMx = await h.sink({ host: '127.0.0.3' });
    port = senderMx.port;
    other = await h.sink({ host: '127.0.0.4', port });
    // Where our own listener would be: anything arriving here is mail we sent to ourselves.
    us = await h.sink({ host: US, port });
  });

  async function start(zone: Record<string, ZoneNode>, ownAddresses: string[] = []): Promise<void> {
    const resolver = new FakeZone({ 'example.org': { mx: [[10, 'mx.example.org']] }, 'mx.example.org': { a: ['127.0.0.3'] }, ...zone });
    const config = testConfig(h.dir, {
      smtp: { listen: [{ host: US, port }] },
      relay: { routes: [{ pattern: '*', target: { kind: 'mx', tls: 'may' } }], retry: [3_600_000], own_addresses: ownAddresses } as Config['relay'],
    });
    await h.start(config, { resolver, mxPort: port, smtpTimeouts: { connection: 1000, greeting: 2000, socket: 5000 } });
  }

  const bounces = () => senderMx.transactions.filter((t) => t.mailFrom === '');

  async function bounced(domain: string): Promise<void> {
    await waitUntil(async () => bounces().length === 1, 10_000, 'bounce to the sender');
    const dsn = await parseDsn(bounces()[0]!.data);
    expect(dsn.recipients[0]).toMatchObject({ status: '5.4.6', 'diagnostic-code': `X-Postern; mail for ${domain} loops back to myself` });
    expect(other.transactions).toEqual([]);
    expect(us.transactions).toEqual([]);
    expect(us.rcptAttempts).toEqual([]);
  }

  it('bounces 5.4.6 when the best MX, under another name, is our listen address', async () => {
    await start({
      'example.net': { mx: [[10, 'inbound.example.net'], [20, 'backup.example.net']] },
      'inbound.example.net': { a: [US] },
      'backup.example.net': { a: ['127.0.0.4'] },
    });
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await bounced('example.net');
  });

  it('keeps only the better MX hosts: one that is down defers the mail, we are not tried', async () => {
    await start({
      'example.net': { mx: [[5, 'down.example.net'], [10, 'inbound.example.net'], [20, 'backup.example.net']] },
      'down.example.net': { a: ['127.0.0.2'] },
      'inbound.example.net': { a: ['127.0.0.9', US] },
      'backup.example.net': { a: ['127.0.0.4'] },
    });
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await waitUntil(async () => (await h.spool.list('deferred')).includes(name), 10_000, 'deferred');
    expect(String(h.events('relay.deferred')[0]!.reason)).toBe(`connect to down.example.net[127.0.0.2]:${port}: Connection refused`);
    expect(other.transactions).toEqual([]);
    expect(us.transactions).toEqual([]);
    expect(bounces()).toEqual([]);
  });

  it('counts relay.own_addresses (NAT, a front MTA) as ours', async () => {
    await start({ 'example.net': { mx: [[10, 'nat.example.net']] }, 'nat.example.net': { a: ['127.0.0.4'] } }, ['127.0.0.4']);
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await bounced('example.net');
  });

  it('bounces mail to an address literal of ours', async () => {
    await start({});
    await queueMessage(h.spool, envelope('alice@example.org', [`bob@[${US}]`]), body);
    await bounced(`[${US}]`);
  });
});
