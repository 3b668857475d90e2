/**
 * The CRL half of revocation checking (RFC 5280 §6.3): CRLs the admin imported, then the
 * certificate's distribution points over http(s) or ldap(s) (RFC 4516 URLs, read through the
 * LdapFetcher the composition root passes in); a delta CRL on top of the complete one whenever the
 * CRL or the certificate names one (freshestCRL); indirect CRLs, whose signer — named by the
 * distribution point's cRLIssuer — must hold a certificate with cRLSign from a CA of the path, and
 * is itself checked for revocation.
 *
 * What may be concluded: a listing in a verified, current CRL is final. "Not listed" is good only
 * from a complete CRL that covers the certificate and the distribution point it was found at,
 * plus a current delta when the CA publishes deltas, signed by a signer whose own status is
 * known good; anything less is a reason, and the status stays unknown (the caller's soft/hard
 * decision). Untrusted input: every URL and every byte a distribution point sends.
 */
import {
  certDistributionPoints, crlCovers, crlEntryFor, crlTimeProblem, crlToDer, deltaProblem, entryWithDelta, parseCrl, verifyCrlSignature,
  type CrlEntry, type DistributionPoint, type ParsedCrl,
} from './crl.js';
import { pkijsCertificate } from './ocsp.js';
import { put, type Cached, type FailureMemo } from './rev-cache.js';
import type { HttpFetcher, LdapFetcher, RevocationResult, RevocationStoreView } from './rev-types.js';
import type { CertInfo } from './types.js';

/** Where a check stands: its clock, how deep in checks of signers' own certificates, and the CAs above the issuer. */
export interface CheckContext {
  at: Date;
  /** 0 for the certificate asked about; 1 for a delegated responder's or CRL signer's own certificate. */
  depth: number;
  /** The certificates above the issuer in the path (its issuer … the trust anchor). */
  above: readonly CertInfo[];
}

export type StatusCheck = (cert: CertInfo, issuer: CertInfo, ctx: CheckContext) => Promise<RevocationResult>;

export interface CrlCheckerOptions {
  fetch: HttpFetcher;
  ldap?: LdapFetcher;
  store?: RevocationStoreView;
  timeoutMs: number;
  cacheTtlMs: number;
  clockSkewMs: number;
  maxCrlBytes: number;
  maxLdapCrlBytes: number;
  failures: FailureMemo;
  /** The whole check (local, OCSP, CRL) of a CRL signer's own certificate. */
  status: StatusCheck;
}

/** A CRL whose signature was checked; `limited` says why only its listings may be believed. */
interface Verified {
  crl: ParsedCrl;
  limited?: string;
}

// A hostile certificate may name any number of places; each may cost a time-out.
const MAX_URLS = 3;
const fetchable = (url: string) => /^(https?|ldaps?):\/\//i.test(url);
const revoked = (e: CrlEntry): RevocationResult => ({ status: 'revoked', source: 'crl', revokedAt: e.revokedAt, ...(e.reason ? { revocationReason: e.reason } : {}) });

export class CrlChecker {
  private readonly cache = new Map<string, Cached<Verified>>();
  /** Verified imported CRLs, by DER SHA-256 and issuer (verification costs a signature check). */
  private readonly imports = new Map<string, ParsedCrl>();
  private readonly inflight = new Map<string, Promise<Verified | string>>();

  constructor(private readonly o: CrlCheckerOptions) {}

