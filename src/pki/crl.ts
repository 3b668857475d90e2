/**
 * CRLs (RFC 5280 §5): parsing, the checks that make one usable for a certificate (signed by the
 * right issuer, issuer allowed to sign CRLs, current, its scope covering the certificate and the
 * distribution point that named it), the look-up of a serial, and a delta CRL on top of a
 * complete one (§5.2.4). Indirect CRLs (§5.3.3) keep each entry under the issuer of the
 * certificate it lists (certificateIssuer). Untrusted input: CRL bytes from distribution points
 * (http, ldap) and from `postern crl import`; anything malformed is a RevocationError with a
 * one-line reason. Pure; no I/O. The internal CA's own CRL is built in crl-build.ts.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { pkijsCertificate, serialOf } from './ocsp.js';
import { CRL_REASONS, RevocationError } from './rev-types.js';
import type { CertInfo } from './types.js';
import { decodeStrict, dnToString, ensurePkijsEngine, sha256Hex } from './x509.js';

ensurePkijsEngine();

export const CRL_EXT = {
  crlNumber: '2.5.29.20', reasonCode: '2.5.29.21', holdInstruction: '2.5.29.23', invalidityDate: '2.5.29.24', deltaIndicator: '2.5.29.27',
  idp: '2.5.29.28', certificateIssuer: '2.5.29.29', cdp: '2.5.29.31', aki: '2.5.29.35', freshest: '2.5.29.46',
};
const EXT = CRL_EXT;
/** CRL extensions whose meaning we handle; another critical one makes the CRL unusable (RFC 5280 §5.2). */
const KNOWN_CRL_EXT = new Set([EXT.crlNumber, EXT.idp, EXT.aki, EXT.deltaIndicator, EXT.freshest]);
const KNOWN_ENTRY_EXT = new Set([EXT.reasonCode, EXT.invalidityDate, EXT.certificateIssuer, EXT.holdInstruction]);

export interface CrlEntry {
  revokedAt: Date;
  reason?: string;
}

/** A distribution point as a certificate (cRLDistributionPoints, freshestCRL) or a CRL (freshestCRL) names it. */
export interface DistributionPoint {
  /** The full name's URIs, in order: where the CRL is fetched. */
  urls: string[];
  /** Every name of the full name ("uri:…", "dn:…", "dns:…"), to match a CRL's issuingDistributionPoint. */
  names: string[];
  /**
   * cRLIssuer (RFC 4514): the CRL is issued by this entity, not by the certificate's issuer (an
   * indirect CRL). An empty string when the field holds no directory name: no CRL can match it.
   */
  crlIssuer?: string;
}

export interface ParsedCrl {
  der: Buffer;
  /** SHA-256 of the DER, hex. */
  sha256: string;
  /** RFC 4514 string of the CRL issuer. */
  issuer: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: bigint;
  /** Entries for certificates the CRL issuer issued, by serial number. */
  entries: Map<bigint, CrlEntry>;
  /** Indirect CRLs: entries for certificates of other issuers (certificateIssuer), by issuer (RFC 4514), then serial. */
  otherIssuers: Map<string, Map<bigint, CrlEntry>>;
  /** Set on a delta CRL (deltaCRLIndicator): it lists only changes since the complete CRL with this number. */
  deltaBase?: bigint;
  /** freshestCRL: where the delta CRLs of this complete CRL are published. */
  freshest: DistributionPoint[];
  /** Issuing distribution point (RFC 5280 §5.2.5), when the CRL has one. */
  scope?: { onlyUser: boolean; onlyCA: boolean; onlyAttribute: boolean; indirect: boolean; names: string[] };
  crl: pkijs.CertificateRevocationList;
}

