/**
 * Value types and small interfaces of revocation checking (RFC 6960 OCSP, RFC 5280 CRLs): what a
 * check answers, and the I/O the checker is given (an HTTP fetcher, the keystore's imported CRLs
 * and the internal CA's own revocations), so the checking logic stays pure and testable with
 * real peers or fakes.
 */
import type { CertInfo } from './types.js';

export type RevocationStatus = 'good' | 'revoked' | 'unknown';
export type RevocationSource = 'ocsp' | 'crl' | 'local' | 'none';

export interface RevocationResult {
  status: RevocationStatus;
  /** Why the status is 'unknown' (or what could not be used on the way to an answer); one sentence. */
  reason?: string;
  /** When revoked. */
  revokedAt?: Date;
  /** RFC 5280 CRLReason name ("keyCompromise" …) when revoked and the source said why. */
  revocationReason?: string;
  /** 'local': the internal CA's own revocation records in the keystore (authoritative, offline). */
  source: RevocationSource;
}

/** One HTTP exchange. Implementations must enforce the time-out and the body limit themselves. */
export interface HttpRequest {
  url: string;
  method: 'GET' | 'POST';
  body?: Buffer;
  contentType?: string;
  accept?: string;
  /** The whole exchange (connect, send, receive) must end within this many ms. */
  timeoutMs: number;
  /** Refuse a body larger than this (bytes). */
  maxBytes: number;
}

export interface HttpResponse {
  status: number;
  contentType?: string;
  body: Buffer;
}

/** Rejects on network errors, time-outs and oversized bodies; any status code resolves. */
export type HttpFetcher = (req: HttpRequest) => Promise<HttpResponse>;

/** One LDAP read of a CRL distribution point (an RFC 4516 URL a certificate or CRL names). */
export interface LdapRequest {
  url: string;
  /** The attribute read when the URL names none (certificateRevocationList, deltaRevocationList). */
  attribute: string;
  /** The whole exchange (connect, bind, search) must end within this many ms. */
  timeoutMs: number;
  /** Refuse an answer larger than this (bytes). */
  maxBytes: number;
}

/**
 * The values of the attribute (DER or PEM bytes). Rejects on network errors, time-outs, oversized
 * answers and URLs it will not follow; implementations enforce the limits themselves.
 */
export type LdapFetcher = (req: LdapRequest) => Promise<Buffer[]>;

/** A stored CRL as the keystore hands it to the checker (verified again before use). */
export interface CrlRecord {
  der: Buffer;
  source: string;
}

/**
 * The keystore's part in revocation. `localStatus` answers for certificates issued by our own
 * internal CA (undefined when `issuer` is not ours), from the records `postern ca revoke` writes:
 * they need no signature, no network and are never stale.
 */
export interface RevocationStoreView {
  importedCrls(issuer: CertInfo): Promise<CrlRecord[]>;
  localStatus?(cert: CertInfo, issuer: CertInfo): Promise<{ revoked: false } | { revoked: true; revokedAt: Date; reason?: string } | undefined>;
  /** Certificates in the store with this subject (RFC 4514): candidates for the signer of an indirect CRL. */
  certificatesBySubject?(subject: string): Promise<CertInfo[]>;
}

/**
 * The store behind a RevocationStoreView cannot answer now (its database is down). check() throws
 * it rather than going on to OCSP and CRLs without the store's answer: a revocation only the
 * store records (the internal CA's) must not be missed in soft mode; the caller defers the mail.
 */
export class RevocationStoreUnavailableError extends Error {
  override readonly name = 'RevocationStoreUnavailableError';
}

/** Typed error of revocation parsing (never thrown out of RevocationChecker.check). */
export class RevocationError extends Error {
  override readonly name = 'RevocationError';
}

/** RFC 5280 §5.3.1 CRLReason codes (8 is unused). */
export const CRL_REASONS: Record<number, string> = {
  0: 'unspecified', 1: 'keyCompromise', 2: 'cACompromise', 3: 'affiliationChanged', 4: 'superseded',
  5: 'cessationOfOperation', 6: 'certificateHold', 8: 'removeFromCRL', 9: 'privilegeWithdrawn', 10: 'aACompromise',
};
export const CRL_REASON_CODES: Record<string, number> = Object.fromEntries(Object.entries(CRL_REASONS).map(([k, v]) => [v, Number(k)]));
