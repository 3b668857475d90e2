/**
 * Loop prevention by address (RFC 5321 §5.1, as Postfix's smtp client does it with
 * inet_interfaces and proxy_interfaces): which address:port is this gateway, and how planMx drops
 * an MX that resolves to it together with every MX at the same or a worse preference.
 */
import { describe, expect, it } from 'vitest';
import { planMx, type MxPlan } from '../../../src/relay/mx.js';
import { canonicalIp, ownAddressCheck } from '../../../src/relay/own-addresses.js';
import { formatConfigProblem } from '../../../src/core/index.js';
import { yamlConfigChecker } from '../../helpers/config.js';
import { FakeZone } from '../../helpers/fake-dns.js';

describe('ownAddressCheck', () => {
  const interfaces = () => ['127.0.0.1', '10.1.2.3', '::1', 'fe80::1%eth0', '2001:db8::25'];

  it('a specific listener: its address on its port, nothing else', () => {
    const own = ownAddressCheck({ listen: [{ host: '192.0.2.25', port: 25 }], interfaces });
    expect(own('192.0.2.25', 25)).toBe(true);
    expect(own('::ffff:192.0.2.25', 25)).toBe(true); // IPv4-mapped: the same host
    expect(own('192.0.2.25', 2525)).toBe(false); // another port is another server
    expect(own('192.0.2.26', 25)).toBe(false);
    expect(own('10.1.2.3', 25)).toBe(false); // an interface we do not listen on
  });

  it('a wildcard listener: every interface address of the machine, loopback and unspecified', () => {
    const own = ownAddressCheck({ listen: [{ host: '0.0.0.0', port: 25 }], interfaces });
    for (const a of ['10.1.2.3', '127.0.0.1', '127.0.0.53', '0.0.0.0', '::', '::1', 'fe80::1', '2001:DB8:0::25']) expect(own(a, 25), a).toBe(true);
    for (const a of ['10.1.2.4', '192.0.2.1', '2001:db8::26']) expect(own(a, 25), a).toBe(false);
    expect(own('10.1.2.3', 587)).toBe(false);
  });

  it('reads the interfaces at each check (addresses come and go)', () => {
    let list = ['10.0.0.1'];
    const own = ownAddressCheck({ listen: [{ host: '::', port: 25 }], interfaces: () => list });
    expect(own('10.0.0.2', 25)).toBe(false);
    list = ['10.0.0.1', '10.0.0.2'];
    expect(own('10.0.0.2', 25)).toBe(true);
  });

  it('a loopback listener is reached through 0.0.0.0 too; localhost counts as 127.0.0.1', () => {
    const own = ownAddressCheck({ listen: [{ host: 'localhost', port: 2525 }], interfaces });
    expect(own('127.0.0.1', 2525)).toBe(true);
    expect(own('0.0.0.0', 2525)).toBe(true);
    expect(own('127.0.0.2', 2525)).toBe(false); // bound to 127.0.0.1 only
  });

  it('relay.own_addresses (NAT, load balancer, front MTA) are ours on any port', () => {
    const own = ownAddressCheck({ listen: [{ host: '127.0.0.1', port: 2525 }], extra: ['203.0.113.25', '2001:DB8::0:1'], interfaces });
    expect(own('203.0.113.25', 25)).toBe(true);
    expect(own('2001:db8::1', 465)).toBe(true);
    expect(own('203.0.113.26', 25)).toBe(false);
  });

  it('is never confused by what is not an address', () => {
    const own = ownAddressCheck({ listen: [{ host: '0.0.0.0', port: 25 }], extra: ['not-an-ip'], interfaces });
    expect(own('not-an-ip', 25)).toBe(false);
    expect(own('', 25)).toBe(false);
    expect(canonicalIp('[::1]')).toBeUndefined();
  });
});

describe('planMx with our own addresses', () => {
  const ours = new Set(['198.51.100.25', '2001:db8::25']);
  const isOwnAddress = (a: string) => ours.has(a);
  const opts = { self: ['mx.postern.test'], random: () => 0, isOwnAddress };
  const hostsOf = (plan: MxPlan) => (plan.kind === 'hosts' ? plan.targets.map((t) => t.host) : plan);
  const loop = { kind: 'failed', reply: 'mail for example.org loops back to myself', dsn: '5.4.6' };

  const zone = new FakeZone({
    'example.org': { mx: [[5, 'primary.example.org'], [10, 'alias-of-us.example.org'], [10, 'peer.example.org'], [20, 'backup.example.org']] },
    'primary.example.org': { a: ['192.0.2.1'] },
    'alias-of-us.example.org': { a: ['192.0.2.99'], aaaa: ['2001:db8::25'] },
    'peer.example.org': { a: ['192.0.2.2'] },
    'backup.example.org': { a: ['192.0.2.3'] },
  });

  it('drops an MX whose name is not ours but whose address is, and every MX at its preference or worse', async () => {
    expect(hostsOf(await planMx('example.org', zone, opts))).toEqual(['primary.example.org']);
    // Without the address check the same zone would send to us at preference 10.
    expect(hostsOf(await planMx('example.org', zone, { self: opts.self, random: opts.random }))).toContain('alias-of-us.example.org');
  });

  it('bounces 5.4.6 when an MX at the best preference resolves to us', async () => {
    const z = new FakeZone({
      'example.org': { mx: [[10, 'a.example.org'], [10, 'b.example.org'], [20, 'c.example.org']] },
      'a.example.org': { a: ['192.0.2.1'] },
      'b.example.org': { a: ['198.51.100.25'] },
      'c.example.org': { a: ['192.0.2.3'] },
    });
    expect(await planMx('example.org', z, opts)).toEqual(loop);
  });

  it('applies to the implicit MX and to an MX given as an address', async () => {
    expect(await planMx('example.org', new FakeZone({ 'example.org': { a: ['198.51.100.25'] } }), opts)).toEqual(loop);
    expect(await planMx('example.org', new FakeZone({ 'example.org': { mx: [[10, '198.51.100.25']] } }), opts)).toEqual(loop);
  });

  it('bounces mail to an address literal of ours (Postfix would deliver it locally; we have no local delivery)', async () => {
    expect(await planMx('[198.51.100.25]', zone, opts)).toEqual({ kind: 'failed', reply: 'mail for [198.51.100.25] loops back to myself', dsn: '5.4.6' });
    expect(await planMx('[IPv6:2001:db8::25]', zone, opts)).toMatchObject({ kind: 'failed', dsn: '5.4.6' });
    expect(hostsOf(await planMx('[192.0.2.1]', zone, opts))).toEqual(['[192.0.2.1]']);
  });
});

describe('relay.own_addresses in postern.yaml', () => {
  const yc = yamlConfigChecker();

  it('takes IP addresses, none by default, and names anything else', async () => {
    const none = await yc.check('hostname: gw.example.com\n');
    expect(none.ok && none.config.relay.own_addresses).toEqual([]);
    const good = await yc.check('relay:\n  own_addresses: [203.0.113.25, "2001:db8::25"]\n');
    expect(good.ok && good.config.relay.own_addresses).toEqual(['203.0.113.25', '2001:db8::25']);
    const bad = await yc.check('relay:\n  own_addresses: [mx.example.com, 0x7f.1]\n');
    expect(bad.ok ? [] : bad.problems.map(formatConfigProblem)).toEqual([
      expect.stringMatching(/relay\.own_addresses\.0: "mx\.example\.com" — expected an IP address$/),
      expect.stringMatching(/relay\.own_addresses\.1: "0x7f\.1" — expected an IP address$/),
    ]);
  });
});