/** General names as comparable strings; names of kinds we do not compare stay unique to their bytes. */
function nameStrings(names: pkijs.GeneralName[]): string[] {
  return names.map((n) => {
    if (n.type === 6 && typeof n.value === 'string') return `uri:${n.value}`;
    if (n.type === 2 && typeof n.value === 'string') return `dns:${n.value.toLowerCase()}`;
    if (n.type === 4 && n.value instanceof pkijs.RelativeDistinguishedNames) return `dn:${dnToString(n.value.toSchema())}`;
    return `other:${n.type}:${Buffer.from((n.toSchema() as asn1js.BaseBlock).toBER(false)).toString('hex')}`;
  });
}

function parseDistributionPoints(ext: pkijs.Extension, what: string): DistributionPoint[] {
  const v = ext.parsedValue as (pkijs.CRLDistributionPoints & { parsingError?: string }) | undefined;
  if (!v || v.parsingError || !Array.isArray(v.distributionPoints)) throw new RevocationError(`malformed ${what} extension`);
  return v.distributionPoints.map((dp) => {
    // A name relative to the CRL issuer names no place we could fetch from; it matches nothing.
    const full = Array.isArray(dp.distributionPoint) ? dp.distributionPoint : [];
    const names = nameStrings(full);
    const out: DistributionPoint = { urls: names.filter((n) => n.startsWith('uri:')).map((n) => n.slice(4)), names };
    if (dp.cRLIssuer) out.crlIssuer = nameStrings(dp.cRLIssuer).find((n) => n.startsWith('dn:'))?.slice(3) ?? '';
    return out;
  });
}

/**
 * The certificate's distribution points: cRLDistributionPoints (restricted to the URLs in
 * `cert.crlUrls`, plus plain points for URLs set there apart from the DER) or freshestCRL.
 */
export function certDistributionPoints(cert: CertInfo, which: 'crl' | 'freshest'): DistributionPoint[] {
  const ext = pkijsCertificate(cert).extensions?.find((e) => e.extnID === (which === 'crl' ? EXT.cdp : EXT.freshest));
  const parsed = ext ? parseDistributionPoints(ext, which === 'crl' ? 'cRLDistributionPoints' : 'freshestCRL') : [];
  if (which === 'freshest') return parsed;
  const listed = new Set(cert.crlUrls);
  const out = parsed.map((dp) => ({ ...dp, urls: dp.urls.filter((u) => listed.has(u)) })).filter((dp) => dp.urls.length);
  const inDer = new Set(parsed.flatMap((dp) => dp.urls));
  for (const u of cert.crlUrls) if (!inDer.has(u)) out.push({ urls: [u], names: [`uri:${u}`] });
  return out;
}

