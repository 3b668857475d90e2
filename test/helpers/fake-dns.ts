/**
 * A fake DNS zone for the relay's injectable resolver: names map to MX, A and AAAA records; a
 * missing name answers NXDOMAIN (ENOTFOUND), a name without the asked type ENODATA, and a name
 * can be made to fail with any error code (SERVFAIL, time-out). Lookups are recorded.
 */
export interface ZoneRecords {
  mx?: { exchange: string; priority: number }[];
  a?: string[];
  aaaa?: string[];
  /** Every query for this name fails with this code (e.g. 'ESERVFAIL'). */
  fail?: string;
}

function dnsError(code: string, name: string): Error {
  return Object.assign(new Error(`${code} ${name}`), { code, hostname: name });
}

export class FakeZone {
  readonly queries: string[] = [];
  constructor(private readonly records: Record<string, ZoneRecords>) {}

  private answer<T>(type: string, name: string, pick: (r: ZoneRecords) => T[] | undefined): Promise<T[]> {
    this.queries.push(`${type} ${name}`);
    const r = this.records[name.toLowerCase()];
    if (!r) return Promise.reject(dnsError('ENOTFOUND', name));
    if (r.fail) return Promise.reject(dnsError(r.fail, name));
    const v = pick(r);
    if (!v || v.length === 0) return Promise.reject(dnsError('ENODATA', name));
    return Promise.resolve(v);
  }

  resolveMx(name: string) {
    return this.answer('MX', name, (r) => r.mx);
  }
  resolve4(name: string) {
    return this.answer('A', name, (r) => r.a);
  }
  resolve6(name: string) {
    return this.answer('AAAA', name, (r) => r.aaaa);
  }
}
