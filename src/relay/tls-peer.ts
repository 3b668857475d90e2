/**
 * Who is at the other end of a TLS connection to a next hop, and whether that is good enough for
 * the route's level: Postfix's "Untrusted / Trusted / Verified TLS connection established". The
 * certificate chain and every TLSA record are untrusted input; nothing here throws for them.
 *
 * - pkix (verify, sts): the chain ends at a trusted CA (Node's verdict against our CA list) and
 *   the certificate names the host (RFC 6125 via tls.checkServerIdentity; wildcards only in the
 *   leftmost label).
 * - dane (RFC 7672): DANE-EE(3) records match the server's certificate or key, names and dates not
 *   checked (§3.1.1); DANE-TA(2) records match a certificate of the chain the server sent, the
 *   chain verifies up to it, and the certificate names the host (§3.1.2). PKIX-TA/EE (0, 1) are
 *   unusable for SMTP (§3.1.3) and ignored.
 */
import { createHash, X509Certificate } from 'node:crypto';
import tls from 'node:tls';

/** The verification result recorded for a delivery. */
export type TlsVerification = 'untrusted' | 'trusted' | 'verified' | 'dane' | 'sts';

export interface TlsFacts {
  /** "TLSv1.3" */
  version: string;
  /** "TLS_AES_256_GCM_SHA384" */
  cipher: string;
  verification: TlsVerification;
}

/** One TLSA record (RFC 6698 §2.1). */
export interface TlsaRecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

/** What a route demands of the next hop's certificate once TLS is up. */
export type PeerCheck =
  /** `reportOnly`: MTA-STS testing mode — the result is reported, the delivery goes on regardless. */
  | { kind: 'pkix'; name: string; as: 'verified' | 'sts'; reportOnly?: boolean }
  | { kind: 'dane'; records: readonly TlsaRecord[]; name: string };

/** `report`: what a report-only check would have refused. */
export type PeerVerdict = { ok: true; facts: TlsFacts; report?: string } | { ok: false; facts: TlsFacts; reason: string };

/** Demands TLS: every check except a report-only one. */
export function demandsTls(check: PeerCheck | undefined): boolean {
  return check !== undefined && !(check.kind === 'pkix' && check.reportOnly);
}

/** "TLSv1.3 TLS_AES_256_GCM_SHA384 verified": as status records and `queue show` keep it. */
export function describeTls(f: TlsFacts): string {
  return `${f.version} ${f.cipher} ${f.verification}`;
}

/** Facts of a TLS session, and the verdict of `check` on it (no check: facts only). */
export function judgePeer(socket: tls.TLSSocket, check: PeerCheck | undefined): PeerVerdict {
  const v = judge(socket, check);
  if (v.ok || check?.kind !== 'pkix' || !check.reportOnly) return v;
  return { ok: true, facts: v.facts, report: v.reason };
}

function judge(socket: tls.TLSSocket, check: PeerCheck | undefined): PeerVerdict {
  const cipher = socket.getCipher();
  const base = { version: printable(socket.getProtocol() ?? 'TLS'), cipher: printable(cipher?.standardName ?? cipher?.name ?? 'unknown') };
  const leaf = socket.getPeerCertificate(true);
  const hasCert = !!leaf && !!leaf.raw;
  const trusted = socket.authorized && hasCert;
  if (!check) return { ok: true, facts: { ...base, verification: trusted ? 'trusted' : 'untrusted' } };
  if (!hasCert) return { ok: false, facts: { ...base, verification: 'untrusted' }, reason: 'Server certificate not trusted (no certificate)' };
  if (check.kind === 'pkix') {
    if (!trusted) return { ok: false, facts: { ...base, verification: 'untrusted' }, reason: `Server certificate not trusted (${authError(socket)})` };
    const nameError = tls.checkServerIdentity(check.name, leaf);
    if (nameError) return { ok: false, facts: { ...base, verification: 'trusted' }, reason: `Server certificate not verified (${printable(check.name)} is not a name of the certificate)` };
    return { ok: true, facts: { ...base, verification: check.as } };
  }
  const verdict = daneMatch(chainOf(leaf), check.records, check.name);
  const untrusted = { ...base, verification: (trusted ? 'trusted' : 'untrusted') as TlsVerification };
  return verdict === true ? { ok: true, facts: { ...base, verification: 'dane' } } : { ok: false, facts: untrusted, reason: verdict };
}

