/**
 * Revocation checking of one certificate against its issuer: the internal CA's own records
 * first (authoritative, offline), then OCSP (the AIA responder), then CRLs (imported ones, then
 * the distribution points over http(s)). Answers are cached per process: OCSP until nextUpdate
 * (or cache_ttl), CRLs until shortly before their nextUpdate (then fetched again; the old one is
 * used while still current if that fails). Network and parse failures are never thrown: they
 * are 'unknown' with a reason, and what 'unknown' means (soft or hard fail) is the caller's
 * choice (revocationSeam, rev-seam.ts). Untrusted input: every URL a certificate names and every
 * byte a responder or distribution point sends.
 */
import { checkOcspResponse, buildOcspRequest } from './ocsp.js';
import { crlCovers, crlEntryFor, crlTimeProblem, crlToDer, parseCrl, verifyCrlSignature, type ParsedCrl } from './crl.js';
import type { HttpFetcher, RevocationResult, RevocationStoreView } from './rev-types.js';
import type { CertInfo } from './types.js';

export interface RevocationCheckerOptions {
  fetch: HttpFetcher;
  store?: RevocationStoreView;
  /** Per HTTP exchange (ms). */
  timeoutMs?: number;
  ocsp?: boolean;
  crl?: boolean;
  /** How long an answer without nextUpdate is cached (ms); also the freshness limit of such OCSP answers. */
  cacheTtlMs?: number;
  /** A URL that failed is not asked again for this long (ms): a dead responder costs one time-out, not one per mail. */
  failureTtlMs?: number;
  clockSkewMs?: number;
  maxOcspBytes?: number;
  maxCrlBytes?: number;
  requireNonce?: boolean;
  now?: () => Date;
}

interface Cached<T> {
  value: T;
  /** ms: after this the entry is not used. */
  expires: number;
  /** ms: after this a new one is fetched (the old one stays usable until `expires` if that fails). */
  refresh: number;
}

const MAX_CACHE = 10_000;

export class RevocationChecker {
  private readonly o: Required<Omit<RevocationCheckerOptions, 'store'>> & { store?: RevocationStoreView };
  private readonly ocspCache = new Map<string, Cached<RevocationResult>>();
  private readonly crlCache = new Map<string, Cached<ParsedCrl>>();
  /** Verified imported CRLs, by DER SHA-256 (verification costs a signature check). */
  private readonly verified = new Map<string, ParsedCrl>();
  private readonly failures = new Map<string, { until: number; reason: string }>();
  private readonly inflight = new Map<string, Promise<ParsedCrl | string>>();

  constructor(opts: RevocationCheckerOptions) {
    this.o = {
      timeoutMs: 5_000, ocsp: true, crl: true, cacheTtlMs: 3_600_000, failureTtlMs: 60_000, clockSkewMs: 5 * 60_000,
      maxOcspBytes: 64 * 1024, maxCrlBytes: 16 * 1024 * 1024, requireNonce: false, now: () => new Date(),
      ...opts,
    };
  }

  /**
   * `at` is the clock of the check (default: now): responses and CRLs must be current then, and
   * cached ones expire by it. It is not a signature's signing time: that is the signer's claim,
   * and a responder speaks about the present, so a revocation of any date counts.
   */
  async check(cert: CertInfo, issuer: CertInfo, opts: { at?: Date } = {}): Promise<RevocationResult> {
    const at = opts.at ?? this.o.now();
    const reasons: string[] = [];
    try {
      const local = await this.o.store?.localStatus?.(cert, issuer);
      if (local) {
        return local.revoked
          ? { status: 'revoked', source: 'local', revokedAt: local.revokedAt, ...(local.reason ? { revocationReason: local.reason } : {}) }
          : { status: 'good', source: 'local' };
      }
    } catch (err) {
      reasons.push(`the keystore could not be asked (${(err as Error).message})`);
    }
    if (this.o.ocsp) {
      const r = await this.viaOcsp(cert, issuer, at, reasons);
      if (r) return r;
    }
    if (this.o.crl) {
      const r = await this.viaCrl(cert, issuer, at, reasons);
      if (r) return r;
    }
    if (!reasons.length) reasons.push(this.o.ocsp || this.o.crl ? 'the certificate names no OCSP responder or CRL distribution point, and no CRL of its issuer was imported' : 'revocation checking is off');
    return { status: 'unknown', source: 'none', reason: reasons.join('; ') };
  }

