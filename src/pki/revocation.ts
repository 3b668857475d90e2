/**
 * Revocation checking of one certificate against its issuer: the internal CA's own records
 * first (authoritative, offline), then OCSP (the AIA responder), then CRLs (rev-crl.ts: imported
 * ones, then the distribution points over http(s) and ldap(s), delta and indirect CRLs). Answers
 * are cached per process: OCSP until nextUpdate (or cache_ttl), CRLs until shortly before their
 * nextUpdate (then fetched again; the old one is used while still current if that fails).
 * Network and parse failures are never thrown: they are 'unknown' with a reason, and what
 * 'unknown' means (soft or hard fail) is the caller's choice (revocationSeam, rev-seam.ts).
 *
 * A delegated OCSP responder's own certificate is checked too unless it carries
 * id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1), as is an indirect CRL's signer: through this same
 * checker one level down, where only the issuer's own word counts (no delegate vouches for
 * itself). A revoked delegate's answers are ignored; one whose status is unknown may still
 * report a revocation, never a "good". Untrusted input: every URL a certificate names and every
 * byte a responder or distribution point sends.
 */
import { checkOcspResponse, buildOcspRequest } from './ocsp.js';
import { FailureMemo, put, type Cached } from './rev-cache.js';
import { CrlChecker, type CheckContext } from './rev-crl.js';
import { RevocationStoreUnavailableError, type HttpFetcher, type LdapFetcher, type RevocationResult, type RevocationStoreView } from './rev-types.js';
import type { CertInfo } from './types.js';

export interface RevocationCheckerOptions {
  fetch: HttpFetcher;
  /** Reads ldap:// distribution points; without it they are reported as not fetched. */
  ldap?: LdapFetcher;
  store?: RevocationStoreView;
  /** Per HTTP or LDAP exchange (ms). */
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
  /**
   * CRLs over LDAP: lower, since ldapts gathers a message by concatenating every chunk (quadratic:
   * a hostile 16 MB answer blocks the event loop for seconds, a 4 MB one for a fifth of one).
   */
  maxLdapCrlBytes?: number;
  requireNonce?: boolean;
  now?: () => Date;
}

// 0: the certificate asked about; 1: a delegate's own certificate, where delegation is refused,
// so nothing goes deeper. The bound is a second line.
const MAX_DEPTH = 1;

export class RevocationChecker {
  private readonly o: Required<Omit<RevocationCheckerOptions, 'store' | 'ldap'>> & Pick<RevocationCheckerOptions, 'store' | 'ldap'>;
  private readonly ocspCache = new Map<string, Cached<RevocationResult>>();
  private readonly failures: FailureMemo;
  private readonly crls: CrlChecker;

  constructor(opts: RevocationCheckerOptions) {
    this.o = {
      timeoutMs: 5_000, ocsp: true, crl: true, cacheTtlMs: 3_600_000, failureTtlMs: 60_000, clockSkewMs: 5 * 60_000,
      maxOcspBytes: 64 * 1024, maxCrlBytes: 16 * 1024 * 1024, maxLdapCrlBytes: 4 * 1024 * 1024, requireNonce: false, now: () => new Date(),
      ...opts,
    };
    this.failures = new FailureMemo(this.o.failureTtlMs);
    this.crls = new CrlChecker({
      fetch: this.o.fetch, ...(this.o.ldap ? { ldap: this.o.ldap } : {}), ...(this.o.store ? { store: this.o.store } : {}),
      timeoutMs: this.o.timeoutMs, cacheTtlMs: this.o.cacheTtlMs, clockSkewMs: this.o.clockSkewMs, maxCrlBytes: this.o.maxCrlBytes, maxLdapCrlBytes: this.o.maxLdapCrlBytes,
      failures: this.failures, status: (c, i, ctx) => this.statusOf(c, i, ctx),
    });
  }

