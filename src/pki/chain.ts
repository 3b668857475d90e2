/**
 * The chain that goes with one of our users' certificates when it is handed to a partner (the
 * `{send_keys}` bundle, the portal's published certificates): issuers found among the CA
 * certificates we hold, each one proven by its signature over the certificate below — a matching
 * name alone could be any CA's. Only node:crypto: the supervisor publishes with it and the
 * portal's public face must stay small.
 *
 * Untrusted input: certificates from the store (admins' imports, LDAP, signed mail); a loop of
 * cross-certificates is stopped by the depth limit. No secrets.
 */
import { X509Certificate } from 'node:crypto';
import { EKU_ANY, EKU_EMAIL_PROTECTION } from './types.js';

/** What the chain walk needs of a stored certificate (the keystore's StoredCertificate has it). */
export interface ChainCertificate {
  fingerprint: string;
  der: Buffer;
  /** A trust anchor: preferred among several issuers of one name (a renewed CA). */
  trusted: boolean;
  notBefore: Date;
  notAfter: Date;
}

/** Deep enough for any real hierarchy; stops a loop of cross-certificates. */
export const MAX_CHAIN = 8;

/**
 * A certificate a partner can encrypt to and verify with, judged by its own fields: not a CA,
 * valid at `now`, and for e-mail when it restricts its use (no EKU, emailProtection or any).
 */
export function usableForEmail(c: { isCA: boolean; notBefore: Date; notAfter: Date; extKeyUsage: string[] | null }, now: number): boolean {
  if (c.isCA || c.notBefore.getTime() > now || c.notAfter.getTime() < now) return false;
  return !c.extKeyUsage || c.extKeyUsage.includes(EKU_EMAIL_PROTECTION) || c.extKeyUsage.includes(EKU_ANY);
}

/** Parsed once per walk: a walk over a whole store asks about the same few CAs again and again. */
class Parsed {
  private readonly cache = new Map<string, X509Certificate | null>();
  get(c: { fingerprint: string; der: Buffer }): X509Certificate | null {
    let x = this.cache.get(c.fingerprint);
    if (x === undefined) {
      try {
        x = new X509Certificate(c.der);
      } catch {
        x = null;
      }
      this.cache.set(c.fingerprint, x);
    }
    return x;
  }
}

function issuerIn<T extends ChainCertificate>(cert: X509Certificate, cas: readonly T[], now: number, parsed: Parsed): T | undefined {
  const rank = (c: T) => (c.trusted ? 2 : 0) + (c.notBefore.getTime() <= now && c.notAfter.getTime() >= now ? 1 : 0);
  return cas
    .filter((ca) => {
      const x = parsed.get(ca);
      if (!x) return false;
      // checkIssued: OpenSSL's X509_check_issued (names, key identifiers, keyCertSign); verify: the signature.
      try {
        return cert.checkIssued(x) && cert.verify(x.publicKey);
      } catch {
        return false;
      }
    })
    .sort((a, b) => rank(b) - rank(a) || b.notAfter.getTime() - a.notAfter.getTime())[0];
}

/** The issuer of `cert` (DER) among `cas`, or undefined when none of them signed it. */
export function issuerAmong<T extends ChainCertificate>(cert: Buffer, cas: readonly T[], now: number): T | undefined {
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
  } catch {
    return undefined;
  }
  return issuerIn(x, cas, now, new Parsed());
}

export interface Chain<T, L> {
  /** Issuers from the one above the leaf up to a self-issued root (or as far as the store goes). */
  issuers: T[];
  /** The certificate (the leaf or the last issuer) whose issuer is not among the CAs; absent when complete. */
  incompleteAt?: T | L;
}

/**
 * Walk up from `leaf` through `cas`. Stops at a self-issued certificate, at `stopAt` (issuers
 * already collected for another leaf: the rest of that chain is in) or after MAX_CHAIN steps.
 */
export function chainOf<T extends ChainCertificate, L extends { fingerprint: string; der: Buffer }>(leaf: L, cas: readonly T[], now: number, stopAt?: ReadonlySet<string>): Chain<T, L> {
  const parsed = new Parsed();
  const issuers: T[] = [];
  let at: T | L = leaf;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    const x = parsed.get(at);
    if (!x || x.subject === x.issuer) break;
    const up = issuerIn(x, cas, now, parsed);
    if (!up) return { issuers, incompleteAt: at };
    if (stopAt?.has(up.fingerprint) || issuers.some((i) => i.fingerprint === up.fingerprint)) break;
    issuers.push(up);
    at = up;
  }
  return { issuers };
}
