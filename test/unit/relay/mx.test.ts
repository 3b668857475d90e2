import { describe, expect, it } from 'vitest';
import { planMx, systemResolver, type DnsResolver, type MxOptions, type MxPlan } from '../../../src/relay/mx.js';
import { FakeZone } from '../../helpers/fake-dns.js';

const opts = (o: Partial<MxOptions> = {}): MxOptions => ({ self: ['mx.postern.test'], random: () => 0, ...o });

function hosts(plan: MxPlan): string[] {
  if (plan.kind !== 'hosts') throw new Error(`expected hosts, got ${plan.kind}: ${plan.reply}`);
  return plan.targets.map((t) => t.host);
}
function addresses(plan: MxPlan): string[] {
  if (plan.kind !== 'hosts') throw new Error(`expected hosts, got ${plan.kind}: ${plan.reply}`);
  return plan.targets.map((t) => t.address);
}

describe('planMx: MX order', () => {
  it('tries MX hosts by ascending preference, with host, address and preference', async () => {
    const zone = new FakeZone({
      'example.org': { mx: [[20, 'b.example.org'], [10, 'a.example.org'], [30, 'c.example.org']] },
      'a.example.org': { a: ['192.0.2.1'] },
      'b.example.org': { a: ['192.0.2.2'] },
      'c.example.org': { a: ['192.0.2.3'] },
    });
    const plan = await planMx('example.org', zone, opts());
    expect(plan).toEqual({
      kind: 'hosts',
      targets: [
        { host: 'a.example.org', address: '192.0.2.1', preference: 10 },
        { host: 'b.example.org', address: '192.0.2.2', preference: 20 },
        { host: 'c.example.org', address: '192.0.2.3', preference: 30 },
      ],
    });
  });

  it('shuffles hosts of equal preference (both orders appear) but never across preferences', async () => {
    const zone = new FakeZone({
      'example.org': { mx: [[10, 'a.example.org'], [10, 'b.example.org'], [5, 'first.example.org']] },
      'first.example.org': { a: ['192.0.2.9'] },
      'a.example.org': { a: ['192.0.2.1'] },
      'b.example.org': { a: ['192.0.2.2'] },
    });
    const orders = new Set<string>();
    for (const r of [0, 0.25, 0.5, 0.75, 0.999]) {
      const h = hosts(await planMx('example.org', zone, opts({ random: () => r })));
      expect(h[0]).toBe('first.example.org');
      orders.add(h.slice(1).join(','));
    }
    expect(orders).toEqual(new Set(['a.example.org,b.example.org', 'b.example.org,a.example.org']));
  });

  it('survives a random() that misbehaves (1, NaN, negative)', async () => {
    const zone = new FakeZone({
      'example.org': { mx: [[10, 'a.example.org'], [10, 'b.example.org']] },
      'a.example.org': { a: ['192.0.2.1'] },
      'b.example.org': { a: ['192.0.2.2'] },
    });
    for (const r of [1, Number.NaN, -3]) {
      expect((await planMx('example.org', zone, opts({ random: () => r }))).kind).toBe('hosts');
    }
  });
});

describe('planMx: no MX, NXDOMAIN, null MX', () => {
  it('falls back to the domain itself (implicit MX, preference 0) when there is no MX record', async () => {
    const zone = new FakeZone({ 'example.org': { a: ['192.0.2.1'], aaaa: ['2001:db8::1'] } });
    const plan = await planMx('example.org', zone, opts());
    expect(plan).toEqual({
      kind: 'hosts',
      targets: [
        { host: 'example.org', address: '192.0.2.1', preference: 0 },
        { host: 'example.org', address: '2001:db8::1', preference: 0 },
      ],
    });
  });

  it('treats an empty MX list like no MX record', async () => {
    const zone = new FakeZone({ 'example.org': { mx: [], a: ['192.0.2.1'] } });
    expect(addresses(await planMx('example.org', zone, opts()))).toEqual(['192.0.2.1']);
  });

  it('bounces 5.1.2 when there is neither MX nor address record', async () => {
    const zone = new FakeZone({ 'example.org': {} });
    expect(await planMx('example.org', zone, opts())).toEqual({
      kind: 'failed',
      reply: 'Host or domain name not found. Name service error for name=example.org type=A: Host found but no data record of requested type',
      dsn: '5.1.2',
    });
  });

  it('defers when the implicit-MX address lookup fails temporarily', async () => {
    const zone = new FakeZone({ 'example.org': { aaaa: [], fail: { a: 'ETIMEOUT' } } });
    expect(await planMx('example.org', zone, opts())).toEqual({
      kind: 'deferred',
      reply: 'Host or domain name not found. Name service error for name=example.org type=A: Host not found, try again',
      dsn: '4.4.3',
    });
  });

  it('bounces 5.1.2 on NXDOMAIN', async () => {
    const zone = new FakeZone({});
    expect(await planMx('nowhere.test', zone, opts())).toEqual({
      kind: 'failed',
      reply: 'Host or domain name not found. Name service error for name=nowhere.test type=MX: Host not found',
      dsn: '5.1.2',
    });
  });

  it('bounces 5.1.10 on a null MX, whether the resolver says "" (as Node does) or "."', async () => {
    for (const exchange of ['', '.']) {
      const zone = new FakeZone({ 'example.org': { mx: [[0, exchange]], a: ['192.0.2.1'] } });
      expect(await planMx('example.org', zone, opts())).toEqual({
        kind: 'failed',
        reply: 'Domain example.org does not accept mail (nullMX)',
        dsn: '5.1.10',
      });
      expect(zone.queries).toEqual(['mx example.org']); // no A fallback behind a null MX
    }
  });

  it('ignores a null MX published beside real ones (misconfigured) and uses the real ones', async () => {
    const zone = new FakeZone({
      'example.org': { mx: [[0, ''], [10, 'mx.example.org']] },
      'mx.example.org': { a: ['192.0.2.1'] },
    });
    expect(hosts(await planMx('example.org', zone, opts()))).toEqual(['mx.example.org']);
  });
});

