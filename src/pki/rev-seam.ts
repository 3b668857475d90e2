/**
 * From per-certificate answers to what the mail path needs: a whole chain checked (each
 * certificate against its issuer, signer first; the trust anchor is trusted by configuration and
 * not checked), the soft/hard decision, and the `RevocationCheck` function smime/verify.ts takes.
 *
 * How 'unknown' shows in soft mode: verify.ts's seam can only say "revoked" or "not checked", so
 * the seam resolves undefined (the signature stays valid) and hands the full PathRevocation to
 * `onResult`; the caller keeps it with the verification result and writes it into the result
 * header (`revocationSummary` gives the text) — "valid, revocation unknown: <reason>" instead of
 * a silent "valid". Hard mode turns unknown into not usable, with the reason.
 */
import type { RevocationChecker } from './revocation.js';
import type { RevocationResult, RevocationStatus } from './rev-types.js';
import type { CertInfo } from './types.js';

export type RevocationMode = 'soft' | 'hard';

export interface PathRevocation {
  /** The worst over the path: revoked, then unknown, then good. */
  status: RevocationStatus;
  /** One per certificate checked, signer first. */
  certificates: { subject: string; serial: string; fingerprint: string; result: RevocationResult }[];
  /** For revoked or unknown: one sentence about the first certificate that is. */
  reason?: string;
}

/** Same shape as smime's RevocationCheck (pki cannot import smime, which builds on pki). */
export type PathRevocationCheck = (path: readonly CertInfo[], at: Date) => Promise<{ revoked: boolean; reason?: string } | undefined>;

const day = (d: Date | undefined) => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : 'an unknown date');

function sentence(c: PathRevocation['certificates'][number]): string {
  const r = c.result;
  if (r.status === 'revoked') return `the certificate ${c.subject} (serial ${c.serial}) was revoked on ${day(r.revokedAt)}${r.revocationReason ? ` (${r.revocationReason})` : ''}, says ${r.source === 'local' ? 'the internal CA' : r.source.toUpperCase()}`;
  return `the revocation status of ${c.subject} (serial ${c.serial}) is unknown: ${r.reason ?? 'no answer'}`;
}

export async function checkPath(checker: RevocationChecker, path: readonly CertInfo[], opts: { at?: Date } = {}): Promise<PathRevocation> {
  const pairs = path.slice(0, -1).map((cert, i) => [cert, path[i + 1]!] as const);
  const results = await Promise.all(pairs.map(([cert, issuer], i) => checker.check(cert, issuer, { ...opts, above: path.slice(i + 2) })));
  const certificates = pairs.map(([cert], i) => ({ subject: cert.subject, serial: cert.serial, fingerprint: cert.fingerprint, result: results[i]! }));
  const worst = certificates.find((c) => c.result.status === 'revoked') ?? certificates.find((c) => c.result.status === 'unknown');
  return worst ? { status: worst.result.status, certificates, reason: sentence(worst) } : { status: 'good', certificates };
}

/** Whether a checked path may be relied on in this mode: revoked never, unknown only in soft mode. */
export const pathUsable = (p: PathRevocation, mode: RevocationMode): boolean => p.status === 'good' || (p.status === 'unknown' && mode === 'soft');

/** Short text for a result header: "good (ocsp)", "revoked: …", "unknown: …". */
export function revocationSummary(p: PathRevocation): string {
  if (p.status === 'good') {
    const sources = [...new Set(p.certificates.map((c) => c.result.source))];
    return sources.length ? `good (${sources.join(', ')})` : 'good (nothing to check: the signer is a trust anchor)';
  }
  return `${p.status}: ${p.reason}`;
}

/**
 * The RevocationCheck of smime/verify.ts. verify passes the signing time as `at`; it is ignored
 * on purpose (the signer chooses it, and responders answer for the present): the check runs at
 * the checker's clock.
 */
export function revocationSeam(checker: RevocationChecker, mode: RevocationMode, opts: { onResult?: (r: PathRevocation) => void } = {}): PathRevocationCheck {
  return async (path) => {
    const p = await checkPath(checker, path);
    opts.onResult?.(p);
    if (p.status === 'revoked') return { revoked: true, reason: p.reason! };
    if (p.status === 'unknown') return mode === 'hard' ? { revoked: true, reason: `not usable (revocation hard-fail): ${p.reason}` } : undefined;
    return { revoked: false };
  };
}
