/**
 * What TLS-RPT (RFC 8460) would report, kept as counts in the log: each failure of a next hop to
 * meet a recipient domain's DANE or MTA-STS policy (or, in MTA-STS testing mode, what enforce
 * would have refused), with the RFC's result type and the count so far for that policy domain.
 * Sending the aggregate reports to the domain's rua= address is left out (see README).
 */
import type { Logger } from '../log/index.js';

/** More policy domains than this are not tracked one by one: the oldest count is dropped. */
const MAX_DOMAINS = 10_000;

export class TlsFailureCounter {
  private readonly counts = new Map<string, number>();

  constructor(private readonly log: Logger) {}

  /** The number of failures seen for this policy domain and type since the relay started. */
  get(policy: 'dane' | 'sts', domain: string): number {
    return this.counts.get(`${policy} ${domain}`) ?? 0;
  }

  count(policy: 'dane' | 'sts', domain: string, result: string, host: string, reason: string, queueId: string, testing = false): void {
    const key = `${policy} ${domain}`;
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.delete(key);
    if (this.counts.size >= MAX_DOMAINS) this.counts.delete(this.counts.keys().next().value!);
    this.counts.set(key, n);
    this.log.warn(
      { event: 'relay.tls_failure', queueId, policyType: policy === 'sts' ? 'sts' : 'tlsa', policyDomain: domain, result, host, reason, failures: n, ...(testing ? { testing: true } : {}) },
      testing ? 'next hop would fail the MTA-STS policy (testing mode: delivered)' : 'next hop fails the domain\'s TLS policy',
    );
  }
}