describe('planMx: temporary DNS failures', () => {
  // Postfix's words for h_errno: TRY_AGAIN for no answer, NO_RECOVERY for a server that refused.
  for (const [code, says] of [
    ['ESERVFAIL', 'Host not found, try again'],
    ['ETIMEOUT', 'Host not found, try again'],
    ['EREFUSED', 'Non-recoverable error'],
    ['ECONNREFUSED', 'Host not found, try again'],
  ]) {
    it(`defers 4.4.3 when the MX query fails with ${code}`, async () => {
      const zone = new FakeZone({ 'example.org': { a: ['192.0.2.1'], fail: { mx: code! } } });
      expect(await planMx('example.org', zone, opts())).toEqual({
        kind: 'deferred',
        reply: `Host or domain name not found. Name service error for name=example.org type=MX: ${says}`,
        dsn: '4.4.3',
      });
    });
  }

  it('never throws: a resolver that throws synchronously or rejects with a non-Error defers', async () => {
    const broken: DnsResolver = {
      resolveMx: () => {
        throw new Error('boom');
      },
      resolve4: () => Promise.reject('nope'),
      resolve6: () => Promise.reject(null),
    };
    const plan = await planMx('example.org', broken, opts());
    expect(plan).toEqual({ kind: 'deferred', reply: 'Host or domain name not found. Name service error for name=example.org type=MX: Host not found, try again', dsn: '4.4.3' });
  });
});

describe('planMx: loop prevention', () => {
  const zone = (): FakeZone =>
    new FakeZone({
      'example.org': {
        mx: [[5, 'primary.example.org'], [10, 'MX.Postern.test.'], [10, 'peer.example.org'], [20, 'backup.example.org']],
      },
      'primary.example.org': { a: ['192.0.2.1'] },
      'mx.postern.test': { a: ['198.51.100.1'] },
      'peer.example.org': { a: ['192.0.2.2'] },
      'backup.example.org': { a: ['192.0.2.3'] },
    });

  it('drops our own name and every MX of equal or higher preference value', async () => {
    expect(hosts(await planMx('example.org', zone(), opts()))).toEqual(['primary.example.org']);
  });

  it('bounces 5.4.6 when we are the most preferred MX', async () => {
    const plan = await planMx('example.org', zone(), opts({ self: ['primary.example.org', 'mx.postern.test'] }));
    expect(plan).toEqual({ kind: 'failed', reply: 'mail for example.org loops back to myself', dsn: '5.4.6' });
  });

  it('applies to the implicit MX too', async () => {
    const z = new FakeZone({ 'mx.postern.test': { a: ['198.51.100.1'] } });
    expect((await planMx('mx.postern.test', z, opts())).kind).toBe('failed');
  });
});

