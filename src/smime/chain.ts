/**
 * Trust for S/MIME signers (RFC 5280 §6, as far as mail needs it): a TrustStore of anchors and
 * known intermediates, parsed once and reused per message, and path building from a signer
 * certificate through the message's certificates and the store's intermediates to an anchor.
 * Each CA on the path must be a CA (basicConstraints cA, or a v1 anchor), may sign certificates
 * (keyCertSign when key usage is present), be valid at the time in question, respect its path
 * length, and its signature on the certificate below must verify. Certificate signatures with
 * SHA-1 or MD5 break the path unless allowed. Name constraints and policies are not processed.
 * Revocation is not checked here: verify.ts calls the caller's revocation hook on the built path.
 */
import type { CertInfo } from '../pki/index.js';
import { loadCert, type CertEntry } from './sig-cert.js';
import { resolveSigAlg, verifySignature } from './sig-algs.js';
import { WEAK_DIGESTS } from './sig-der.js';

export interface TrustStore {
  readonly anchors: readonly CertInfo[];
  readonly intermediates: readonly CertInfo[];
  /** Certificates that could not be parsed, one sentence each (they are left out, not fatal). */
  readonly problems: readonly string[];
  /** @internal */
  readonly entries: { anchors: CertEntry[]; intermediates: CertEntry[]; bySubject: Map<string, CertEntry[]>; anchorFps: Set<string> };
  /** @internal Results of certificate signature checks (child>issuer fingerprints), bounded. */
  readonly sigCache: Map<string, boolean>;
}

const SIG_CACHE_MAX = 4096;
const MAX_DEPTH = 8;
const nameKey = (dn: string) => dn.toLowerCase();

function index(map: Map<string, CertEntry[]>, c: CertEntry): void {
  const k = nameKey(c.info.subject);
  const list = map.get(k);
  if (list) list.push(c);
  else map.set(k, [c]);
}

export function prepareTrustStore(anchorsDer: Buffer[], intermediatesDer: Buffer[] = []): TrustStore {
  const problems: string[] = [];
  const load = (list: Buffer[], what: string) =>
    list.flatMap((der, i) => {
      try {
        return [loadCert(der, `${what} ${i + 1}`)];
      } catch (err) {
        problems.push((err as Error).message);
        return [];
      }
    });
  const anchors = load(anchorsDer, 'trust anchor');
  const intermediates = load(intermediatesDer, 'intermediate certificate');
  const bySubject = new Map<string, CertEntry[]>();
  for (const c of [...anchors, ...intermediates]) index(bySubject, c);
  return Object.freeze({
    anchors: anchors.map((c) => c.info),
    intermediates: intermediates.map((c) => c.info),
    problems,
    entries: { anchors, intermediates, bySubject, anchorFps: new Set(anchors.map((c) => c.info.fingerprint)) },
    sigCache: new Map<string, boolean>(),
  });
}

export interface PathResult {
  trusted: boolean;
  /** Signer first; ends at the anchor when trusted, else the longest partial path found. */
  path: CertEntry[];
  reason?: string;
}

const when = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Why `c` cannot be the validity-checked certificate at `at`, or null. */
export function validityProblem(c: CertInfo, at: Date): string | null {
  if (at.getTime() < c.notBefore.getTime()) return `the certificate ${c.subject} is not valid before ${when(c.notBefore)}`;
  if (at.getTime() > c.notAfter.getTime()) return `the certificate ${c.subject} expired on ${when(c.notAfter)}`;
  return null;
}

/** Why `ca` cannot issue the certificate below it, which has `below` CA certificates under it. */
function caProblem(ca: CertEntry, isAnchor: boolean, below: number, at: Date): string | null {
  const i = ca.info;
  // RFC 5280 §6.1: a v1 certificate can only be a CA as a trust anchor, configured as such.
  if (!i.isCA && !(isAnchor && i.version === 1)) return `the issuer ${i.subject} is not a CA (no basicConstraints cA)`;
  if (i.keyUsage && !i.keyUsage.includes('keyCertSign')) return `the CA ${i.subject} may not sign certificates (no keyCertSign)`;
  if (i.pathLength !== undefined && below > i.pathLength) return `the CA ${i.subject} allows ${i.pathLength} intermediate CA(s) below it`;
  return validityProblem(i, at);
}

