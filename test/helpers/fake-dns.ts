/**
 * A fake DNS zone for the relay's injectable resolver, with Node's error semantics: an unknown
 * name answers ENOTFOUND (NXDOMAIN), a known name without the asked type ENODATA, and a query type
 * can be made to fail with any code (ESERVFAIL, ETIMEOUT). Queries are recorded.
 */
import type { DnsResolver } from '../../src/relay/index.js';

/** One name's records; `fail` makes a query type throw that dns error code instead. */
export interface ZoneNode {
  mx?: [number, string][];
  a?: string[];
  aaaa?: string[];
  fail?: { mx?: string; a?: string; aaaa?: string };
}

/** An in-memory zone with Node's error semantics: unknown name → ENOTFOUND, known name without the type → ENODATA. */
export class FakeZone implements DnsResolver {
  readonly queries: string[] = [];
  constructor(private readonly zone: Record<string, ZoneNode>) {}

  resolveMx(domain: string): Promise<{ exchange: string; priority: number }[]> {
    return this.answer('mx', domain, (n) => n.mx?.map(([priority, exchange]) => ({ exchange, priority })));
  }
  resolve4(host: string): Promise<string[]> {
    return this.answer('a', host, (n) => n.a);
  }
  resolve6(host: string): Promise<string[]> {
    return this.answer('aaaa', host, (n) => n.aaaa);
  }

  private async answer<T>(type: 'mx' | 'a' | 'aaaa', name: string, get: (n: ZoneNode) => T | undefined): Promise<T> {
    this.queries.push(`${type} ${name}`);
    const node = this.zone[name];
    if (!node) throw dnsError('ENOTFOUND', name);
    const fail = node.fail?.[type];
    if (fail) throw dnsError(fail, name);
    const got = get(node);
    if (got === undefined) throw dnsError('ENODATA', name);
    return got;
  }
}

function dnsError(code: string, name: string): Error {
  return Object.assign(new Error(`query ${code} ${name}`), { code });
}

