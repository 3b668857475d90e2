import { describe, expect, it } from 'vitest';
import type { Route } from '../../../src/config/types.js';
import { groupByRoute, matchRoute, recipientDomain, targetKey } from '../../../src/relay/index.js';

const smtp = (host: string, port = 25): Route['target'] => ({ kind: 'smtp', host, port, tls: 'may' });
const r = (pattern: string, target: Route['target']): Route => ({ pattern, target });

describe('matchRoute', () => {
  const exact = r('example.com', smtp('exact'));
  const sub = r('*.example.com', smtp('sub'));
  const any = r('*', { kind: 'mx', tls: 'may' });
  const routes = [exact, sub, any];

  it('matches an exact domain only itself', () => {
    expect(matchRoute([exact], 'example.com')).toBe(exact);
    expect(matchRoute([exact], 'mail.example.com')).toBeUndefined();
    expect(matchRoute([exact], 'badexample.com')).toBeUndefined();
    expect(matchRoute([exact], 'example.com.evil')).toBeUndefined();
  });

  it('matches "*.domain" on subdomains at any depth but not the apex or look-alikes', () => {
    expect(matchRoute([sub], 'a.example.com')).toBe(sub);
    expect(matchRoute([sub], 'a.b.example.com')).toBe(sub);
    expect(matchRoute([sub], 'example.com')).toBeUndefined();
    expect(matchRoute([sub], 'badexample.com')).toBeUndefined();
    expect(matchRoute([sub], '.example.com')).toBeUndefined();
  });

  it('matches anything with "*", including an empty domain', () => {
    expect(matchRoute([any], 'whatever.test')).toBe(any);
    expect(matchRoute([any], '')).toBe(any);
  });

  it('is case-insensitive on domain and pattern, and ignores a trailing root dot', () => {
    expect(matchRoute(routes, 'EXAMPLE.Com')).toBe(exact);
    expect(matchRoute(routes, 'Mail.EXAMPLE.com')).toBe(sub);
    expect(matchRoute([r('Example.COM', smtp('x'))], 'example.com')?.pattern).toBe('Example.COM');
    expect(matchRoute(routes, 'example.com.')).toBe(exact);
  });

  it('takes the first match in order', () => {
    expect(matchRoute(routes, 'example.com')).toBe(exact);
    expect(matchRoute([any, exact], 'example.com')).toBe(any);
    expect(matchRoute([sub, r('x.example.com', smtp('later'))], 'x.example.com')).toBe(sub);
    expect(matchRoute([exact, sub], 'other.org')).toBeUndefined();
  });
});

describe('recipientDomain', () => {
  it('takes the part after the last @, lower-cased', () => {
    expect(recipientDomain('Bob@Example.COM')).toBe('example.com');
    expect(recipientDomain('"a@b"@example.org')).toBe('example.org');
    expect(recipientDomain('postmaster')).toBe('');
  });
});

describe('groupByRoute', () => {
  it('puts recipients for the same target in one group, in envelope order, and reports unrouted ones', () => {
    const routes = [r('a.test', smtp('hub')), r('b.test', smtp('hub')), r('c.test', smtp('other')), r('*.d.test', { kind: 'maildir', path: '/m' })];
    const { groups, unrouted } = groupByRoute(routes, ['x@a.test', 'y@c.test', 'z@B.test', 'w@sub.d.test', 'v@nowhere.test']);
    expect(groups.map((g) => [g.key, g.recipients])).toEqual([
      ['smtp://hub:25?tls=may', ['x@a.test', 'z@B.test']],
      ['smtp://other:25?tls=may', ['y@c.test']],
      ['maildir:/m', ['w@sub.d.test']],
    ]);
    expect(unrouted).toEqual(['v@nowhere.test']);
  });

  it('separates the same host with different TLS modes or transports', () => {
    const keys = new Set([
      targetKey({ kind: 'smtp', host: 'h', port: 25, tls: 'may' }),
      targetKey({ kind: 'smtp', host: 'h', port: 25, tls: 'encrypt' }),
      targetKey({ kind: 'smtps', host: 'h', port: 25 }),
    ]);
    expect(keys.size).toBe(3);
  });
});