  /**
   * `at` is the clock of the check (default: now): responses and CRLs must be current then, and
   * cached ones expire by it. It is not a signature's signing time: that is the signer's claim,
   * and a responder speaks about the present, so a revocation of any date counts. `above`: the
   * certificates above the issuer in the path, to which an indirect CRL's signer must chain.
   */
  check(cert: CertInfo, issuer: CertInfo, opts: { at?: Date; above?: readonly CertInfo[] } = {}): Promise<RevocationResult> {
    return this.statusOf(cert, issuer, { at: opts.at ?? this.o.now(), depth: 0, above: opts.above ?? [] });
  }

  private async statusOf(cert: CertInfo, issuer: CertInfo, ctx: CheckContext): Promise<RevocationResult> {
    if (ctx.depth > MAX_DEPTH) return { status: 'unknown', source: 'none', reason: 'too many levels of delegated responders and CRL signers' };
    const reasons: string[] = [];
    try {
      const local = await this.o.store?.localStatus?.(cert, issuer);
      if (local) {
        return local.revoked
          ? { status: 'revoked', source: 'local', revokedAt: local.revokedAt, ...(local.reason ? { revocationReason: local.reason } : {}) }
          : { status: 'good', source: 'local' };
      }
    } catch (err) {
      if (err instanceof RevocationStoreUnavailableError) throw err;
      reasons.push(`the keystore could not be asked (${(err as Error).message})`);
    }
    if (this.o.ocsp) {
      const r = await this.viaOcsp(cert, issuer, ctx, reasons);
      if (r) return r;
    }
    if (this.o.crl) {
      const r = await this.crls.status(cert, issuer, ctx, reasons);
      if (r) return r;
    }
    if (!reasons.length) reasons.push(this.o.ocsp || this.o.crl ? 'the certificate names no OCSP responder or CRL distribution point, and no CRL of its issuer was imported' : 'revocation checking is off');
    return { status: 'unknown', source: 'none', reason: reasons.join('; ') };
  }

  private async viaOcsp(cert: CertInfo, issuer: CertInfo, ctx: CheckContext, reasons: string[]): Promise<RevocationResult | undefined> {
    // A delegate's own certificate is answered for by the issuer alone: a separate cache entry.
    const key = `${issuer.fingerprint}:${cert.fingerprint}${ctx.depth ? ':direct' : ''}`;
    const at = ctx.at;
    const now = at.getTime();
    const hit = this.ocspCache.get(key);
    if (hit && hit.expires > now) return hit.value;
    for (const url of cert.ocspUrls.filter((u) => /^https?:\/\//i.test(u)).slice(0, 2)) {
      const failed = this.failures.recent(url, now);
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
        reasons.push(this.failures.fail(url, `OCSP responder ${url} failed: ${(err as Error).message}`, now));
        continue;
      }
      const v = await checkOcspResponse(body, {
        cert, issuer, nonce: req.nonce, at, skewMs: this.o.clockSkewMs, maxAgeMs: this.o.cacheTtlMs, requireNonce: this.o.requireNonce, delegation: ctx.depth === 0,
      });
      if (!v.ok) {
        reasons.push(`${v.reason} (from ${url})`);
        continue;
      }
      if (v.status === 'unknown') {
        reasons.push(`the OCSP responder ${url} does not know the certificate`);
        continue;
      }
      if (v.responder && !v.responder.noCheck) {
        const own = await this.statusOf(v.responder.cert, issuer, { ...ctx, depth: ctx.depth + 1 });
        if (own.status === 'revoked') {
          reasons.push(`the OCSP responder ${url} signs with a revoked certificate (${v.responder.cert.subject}), so its answer is not taken`);
          continue;
        }
        if (own.status === 'unknown' && v.status === 'good') {
          reasons.push(`the OCSP responder ${url} says good, but the revocation status of its own certificate ${v.responder.cert.subject} is unknown (${own.reason ?? 'no answer'}) and it carries no id-pkix-ocsp-nocheck`);
          continue;
        }
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

  /** Forget cached answers (e.g. after `postern crl import` in the same process). */
  clear(): void {
    this.ocspCache.clear();
    this.crls.clear();
    this.failures.clear();
  }
}