/** The chain as the server sent it, leaf first (Node links it through issuerCertificate). */
function chainOf(leaf: tls.DetailedPeerCertificate): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<string>();
  // A hostile server can send a long chain: ten certificates are more than any real one needs.
  for (let c: tls.DetailedPeerCertificate | undefined = leaf; c && c.raw && out.length < 10; c = c.issuerCertificate) {
    const key = c.fingerprint256;
    if (seen.has(key)) break; // the self-signed root links to itself
    seen.add(key);
    try {
      out.push(new X509Certificate(c.raw));
    } catch {
      break;
    }
  }
  return out;
}

/** The bytes a TLSA record's selector names: the whole certificate (0) or its SubjectPublicKeyInfo (1). */
function selected(cert: X509Certificate, selector: number): Buffer | undefined {
  if (selector === 0) return cert.raw;
  if (selector === 1) return cert.publicKey.export({ type: 'spki', format: 'der' });
  return undefined;
}

/** RFC 6698 §2.1.3: 0 full, 1 SHA-256, 2 SHA-512; an unknown matching type matches nothing. */
export function tlsaMatches(cert: X509Certificate, r: TlsaRecord): boolean {
  const bytes = selected(cert, r.selector);
  if (!bytes) return false;
  if (r.matchingType === 0) return bytes.equals(r.data);
  if (r.matchingType === 1) return r.data.length === 32 && createHash('sha256').update(bytes).digest().equals(r.data);
  if (r.matchingType === 2) return r.data.length === 64 && createHash('sha512').update(bytes).digest().equals(r.data);
  return false;
}

/** The records DANE for SMTP can use: DANE-TA(2) and DANE-EE(3) with known selector and matching type. */
export function usableTlsa(records: readonly TlsaRecord[]): TlsaRecord[] {
  return records.filter((r) => (r.usage === 2 || r.usage === 3) && (r.selector === 0 || r.selector === 1) && r.matchingType <= 2);
}

/** true, or why not (Postfix's wording where it has one). */
export function daneMatch(chain: readonly X509Certificate[], records: readonly TlsaRecord[], name: string, now = new Date()): true | string {
  const leaf = chain[0];
  if (!leaf) return 'Server certificate not trusted (no certificate)';
  const usable = usableTlsa(records);
  if (usable.some((r) => r.usage === 3 && tlsaMatches(leaf, r))) return true;
  const ta = usable.filter((r) => r.usage === 2);
  for (let i = 0; i < chain.length && ta.length; i++) {
    if (!ta.some((r) => tlsaMatches(chain[i]!, r))) continue;
    // The trust anchor is chain[i]: every link below it must be signed by the next and in date.
    for (let j = 0; j < i; j++) {
      const [c, issuer] = [chain[j]!, chain[j + 1]!];
      if (!c.checkIssued(issuer) || !c.verify(issuer.publicKey)) return 'TLSA record mismatch (the chain does not lead to the trust anchor)';
      if (Date.parse(c.validFrom) > now.getTime() || Date.parse(c.validTo) < now.getTime()) return 'Server certificate not trusted (expired or not yet valid)';
    }
    if (leaf.checkHost(name) === undefined) return `Server certificate not verified (${printable(name)} is not a name of the certificate)`;
    return true;
  }
  return 'TLSA record mismatch';
}

function authError(socket: tls.TLSSocket): string {
  const e = socket.authorizationError as unknown;
  // OpenSSL's words ("self-signed certificate", "unable to verify the first certificate").
  const text = e instanceof Error ? e.message : typeof e === 'string' ? e : 'not signed by a trusted CA';
  return printable(text);
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}
