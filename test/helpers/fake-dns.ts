/**
 * A fake DNS zone for the relay's injectable resolver, with Node's error semantics: an unknown
 * name answers ENOTFOUND (NXDOMAIN), a known name without the asked type ENODATA, and a query type
 * can be made to fail with any code (ESERVFAIL, ETIMEOUT). Queries are recorded.
 *
 * For the TLS levels it also answers TXT (MTA-STS) and TLSA (DANE), and a name marked `secure`
 * answers as a validating resolver would for a signed zone (the AD bit): its MX RRset and its
 * TLSA records (or their absence) count as DNSSEC-validated.
 */
import type { DnsResolver, SecureAnswer, TlsaRecord } from '../../src/relay/index.js';

/** One name's records; `fail` makes a query type throw that dns error code instead. */
export interface ZoneNode {
  mx?: [number, string][];
  a?: string[];
  aaaa?: string[];
  txt?: string[][];
  tlsa?: TlsaRecord[];
  /** Answers for this name are DNSSEC-validated (AD set). */
  secure?: boolean;
  fail?: { mx?: string; a?: string; aaaa?: string; txt?: string; tlsa?: string };
}

type QueryType = 'mx' | 'a' | 'aaaa' | 'txt' | 'tlsa';

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
  resolveTxt(name: string): Promise<string[][]> {
    return this.answer('txt', name, (n) => n.txt);
  }
  /** As the wire client answers: NXDOMAIN/NODATA are no records (validated when the name is `secure`). */
  async resolveTlsa(name: string): Promise<SecureAnswer<TlsaRecord>> {
    return this.secureAnswer('tlsa', name, (n) => n.tlsa);
  }
  async resolveMxSecure(domain: string): Promise<SecureAnswer<{ exchange: string; priority: number }>> {
    return this.secureAnswer('mx', domain, (n) => n.mx?.map(([priority, exchange]) => ({ exchange, priority })));
  }

  private async secureAnswer<T>(type: QueryType, name: string, get: (n: ZoneNode) => T[] | undefined): Promise<SecureAnswer<T>> {
    this.queries.push(`${type}+ad ${name}`);
    const node = this.zone[name];
    if (!node) return { records: [], secure: false };
    const fail = node.fail?.[type];
    if (fail) throw dnsError(fail, name);
    return { records: get(node) ?? [], secure: node.secure === true };
  }

  private async answer<T>(type: QueryType, name: string, get: (n: ZoneNode) => T | undefined): Promise<T> {
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