function signedBy(child: CertEntry, issuer: CertEntry, store: TrustStore, allowSha1: boolean): string | null {
  const alg = resolveSigAlg(child.sigOid, child.sigParams, undefined);
  if (typeof alg === 'string') return `the certificate ${child.info.subject}: ${alg}`;
  if (!allowSha1 && alg.hash && WEAK_DIGESTS.has(alg.hash)) return `the certificate ${child.info.subject} is signed with ${alg.hash.toUpperCase()}, which is no longer accepted`;
  if (!issuer.key) return `the public key of ${issuer.info.subject} cannot be used`;
  const k = `${child.info.fingerprint}>${issuer.info.fingerprint}`;
  let ok = store.sigCache.get(k);
  if (ok === undefined) {
    ok = verifySignature(issuer.key, alg, child.tbs, child.signature);
    if (store.sigCache.size >= SIG_CACHE_MAX) store.sigCache.clear();
    store.sigCache.set(k, ok);
  }
  return ok ? null : `the signature of ${issuer.info.subject} on ${child.info.subject} does not verify`;
}

/**
 * Build a path from `signer` to an anchor of `store`, using `messageCerts` and the store's
 * intermediates; the first path that validates wins. `at` is the time validity is judged at.
 */
export function buildPath(signer: CertEntry, messageCerts: CertEntry[], store: TrustStore, at: Date, allowSha1: boolean): PathResult {
  const { anchorFps, bySubject } = store.entries;
  const fromMessage = new Map<string, CertEntry[]>();
  for (const c of messageCerts) index(fromMessage, c);
  let best: PathResult = { trusted: false, path: [signer], reason: `no issuer certificate for ${signer.info.issuer} (not in the message nor in the trust store)` };

  const walk = (path: CertEntry[]): PathResult | null => {
    const cert = path[path.length - 1]!;
    if (anchorFps.has(cert.info.fingerprint)) return { trusted: true, path };
    if (path.length > MAX_DEPTH) {
      best = { trusted: false, path, reason: 'the certificate chain is too long' };
      return null;
    }
    const key = nameKey(cert.info.issuer);
    const seen = new Set(path.map((c) => c.info.fingerprint));
    const candidates = [...(bySubject.get(key) ?? []), ...(fromMessage.get(key) ?? [])]
      .filter((c, i, all) => !seen.has(c.info.fingerprint) && all.findIndex((d) => d.info.fingerprint === c.info.fingerprint) === i)
      // Anchors first, then candidates whose key id matches the child's authority key id.
      .sort((a, b) => rank(b) - rank(a));
    function rank(c: CertEntry): number {
      return (anchorFps.has(c.info.fingerprint) ? 2 : 0) + (cert.info.authorityKeyId && c.info.subjectKeyId === cert.info.authorityKeyId ? 1 : 0);
    }
    if (!candidates.length && path.length > best.path.length - 1) {
      best = {
        trusted: false,
        path,
        reason: cert.info.selfIssued ? `the self-signed certificate ${cert.info.subject} is not a trust anchor` : `no issuer certificate for ${cert.info.issuer} (not in the message nor in the trust store)`,
      };
    }
    for (const ca of candidates) {
      if (cert.info.authorityKeyId && ca.info.subjectKeyId && cert.info.authorityKeyId !== ca.info.subjectKeyId) continue;
      const problem = caProblem(ca, anchorFps.has(ca.info.fingerprint), path.length - 1, at) ?? signedBy(cert, ca, store, allowSha1);
      if (problem) {
        if (path.length >= best.path.length) best = { trusted: false, path, reason: problem };
        continue;
      }
      const found = walk([...path, ca]);
      if (found) return found;
    }
    return null;
  };
  return walk([signer]) ?? best;
}