  async status(cert: CertInfo, issuer: CertInfo, ctx: CheckContext, reasons: string[]): Promise<RevocationResult | undefined> {
    let dps: DistributionPoint[];
    let certFreshest: DistributionPoint[];
    try {
      dps = certDistributionPoints(cert, 'crl');
      certFreshest = certDistributionPoints(cert, 'freshest');
    } catch (err) {
      reasons.push(`the certificate's distribution points cannot be read (${(err as Error).message})`);
      return undefined;
    }
    const { completes, deltas } = await this.imported(cert, issuer, ctx, dps, reasons);
    for (const c of completes) {
      const e = crlEntryFor(c, cert);
      // A revocation is final; only a hold may be released by a newer CRL or a delta.
      if (e && e.reason !== 'certificateHold') return revoked(e);
    }
    // A current imported CRL is enough (RFC 5280 asks no more), and spares an offline gateway a
    // time-out per check — unless the CA publishes deltas and none can be had.
    const newest = completes.sort((a, b) => b.thisUpdate.getTime() - a.thisUpdate.getTime())[0];
    if (newest) {
      const r = await this.decide(cert, issuer, { crl: newest }, certFreshest, deltas, ctx, reasons);
      if (r) return r;
    }
    for (const dp of dps.slice(0, MAX_URLS)) {
      const expected = dp.crlIssuer ?? cert.issuer;
      for (const url of dp.urls.slice(0, MAX_URLS)) {
        if (!fetchable(url)) {
          reasons.push(`CRL distribution point ${url} is neither http(s) nor ldap(s) and is not fetched`);
          continue;
        }
        const v = await this.fetchCrl(url, 'complete', issuer, ctx);
        if (typeof v === 'string') {
          reasons.push(v);
          continue;
        }
        if (v.crl.deltaBase !== undefined) reasons.push(`the CRL at ${url} is a delta CRL where a complete one belongs`);
        else if (v.crl.issuer !== expected) reasons.push(`the CRL at ${url} was issued by ${v.crl.issuer}, but the distribution point names ${expected}`);
        else if (!crlCovers(v.crl, cert, [dp])) reasons.push(`the CRL at ${url} does not cover this certificate (its issuingDistributionPoint)`);
        else {
          const r = await this.decide(cert, issuer, v, certFreshest, deltas, ctx, reasons);
          if (r) return r;
          break; // the other names of this point serve the same CRL
        }
      }
    }
    return undefined;
  }

  /** From a verified complete CRL, with a delta when there is one: the status, or undefined (and a reason). */
  private async decide(cert: CertInfo, issuer: CertInfo, v: Verified, certFreshest: DistributionPoint[], importedDeltas: ParsedCrl[], ctx: CheckContext, reasons: string[]): Promise<RevocationResult | undefined> {
    const complete = v.crl;
    const listed = crlEntryFor(complete, cert);
    // A revocation needs no delta: a delta can only add revocations, or release a hold.
    if (listed && listed.reason !== 'certificateHold') return revoked(listed);
    const fits = (d: ParsedCrl) => !deltaProblem(complete, d) && !crlTimeProblem(d, ctx.at, this.o.clockSkewMs);
    let delta: Verified | undefined = importedDeltas
      .filter(fits)
      .sort((a, b) => Number(b.crlNumber! - a.crlNumber!))
      .map((crl) => ({ crl }))[0];
    const published = (complete.freshest.length ? complete.freshest : certFreshest).flatMap((dp) => dp.urls).filter(fetchable);
    const problems: string[] = [];
    for (const url of delta ? [] : published.slice(0, MAX_URLS)) {
      const d = await this.fetchCrl(url, 'delta', issuer, ctx);
      if (typeof d === 'string') {
        problems.push(d);
        continue;
      }
      const p = deltaProblem(complete, d.crl) ?? crlTimeProblem(d.crl, ctx.at, this.o.clockSkewMs);
      if (p) {
        problems.push(`the delta CRL at ${url}: ${p}`);
        continue;
      }
      delta = d;
      break;
    }
    if (!delta && published.length) {
      // A hold stays a hold until a delta we can read says otherwise.
      if (listed) return revoked(listed);
      reasons.push(`the CA publishes delta CRLs and no current one could be had, so recent revocations are unknown (${problems.join('; ') || 'no usable delta'})`);
      return undefined;
    }
    const e = entryWithDelta(complete, delta?.crl, cert);
    if (e) return revoked(e);
    const limited = v.limited ?? delta?.limited;
    if (limited) {
      reasons.push(limited);
      return undefined;
    }
    return { status: 'good', source: 'crl' };
  }