describe('planMx: addresses', () => {
  it('skips an MX host without address and uses the next', async () => {
    const zone = new FakeZone({
      'example.org': { mx: [[10, 'gone.example.org'], [20, 'empty.example.org'], [30, 'ok.example.org']] },
      'empty.example.org': {},
      'ok.example.org': { a: ['192.0.2.3'] },
    });
    expect(hosts(await planMx('example.org', zone, opts()))).toEqual(['ok.example.org']);
  });

  it('skips an MX host whose lookup fails temporarily when another has an address', async () => {
    const zone = new FakeZone({
      'example.org': { mx: [[10, 'slow.example.org'], [20, 'ok.example.org']] },
      'slow.example.org': { fail: { a: 'ETIMEOUT', aaaa: 'ETIMEOUT' } },
      'ok.example.org': { a: ['192.0.2.3'] },
    });
    expect(hosts(await planMx('example.org', zone, opts()))).toEqual(['ok.example.org']);
  });

  it('defers 4.4.4 when no MX host has any address', async () => {
    const zone = new FakeZone({
      'example.org': { mx: [[10, 'gone.example.org'], [20, 'empty.example.org']] },
      'empty.example.org': {},
    });
    expect(await planMx('example.org', zone, opts())).toEqual({
      kind: 'deferred',
      reply: 'Host or domain name not found. Name service error for name=gone.example.org type=A: Host not found',
      dsn: '4.4.4',
    });
  });

  it('defers 4.4.3 when the MX hosts\' lookups failed temporarily', async () => {
    const zone = new FakeZone({
      'example.org': { mx: [[10, 'a.example.org'], [20, 'b.example.org']] },
      'a.example.org': { fail: { a: 'ESERVFAIL', aaaa: 'ESERVFAIL' } },
      'b.example.org': { fail: { a: 'ETIMEOUT' } },
    });
    const plan = await planMx('example.org', zone, opts());
    expect(plan.kind).toBe('deferred');
    expect(plan).toEqual({ kind: 'deferred', reply: 'Host or domain name not found. Name service error for name=a.example.org type=A: Host not found, try again', dsn: '4.4.3' });
  });

  it('caps the plan at maxAddresses (default 5), keeping preference order', async () => {
    const zone = new FakeZone({
      'example.org': { mx: [[10, 'a.example.org'], [20, 'b.example.org']] },
      'a.example.org': { a: ['192.0.2.1', '192.0.2.2', '192.0.2.3'], aaaa: ['2001:db8::1'] },
      'b.example.org': { a: ['192.0.2.11', '192.0.2.12'] },
    });
    expect(addresses(await planMx('example.org', zone, opts()))).toEqual([
      '192.0.2.1',
      '192.0.2.2',
      '192.0.2.3',
      '2001:db8::1',
      '192.0.2.11',
    ]);
    expect(addresses(await planMx('example.org', zone, opts({ maxAddresses: 2 })))).toEqual(['192.0.2.1', '192.0.2.2']);
  });

  it('puts IPv4 before IPv6 within each host, and asks no AAAA when ipv6 is off', async () => {
    const zone = new FakeZone({
      'example.org': { mx: [[10, 'a.example.org'], [20, 'b.example.org']] },
      'a.example.org': { aaaa: ['2001:db8::a'], a: ['192.0.2.1'] },
      'b.example.org': { aaaa: ['2001:db8::b'], a: ['192.0.2.2'] },
    });
    expect(addresses(await planMx('example.org', zone, opts()))).toEqual([
      '192.0.2.1',
      '2001:db8::a',
      '192.0.2.2',
      '2001:db8::b',
    ]);
    const v4only = new FakeZone({
      'example.org': { mx: [[10, 'a.example.org']] },
      'a.example.org': { aaaa: ['2001:db8::a'], a: ['192.0.2.1'] },
    });
    expect(addresses(await planMx('example.org', v4only, opts({ ipv6: false })))).toEqual(['192.0.2.1']);
    expect(v4only.queries.some((q) => q.startsWith('aaaa'))).toBe(false);
  });

  it('removes duplicate addresses (two MX names on one server), keeping the first', async () => {
    const zone = new FakeZone({
      'example.org': { mx: [[10, 'a.example.org'], [20, 'b.example.org'], [30, 'a.example.org']] },
      'a.example.org': { a: ['192.0.2.1'] },
      'b.example.org': { a: ['192.0.2.1', '192.0.2.2'] },
    });
    const plan = await planMx('example.org', zone, opts());
    expect(plan.kind === 'hosts' && plan.targets).toEqual([
      { host: 'a.example.org', address: '192.0.2.1', preference: 10 },
      { host: 'b.example.org', address: '192.0.2.2', preference: 20 },
    ]);
  });

  it('uses an MX exchange that is an IP address as the address, without a lookup', async () => {
    const zone = new FakeZone({ 'example.org': { mx: [[10, '192.0.2.7'], [20, 'b.example.org']] }, 'b.example.org': { a: ['192.0.2.8'] } });
    expect(addresses(await planMx('example.org', zone, opts()))).toEqual(['192.0.2.7', '192.0.2.8']);
    expect(zone.queries).not.toContain('a 192.0.2.7');
  });

  it('drops addresses from DNS that are not addresses', async () => {
    const zone = new FakeZone({ 'example.org': { mx: [[10, 'a.example.org']] }, 'a.example.org': { a: ['192.0.2.1\r\n', 'x', '192.0.2.2'], aaaa: ['192.0.2.3'] } });
    expect(addresses(await planMx('example.org', zone, opts()))).toEqual(['192.0.2.2']);
  });
});