  // ---- OCSP ------------------------------------------------------------------------------------

  private async viaOcsp(cert: CertInfo, issuer: CertInfo, at: Date, reasons: string[]): Promise<RevocationResult | undefined> {
    const key = `${issuer.fingerprint}:${cert.fingerprint}`;
    const now = at.getTime();
    const hit = this.ocspCache.get(key);
    if (hit && hit.expires > now) return hit.value;
    for (const url of cert.ocspUrls.filter((u) => /^https?:\/\//i.test(u)).slice(0, 2)) {
      const failed = this.recentFailure(url, now);
      if (failed) {
        reasons.push(failed);
        continue;
      }
      let body: Buffer;
      const req = buildOcspRequest(cert, issuer);
      try {
        const res = await this.o.fetch({ url, method: 'POST', body: req.der, contentType: 'application/ocsp-request', accept: 'application/ocsp-response', timeoutMs: this.o.timeoutMs, maxBytes: this.o.maxOcspBytes });
        if (res.status !== 200) throw new Error(`HTTP status ${res.status}`);
        body = res.body;
      } catch (err) {
        reasons.push(this.fail(url, `OCSP responder ${url} failed: ${(err as Error).message}`, now));
        continue;
      }
      const v = await checkOcspResponse(body, { cert, issuer, nonce: req.nonce, at, skewMs: this.o.clockSkewMs, maxAgeMs: this.o.cacheTtlMs, requireNonce: this.o.requireNonce });
      if (!v.ok) {
        reasons.push(`${v.reason} (from ${url})`);
        continue;
      }
      if (v.status === 'unknown') {
        reasons.push(`the OCSP responder ${url} does not know the certificate`);
        continue;
      }
      const result: RevocationResult = v.status === 'good'
        ? { status: 'good', source: 'ocsp' }
        : { status: 'revoked', source: 'ocsp', revokedAt: v.revokedAt!, ...(v.revocationReason ? { revocationReason: v.revocationReason } : {}) };
      // Until nextUpdate, but never longer than cache_ttl: a revocation shows within that time
      // even when the responder allows caching for a week.
      const expires = Math.min(v.nextUpdate ? v.nextUpdate.getTime() : Infinity, now + this.o.cacheTtlMs);
      put(this.ocspCache, key, { value: result, expires, refresh: expires });
      return result;
    }
    return undefined;
  }

  // ---- CRL -------------------------------------------------------------------------------------

  private async viaCrl(cert: CertInfo, issuer: CertInfo, at: Date, reasons: string[]): Promise<RevocationResult | undefined> {
    const usable: ParsedCrl[] = [];
    if (this.o.store) {
      try {
        for (const rec of await this.o.store.importedCrls(issuer)) {
          const c = await this.verifiedImport(rec.der, issuer);
          if (typeof c === 'string') reasons.push(`imported CRL (${rec.source}): ${c}`);
          else if (!crlCovers(c, cert)) continue;
          else {
            const t = crlTimeProblem(c, at, this.o.clockSkewMs);
            if (t) reasons.push(`imported CRL (${rec.source}): ${t}`);
            else usable.push(c);
          }
        }
      } catch (err) {
        reasons.push(`imported CRLs could not be read (${(err as Error).message})`);
      }
    }
    // A listing in any valid CRL is final; "not listed" needs one current CRL, and the newest wins.
    const listed = (cs: ParsedCrl[]) => {
      for (const c of cs) {
        const e = crlEntryFor(c, cert);
        if (e) return { status: 'revoked', source: 'crl', revokedAt: e.revokedAt, ...(e.reason ? { revocationReason: e.reason } : {}) } as RevocationResult;
      }
      return undefined;
    };
    const fromImported = listed(usable);
    if (fromImported) return fromImported;
    // A current imported CRL is enough (RFC 5280 asks no more), and spares an offline gateway a
    // time-out per check.
    if (usable.length) return { status: 'good', source: 'crl' };
    for (const url of cert.crlUrls) {
      if (!/^https?:\/\//i.test(url)) {
        reasons.push(`CRL distribution point ${url} is not http(s) and is not fetched`);
        continue;
      }
      const c = await this.fetchCrl(url, issuer, at);
      if (typeof c === 'string') {
        reasons.push(c);
        continue;
      }
      if (!crlCovers(c, cert)) {
        reasons.push(`the CRL at ${url} does not cover this kind of certificate`);
        continue;
      }
      usable.push(c);
      const r = listed([c]);
      if (r) return r;
      break; // one current, verified, covering CRL without the serial is enough
    }
    return usable.length ? { status: 'good', source: 'crl' } : undefined;
  }

  private async verifiedImport(der: Buffer, issuer: CertInfo): Promise<ParsedCrl | string> {
    try {
      const c = parseCrl(der);
      const k = `${c.sha256}:${issuer.fingerprint}`;
      const known = this.verified.get(k);
      if (known) return known;
      const bad = await verifyCrlSignature(c, issuer);
      if (bad) return bad;
      put(this.verified, k, c);
      return c;
    } catch (err) {
      return (err as Error).message;
    }
  }

  /** A verified CRL from `url` that is current at `at`, or the reason there is none. */
  private async fetchCrl(url: string, issuer: CertInfo, at: Date): Promise<ParsedCrl | string> {
    const key = `${issuer.fingerprint}:${url}`;
    const now = at.getTime();
    const hit = this.crlCache.get(key);
    const currentHit = hit && hit.expires > now && !crlTimeProblem(hit.value, at, this.o.clockSkewMs) ? hit.value : undefined;
    if (currentHit && hit!.refresh > now) return currentHit;
    const failed = this.recentFailure(url, now);
    if (failed) return currentHit ?? failed;
    // Several mails checking the same issuer at once share one download.
    let p = this.inflight.get(key);
    if (!p) {
      p = this.download(url, issuer, now).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const got = await p;
    if (typeof got === 'string') return currentHit ?? got;
    const t = crlTimeProblem(got, at, this.o.clockSkewMs);
    return t ? (currentHit ?? `the CRL at ${url}: ${t}`) : got;
  }

  private async download(url: string, issuer: CertInfo, now: number): Promise<ParsedCrl | string> {
    let c: ParsedCrl;
    try {
      const res = await this.o.fetch({ url, method: 'GET', accept: 'application/pkix-crl', timeoutMs: this.o.timeoutMs, maxBytes: this.o.maxCrlBytes });
      if (res.status !== 200) throw new Error(`HTTP status ${res.status}`);
      c = parseCrl(crlToDer(res.body));
    } catch (err) {
      return this.fail(url, `CRL distribution point ${url} failed: ${(err as Error).message}`, now);
    }
    const bad = await verifyCrlSignature(c, issuer);
    if (bad) return this.fail(url, `the CRL at ${url} is refused: ${bad}`, now);
    const next = c.nextUpdate?.getTime();
    const expires = next ?? now + this.o.cacheTtlMs;
    // Fetch again a little before nextUpdate (a tenth of the CRL's period, at most an hour), so
    // checks never hit the gap between an expiring CRL and its successor.
    const margin = next ? Math.min(3_600_000, Math.max(0, (next - c.thisUpdate.getTime()) / 10)) : 0;
    put(this.crlCache, `${issuer.fingerprint}:${url}`, { value: c, expires, refresh: Math.min(expires - margin, now + this.o.cacheTtlMs) });
    return c;
  }

  private fail(url: string, reason: string, now: number): string {
    if (this.o.failureTtlMs > 0) put(this.failures, url, { until: now + this.o.failureTtlMs, reason });
    return reason;
  }

  private recentFailure(url: string, now: number): string | undefined {
    const f = this.failures.get(url);
    if (!f) return undefined;
    if (f.until <= now) {
      this.failures.delete(url);
      return undefined;
    }
    return `${f.reason} (not asked again until ${new Date(f.until).toISOString()})`;
  }

  /** Forget cached answers (e.g. after `postern crl import` in the same process). */
  clear(): void {
    this.ocspCache.clear();
    this.crlCache.clear();
    this.failures.clear();
  }
}

function put<V>(m: Map<string, V>, k: string, v: V): void {
  if (m.size >= MAX_CACHE && !m.has(k)) m.delete(m.keys().next().value!);
  m.set(k, v);
}