/** Parse a DER CRL (PEM is handled by the caller: crlToDer). */
export function parseCrl(der: Buffer): ParsedCrl {
  let crl: pkijs.CertificateRevocationList;
  try {
    crl = new pkijs.CertificateRevocationList({ schema: decodeStrict(der, 'CRL') });
  } catch (err) {
    throw new RevocationError(`not a CRL: ${(err as Error).message}`, { cause: err });
  }
  const out: ParsedCrl = {
    der: Buffer.from(der),
    sha256: sha256Hex(der),
    issuer: dnToString(crl.issuer.toSchema()),
    thisUpdate: crl.thisUpdate.value,
    entries: new Map(),
    otherIssuers: new Map(),
    freshest: [],
    crl,
  };
  if (crl.nextUpdate) out.nextUpdate = crl.nextUpdate.value;
  for (const e of crl.crlExtensions?.extensions ?? []) {
    if (e.extnID === EXT.crlNumber) out.crlNumber = integerExtension(e, 'cRLNumber');
    if (e.extnID === EXT.deltaIndicator) out.deltaBase = integerExtension(e, 'deltaCRLIndicator');
    if (e.extnID === EXT.freshest) out.freshest = parseDistributionPoints(e, 'freshestCRL');
    if (e.extnID === EXT.idp) {
      const idp = e.parsedValue as (pkijs.IssuingDistributionPoint & { parsingError?: string }) | undefined;
      if (!idp || idp.parsingError) throw new RevocationError('malformed issuingDistributionPoint extension');
      // Partitioned by reason: this CRL alone may not hold a revocation we must see.
      if (idp.onlySomeReasons !== undefined) throw new RevocationError('reason-partitioned CRLs (onlySomeReasons) are not supported');
      out.scope = {
        onlyUser: !!idp.onlyContainsUserCerts, onlyCA: !!idp.onlyContainsCACerts, onlyAttribute: !!idp.onlyContainsAttributeCerts, indirect: !!idp.indirectCRL,
        // A name relative to the issuer cannot be matched with what we fetched: it matches nothing.
        names: idp.distributionPoint === undefined ? [] : Array.isArray(idp.distributionPoint) ? nameStrings(idp.distributionPoint) : ['relative'],
      };
    }
    if (e.critical && !KNOWN_CRL_EXT.has(e.extnID)) throw new RevocationError(`the CRL has an unsupported critical extension ${e.extnID}`);
  }
  // §5.3.3: entries belong to the CRL issuer until a certificateIssuer names another, which then
  // holds for the following entries too.
  let certIssuer = out.issuer;
  for (const r of crl.revokedCertificates ?? []) {
    const entry: CrlEntry = { revokedAt: r.revocationDate.value };
    for (const e of r.crlEntryExtensions?.extensions ?? []) {
      if (e.extnID === EXT.reasonCode) {
        const v = asn1js.fromBER(e.extnValue.valueBlock.valueHexView).result;
        if (v instanceof asn1js.Enumerated) entry.reason = CRL_REASONS[v.valueBlock.valueDec] ?? `reason ${v.valueBlock.valueDec}`;
      } else if (e.extnID === EXT.certificateIssuer) {
        if (!out.scope?.indirect) throw new RevocationError('a CRL entry names a certificate issuer, but the CRL is not an indirect CRL');
        const names = e.parsedValue as (pkijs.GeneralNames & { parsingError?: string }) | undefined;
        const dn = names && !names.parsingError && Array.isArray(names.names) ? nameStrings(names.names).find((n) => n.startsWith('dn:')) : undefined;
        // Entries we cannot attribute could be any issuer's: the whole CRL is unusable.
        if (!dn) throw new RevocationError('a CRL entry\'s certificateIssuer holds no directory name');
        certIssuer = dn.slice(3);
      } else if (e.critical && !KNOWN_ENTRY_EXT.has(e.extnID)) {
        throw new RevocationError(`a CRL entry has an unsupported critical extension ${e.extnID}`);
      }
    }
    // removeFromCRL belongs in delta CRLs (§5.3.1); in a complete CRL (openssl ca writes it there
    // once its database says so) it can only mean "no longer revoked". Refusing the whole CRL
    // instead would make every revocation on it unknown.
    if (entry.reason === 'removeFromCRL' && out.deltaBase === undefined) continue;
    let map = out.entries;
    if (certIssuer !== out.issuer) {
      map = out.otherIssuers.get(certIssuer) ?? new Map();
      out.otherIssuers.set(certIssuer, map);
    }
    map.set(serialOf(r.userCertificate), entry);
  }
  return out;
}

function integerExtension(e: pkijs.Extension, what: string): bigint {
  const v = asn1js.fromBER(e.extnValue.valueBlock.valueHexView);
  if (v.offset === -1 || !(v.result instanceof asn1js.Integer)) throw new RevocationError(`malformed ${what} extension`);
  return serialOf(v.result);
}

/** All entries, of every certificate issuer. */
export const crlEntryCount = (crl: ParsedCrl): number => crl.entries.size + [...crl.otherIssuers.values()].reduce((n, m) => n + m.size, 0);