describe('planMx: domain forms', () => {
  it('takes an address literal directly, without DNS', async () => {
    const zone = new FakeZone({});
    expect(await planMx('[192.0.2.1]', zone, opts())).toEqual({
      kind: 'hosts',
      targets: [{ host: '[192.0.2.1]', address: '192.0.2.1', preference: 0 }],
    });
    expect(await planMx('[IPv6:2001:DB8::1]', zone, opts())).toEqual({
      kind: 'hosts',
      targets: [{ host: '[IPv6:2001:DB8::1]', address: '2001:db8::1', preference: 0 }],
    });
    expect(zone.queries).toEqual([]);
  });

  it('bounces 5.1.2 on a malformed address literal', async () => {
    for (const bad of ['[300.0.0.1]', '[2001:db8::1]', '[IPv6:192.0.2.1]', '[tag:whatever]', '[192.0.2.1']) {
      const plan = await planMx(bad, new FakeZone({}), opts());
      expect(plan.kind).toBe('failed');
      expect(plan.kind !== 'hosts' && plan.dsn).toBe('5.1.2');
      expect(plan.kind !== 'hosts' && plan.reply).toMatch(/^invalid (address literal|domain name): /);
    }
  });

  it('asks the resolver for an IDN domain in punycode', async () => {
    const zone = new FakeZone({ 'xn--bcher-kva.example': { a: ['192.0.2.1'] } });
    const plan = await planMx('Bücher.example', zone, opts());
    expect(hosts(plan)).toEqual(['xn--bcher-kva.example']);
    expect(zone.queries[0]).toBe('mx xn--bcher-kva.example');
  });

  it('lower-cases and strips a trailing dot', async () => {
    const zone = new FakeZone({ 'example.org': { mx: [[10, 'MX.Example.ORG.']] }, 'mx.example.org': { a: ['192.0.2.1'] } });
    expect(hosts(await planMx('Example.ORG.', zone, opts()))).toEqual(['mx.example.org']);
    expect(zone.queries).toEqual(['mx example.org', 'a mx.example.org', 'aaaa mx.example.org']);
  });

  it('bounces 5.1.2 on an empty or invalid domain, without DNS', async () => {
    const zone = new FakeZone({});
    for (const bad of ['', '.', 'a..b', 'exa mple.org', '-x.org', '1.2.3.4', '0x7f.1', `${'a'.repeat(64)}.org`]) {
      const plan = await planMx(bad, zone, opts());
      expect(plan.kind, bad).toBe('failed');
      expect(plan.kind !== 'hosts' && plan.dsn).toBe('5.1.2');
      expect(plan.kind !== 'hosts' && plan.reply).toMatch(/^invalid (address literal|domain name): /);
    }
    expect(zone.queries).toEqual([]);
  });
});

describe('planMx: reply lines are safe', () => {
  it('keeps CR, LF and other control bytes out of every reply', async () => {
    const plans = [
      await planMx('evil\r\n250 ok.org', new FakeZone({}), opts()),
      await planMx('example.org', new FakeZone({ 'example.org': { fail: { mx: 'E\r\nVIL' } } }), opts()),
      await planMx('[1.2.3.4\r\n]', new FakeZone({}), opts()),
    ];
    for (const plan of plans) {
      expect(plan.kind).not.toBe('hosts');
      expect(plan.kind !== 'hosts' && plan.reply).not.toMatch(/[\r\n\x00-\x1f]/);
    }
  });

  it('treats an MX exchange that is not a host name as a host without address', async () => {
    const zone = new FakeZone({ 'example.org': { mx: [[10, 'bad\r\nname.org']] } });
    const plan = await planMx('example.org', zone, opts());
    expect(plan).toEqual({ kind: 'deferred', reply: 'Host or domain name not found. Name service error for name=example.org type=MX: Malformed or unexpected name server reply', dsn: '4.4.4' });
    expect(zone.queries).toEqual(['mx example.org']);
  });
});

describe('systemResolver', () => {
  it('returns a resolver with the three lookups (no query is made)', () => {
    const r = systemResolver();
    expect(typeof r.resolveMx).toBe('function');
    expect(typeof r.resolve4).toBe('function');
    expect(typeof r.resolve6).toBe('function');
  });
});
