/**
 * MTA-STS policies of recipient domains (RFC 8461 §3.3, §5.1): the `_mta-sts.<domain>` TXT record
 * says whether there is one and its id; the policy comes from
 * https://mta-sts.<domain>/.well-known/mta-sts.txt over verified HTTPS (our CA list, the name
 * mta-sts.<domain>), without redirects, bounded in size and time. A policy is cached for its
 * max_age and fetched again only when the TXT id changes; while unexpired it is kept through
 * failures to fetch or look up (§5.1), so an attacker who blocks the fetch or the TXT answer
 * cannot switch enforcement off. A failed fetch without a cached policy means no policy, retried
 * after a pause rather than on every message.
 *
 * The cache lives in the relay process (a restart fetches again); nothing secret is in it.
 */
import https from 'node:https';
import tls from 'node:tls';
import type { DnsResolver } from './mx.js';
import { MAX_POLICY_BYTES, parseStsPolicy, parseStsRecord, type StsPolicy } from './mta-sts.js';

export interface StsOptions {
  resolver: DnsResolver;
  /** The CAs the policy server's certificate must chain to (PEM). */
  ca: () => readonly string[];
  /**
   * Where the policy host is reached: mta-sts.<domain>:443 unless given (tests serve the policy on
   * loopback). The certificate is checked against mta-sts.<domain> either way.
   */
  origin?: (policyHost: string) => { host: string; port: number };
  /** The whole fetch, connect to last byte (ms). */
  timeout?: number;
  now?: () => number;
}

export type StsLookup =
  | { kind: 'policy'; policy: StsPolicy; id: string; fetched: boolean }
  | { kind: 'none'; failure?: string };

interface Cached {
  id: string;
  policy: StsPolicy;
  expiresAt: number;
}

/** After a failed fetch with nothing cached, this long before the next try (ms). */
const RETRY_FAILED_FETCH_MS = 5 * 60_000;
const DEFAULT_TIMEOUT_MS = 20_000;
/** Bounded: a flood of recipient domains must not grow the relay's memory without end. */
const MAX_CACHED = 10_000;

export class StsPolicies {
  /** Policies fetched so far (a test counts them). */
  fetches = 0;
  private readonly cache = new Map<string, Cached>();
  private readonly failed = new Map<string, { until: number; id: string; failure: string }>();

  constructor(private readonly opts: StsOptions) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  /** The policy that applies to mail for `domain` now. Never throws. */
  async lookup(domain: string): Promise<StsLookup> {
    const now = this.now();
    let cached = this.cache.get(domain);
    if (cached && cached.expiresAt <= now) {
      this.cache.delete(domain);
      cached = undefined;
    }
    let id: string | undefined;
    try {
      const txt = this.opts.resolver.resolveTxt ? await this.opts.resolver.resolveTxt(`_mta-sts.${domain}`) : [];
      id = parseStsRecord(Array.isArray(txt) ? txt : [])?.id;
    } catch {
      id = undefined; // no record, or no answer: the cached policy (if any) stands
    }
    if (cached && (id === undefined || id === cached.id)) return { kind: 'policy', policy: cached.policy, id: cached.id, fetched: false };
    if (id === undefined) return { kind: 'none' };
    const failed = this.failed.get(domain);
    if (failed && failed.until > now && failed.id === id) return cached ? { kind: 'policy', policy: cached.policy, id: cached.id, fetched: false } : { kind: 'none', failure: failed.failure };

    this.fetches++;
    const got = await this.fetch(domain);
    if (typeof got === 'string') {
      this.failed.set(domain, { until: now + RETRY_FAILED_FETCH_MS, id, failure: got });
      // A new id whose policy cannot be fetched: the old policy stays until it expires (§5.1).
      return cached ? { kind: 'policy', policy: cached.policy, id: cached.id, fetched: false } : { kind: 'none', failure: got };
    }
    this.failed.delete(domain);
    if (got.mode === 'none' || got.maxAge === 0) this.cache.delete(domain);
    else {
      if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(domain, { id, policy: got, expiresAt: now + got.maxAge * 1000 });
    }
    return { kind: 'policy', policy: got, id, fetched: true };
  }

  /** The policy, or why it could not be had (a TLS-RPT result type and detail). */
  private fetch(domain: string): Promise<StsPolicy | string> {
    const name = `mta-sts.${domain}`;
    const to = this.opts.origin?.(name) ?? { host: name, port: 443 };
    return new Promise((resolve) => {
      let settled = false;
      const finish = (r: StsPolicy | string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve(r);
      };
      const req = https.request({
        host: to.host,
        port: to.port,
        path: '/.well-known/mta-sts.txt',
        method: 'GET',
        headers: { Host: name, Accept: 'text/plain' },
        servername: name,
        ca: [...this.opts.ca()],
        rejectUnauthorized: true,
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
        minVersion: 'TLSv1.2',
        agent: false,
      });
      const timer = setTimeout(() => finish('sts-policy-fetch-error: timed out'), this.opts.timeout ?? DEFAULT_TIMEOUT_MS);
      req.on('error', (err: NodeJS.ErrnoException) => {
        const code = typeof err.code === 'string' ? err.code.replace(/[^A-Z0-9_]/g, '').slice(0, 40) : '';
        finish(/CERT|SELF_SIGNED|ISSUER|ALTNAME|UNABLE_TO_VERIFY/.test(code) ? `sts-webpki-invalid: ${code || 'certificate not verified'}` : `sts-policy-fetch-error: ${code || 'connection failed'}`);
      });
      req.on('response', (res) => {
        // RFC 8461 §3.3: redirects are not followed, only 200 counts.
        if (res.statusCode !== 200) return finish(`sts-policy-fetch-error: HTTP ${res.statusCode}`);
        const type = String(res.headers['content-type'] ?? '').toLowerCase();
        if (!/^text\/plain\s*(;|$)/.test(type)) return finish('sts-policy-invalid: not text/plain');
        if (Number(res.headers['content-length'] ?? 0) > MAX_POLICY_BYTES) return finish('sts-policy-invalid: policy too large');
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_POLICY_BYTES) return finish('sts-policy-invalid: policy too large');
          chunks.push(c);
        });
        res.on('error', () => finish('sts-policy-fetch-error: connection lost'));
        res.on('end', () => {
          const p = parseStsPolicy(Buffer.concat(chunks).toString('utf8'));
          finish(typeof p === 'string' ? `sts-policy-invalid: ${p}` : p);
        });
      });
      req.end();
    });
  }
}