  /** Imported CRLs of the issuer that are verified and current: complete ones covering `cert`, and deltas. */
  private async imported(cert: CertInfo, issuer: CertInfo, ctx: CheckContext, dps: DistributionPoint[], reasons: string[]): Promise<{ completes: ParsedCrl[]; deltas: ParsedCrl[] }> {
    const completes: ParsedCrl[] = [];
    const deltas: ParsedCrl[] = [];
    if (!this.o.store) return { completes, deltas };
    try {
      for (const rec of await this.o.store.importedCrls(issuer)) {
        const c = await this.verifiedImport(rec.der, issuer);
        if (typeof c === 'string') {
          reasons.push(`imported CRL (${rec.source}): ${c}`);
          continue;
        }
        const t = crlTimeProblem(c, ctx.at, this.o.clockSkewMs);
        if (t) reasons.push(`imported CRL (${rec.source}): ${t}`);
        else if (c.deltaBase !== undefined) deltas.push(c);
        else if (crlCovers(c, cert, dps)) completes.push(c);
      }
    } catch (err) {
      reasons.push(`imported CRLs could not be read (${(err as Error).message})`);
    }
    return { completes, deltas };
  }

  private async verifiedImport(der: Buffer, issuer: CertInfo): Promise<ParsedCrl | string> {
    try {
      const c = parseCrl(der);
      const k = `${c.sha256}:${issuer.fingerprint}`;
      const known = this.imports.get(k);
      if (known) return known;
      const bad = await verifyCrlSignature(c, issuer);
      if (bad) return bad;
      put(this.imports, k, c);
      return c;
    } catch (err) {
      return (err as Error).message;
    }
  }