/** PEM "X509 CRL" → DER; DER passes through. */
export function crlToDer(data: Buffer): Buffer {
  const text = data.subarray(0, 64).toString('latin1');
  if (!text.includes('-----BEGIN')) return data;
  const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(data.toString('latin1'));
  if (!m) throw new RevocationError('a PEM file without an X509 CRL block');
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

/** Whether `crl` was signed by `signer` (name, cRLSign key usage, signature). A sentence when not. */
export async function verifyCrlSignature(crl: ParsedCrl, signer: CertInfo): Promise<string | undefined> {
  if (crl.issuer !== signer.subject) return `the CRL was issued by ${crl.issuer}, not by ${signer.subject}`;
  if (signer.keyUsage && !signer.keyUsage.includes('cRLSign')) return `${signer.subject} may not sign CRLs (no cRLSign key usage)`;
  const ok = await crl.crl.verify({ issuerCertificate: pkijsCertificate(signer) }).catch(() => false);
  return ok ? undefined : `the CRL's signature does not verify with the key of ${signer.subject}`;
}

/** Whether the CRL is current at `at` (with `skewMs` of tolerance). A sentence when not. */
export function crlTimeProblem(crl: ParsedCrl, at: Date, skewMs: number): string | undefined {
  if (crl.thisUpdate.getTime() > at.getTime() + skewMs) return `the CRL's thisUpdate (${crl.thisUpdate.toISOString()}) is in the future`;
  if (crl.nextUpdate && crl.nextUpdate.getTime() < at.getTime() - skewMs) return `the CRL expired at ${crl.nextUpdate.toISOString()} (nextUpdate)`;
  return undefined;
}

/**
 * Whether the CRL's scope covers `cert` (RFC 5280 §6.3.3 (b)): an end-entity-only CRL says
 * nothing about CAs, and a CRL whose issuingDistributionPoint has a name covers only
 * certificates with a distribution point of that name — otherwise a validly signed CRL of another
 * partition, which does not list the certificate, would pass it as good.
 */
export function crlCovers(crl: ParsedCrl, cert: CertInfo, dps: readonly DistributionPoint[]): boolean {
  const s = crl.scope;
  if (!s) return true;
  if ((s.onlyUser && cert.isCA) || (s.onlyCA && !cert.isCA) || s.onlyAttribute) return false;
  return !s.names.length || dps.some((dp) => dp.names.some((n) => s.names.includes(n)));
}

/** The entry for `cert`, or undefined when it is not listed. */
export function crlEntryFor(crl: ParsedCrl, cert: CertInfo): CrlEntry | undefined {
  const map = cert.issuer === crl.issuer ? crl.entries : crl.otherIssuers.get(cert.issuer);
  return map?.get(serialOf(pkijsCertificate(cert).serialNumber));
}

const scopeKey = (c: ParsedCrl) => JSON.stringify(c.scope ?? null);

/** Why `delta` cannot be used on top of `complete` (RFC 5280 §5.2.4, §6.3.3 (d)); undefined when it can. */
export function deltaProblem(complete: ParsedCrl, delta: ParsedCrl): string | undefined {
  if (delta.deltaBase === undefined) return 'it is a complete CRL, not a delta CRL';
  if (delta.issuer !== complete.issuer) return `it was issued by ${delta.issuer}, the complete CRL by ${complete.issuer}`;
  if (complete.crlNumber === undefined) return 'the complete CRL has no CRL number to build on';
  if (delta.crlNumber === undefined) return 'it has no CRL number';
  if (delta.deltaBase > complete.crlNumber) return `it builds on CRL number ${delta.deltaBase}, newer than the complete CRL (number ${complete.crlNumber})`;
  if (scopeKey(delta) !== scopeKey(complete)) return 'its scope (issuingDistributionPoint) differs from the complete CRL\'s';
  return undefined;
}

/**
 * The entry for `cert` from a complete CRL and a delta that fits it (deltaProblem): the delta's
 * word is newer (removeFromCRL releases a certificate from hold), unless the complete CRL is the
 * newer of the two.
 */
export function entryWithDelta(complete: ParsedCrl, delta: ParsedCrl | undefined, cert: CertInfo): CrlEntry | undefined {
  if (delta && delta.crlNumber! > complete.crlNumber!) {
    const d = crlEntryFor(delta, cert);
    if (d) return d.reason === 'removeFromCRL' ? undefined : d;
  }
  return crlEntryFor(complete, cert);
}