  /** A verified CRL from `url` that is current at `ctx.at`, or the reason there is none. */
  private async fetchCrl(url: string, kind: 'complete' | 'delta', issuer: CertInfo, ctx: CheckContext): Promise<Verified | string> {
    // By depth too: what a signer's own check may accept differs, and a CRL naming its own signer's
    // distribution point must not wait for itself.
    const key = `${issuer.fingerprint}:${ctx.depth}:${url}`;
    const now = ctx.at.getTime();
    const hit = this.cache.get(key);
    const currentHit = hit && hit.expires > now && !crlTimeProblem(hit.value.crl, ctx.at, this.o.clockSkewMs) ? hit.value : undefined;
    if (currentHit && hit!.refresh > now) return currentHit;
    const failed = this.o.failures.recent(url, now) ?? this.o.failures.recent(key, now);
    if (failed) return currentHit ?? failed;
    // Several mails checking the same issuer at once share one download.
    let p = this.inflight.get(key);
    if (!p) {
      p = this.download(url, kind, issuer, ctx, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const got = await p;
    if (typeof got === 'string') return currentHit ?? got;
    const t = crlTimeProblem(got.crl, ctx.at, this.o.clockSkewMs);
    return t ? (currentHit ?? `the CRL at ${url}: ${t}`) : got;
  }

  private async download(url: string, kind: 'complete' | 'delta', issuer: CertInfo, ctx: CheckContext, key: string): Promise<Verified | string> {
    const now = ctx.at.getTime();
    const candidates: ParsedCrl[] = [];
    try {
      if (/^ldaps?:/i.test(url)) {
        if (!this.o.ldap) return `CRL distribution point ${url} is not fetched: no LDAP client here`;
        const values = await this.o.ldap({ url, attribute: kind === 'delta' ? 'deltaRevocationList' : 'certificateRevocationList', timeoutMs: this.o.timeoutMs, maxBytes: this.o.maxLdapCrlBytes });
        if (!values.length) throw new Error('the entry holds no CRL');
        let first: Error | undefined;
        for (const value of values.slice(0, 8)) {
          try {
            candidates.push(parseCrl(crlToDer(value)));
          } catch (err) {
            first ??= err as Error;
          }
        }
        if (!candidates.length) throw first!;
      } else {
        const res = await this.o.fetch({ url, method: 'GET', accept: 'application/pkix-crl', timeoutMs: this.o.timeoutMs, maxBytes: this.o.maxCrlBytes });
        if (res.status !== 200) throw new Error(`HTTP status ${res.status}`);
        candidates.push(parseCrl(crlToDer(res.body)));
      }
    } catch (err) {
      return this.o.failures.fail(url, `CRL distribution point ${url} failed: ${(err as Error).message}`, now);
    }
    // An LDAP entry may hold several values (an old CRL left beside the new one): the newest that verifies.
    candidates.sort((a, b) => b.thisUpdate.getTime() - a.thisUpdate.getTime());
    let why = '';
    for (const c of candidates) {
      const v = await this.verify(c, issuer, ctx);
      if (typeof v === 'string') {
        why ||= v;
        continue;
      }
      const next = c.nextUpdate?.getTime();
      const expires = next ?? now + this.o.cacheTtlMs;
      // Fetch again a little before nextUpdate (a tenth of the CRL's period, at most an hour), so
      // checks never hit the gap between an expiring CRL and its successor.
      const margin = next ? Math.min(3_600_000, Math.max(0, (next - c.thisUpdate.getTime()) / 10)) : 0;
      put(this.cache, key, { value: v, expires, refresh: Math.min(expires - margin, now + this.o.cacheTtlMs) });
      return v;
    }
    return this.o.failures.fail(key, `the CRL at ${url} is refused: ${why}`, now);
  }

  /**
   * Whose signature makes the CRL believable (RFC 5280 §6.3.3 (f)): the issuer's, or — for an
   * indirect CRL — that of a CRL signer whose certificate has cRLSign, was issued by a CA of the
   * path, and is not revoked itself (unknown: only its listings count).
   */
  private async verify(c: ParsedCrl, issuer: CertInfo, ctx: CheckContext): Promise<Verified | string> {
    if (c.issuer === issuer.subject) {
      const bad = await verifyCrlSignature(c, issuer);
      return bad ?? { crl: c };
    }
    if (!c.scope?.indirect) return `it was issued by ${c.issuer}, not by ${issuer.subject}, and is not an indirect CRL`;
    if (ctx.depth > 0) return 'an indirect CRL is not taken for the status of a CRL signer\'s or responder\'s own certificate';
    const cas = [issuer, ...ctx.above];
    const seen = new Set<string>();
    const candidates = [...cas.filter((x) => x.subject === c.issuer), ...((await this.o.store?.certificatesBySubject?.(c.issuer)) ?? [])]
      .filter((x) => !seen.has(x.fingerprint) && seen.add(x.fingerprint));
    let why = `no certificate of its issuer ${c.issuer} is known (import it with postern cert import)`;
    const at = ctx.at.getTime();
    for (const signer of candidates) {
      const bad = await verifyCrlSignature(c, signer);
      if (bad) {
        why = bad;
        continue;
      }
      // A CA of the path is checked as part of the path.
      if (cas.some((x) => x.fingerprint === signer.fingerprint)) return { crl: c };
      if (!signer.keyUsage?.includes('cRLSign')) {
        why = `${signer.subject} may not sign CRLs (its certificate lacks the cRLSign key usage)`;
        continue;
      }
      if (signer.notBefore.getTime() > at + this.o.clockSkewMs || signer.notAfter.getTime() < at - this.o.clockSkewMs) {
        why = `the certificate of the CRL signer ${signer.subject} is not valid at the time of the check`;
        continue;
      }
      const i = await indexOfParent(signer, cas);
      if (i < 0) {
        why = `the certificate of the CRL signer ${signer.subject} was not issued by a CA of the certificate's path`;
        continue;
      }
      const st = await this.o.status(signer, cas[i]!, { at: ctx.at, depth: ctx.depth + 1, above: cas.slice(i + 1) });
      if (st.status === 'revoked') {
        why = `the certificate of the CRL signer ${signer.subject} is revoked`;
        continue;
      }
      return st.status === 'good' ? { crl: c } : { crl: c, limited: `the revocation status of the indirect CRL's signer ${signer.subject} is unknown (${st.reason ?? 'no answer'}), so its silence is not taken as good` };
    }
    return why;
  }

  clear(): void {
    this.cache.clear();
  }
}

async function indexOfParent(cert: CertInfo, cas: readonly CertInfo[]): Promise<number> {
  for (let i = 0; i < cas.length; i++) {
    if (cas[i]!.subject !== cert.issuer) continue;
    if (await pkijsCertificate(cert).verify(pkijsCertificate(cas[i]!)).catch(() => false)) return i;
  }
  return -1;
}
