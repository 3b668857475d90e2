/**
 * CRLs (RFC 5280 §5): parsing, the checks that make one usable for a certificate (signed by the
 * issuer, issuer allowed to sign CRLs, current, complete in scope), the look-up of a serial, and
 * the building of the internal CA's own CRL. Untrusted input: CRL bytes from distribution points
 * and from `postern crl import`; anything malformed is a RevocationError with a one-line reason.
 * Pure; no I/O.
 */
import { webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { pkijsCertificate, serialOf } from './ocsp.js';
import { CRL_REASON_CODES, CRL_REASONS, RevocationError } from './rev-types.js';
import type { CertInfo } from './types.js';
import { decodeStrict, dnToString, ensurePkijsEngine, sha256Hex } from './x509.js';

ensurePkijsEngine();

const EXT = { crlNumber: '2.5.29.20', reasonCode: '2.5.29.21', deltaIndicator: '2.5.29.27', idp: '2.5.29.28', aki: '2.5.29.35', invalidityDate: '2.5.29.24' };
/** CRL extensions whose meaning we handle; another critical one makes the CRL unusable (RFC 5280 §5.2). */
const KNOWN_CRL_EXT = new Set([EXT.crlNumber, EXT.idp, EXT.aki]);
const KNOWN_ENTRY_EXT = new Set([EXT.reasonCode, EXT.invalidityDate]);

export interface CrlEntry {
  revokedAt: Date;
  reason?: string;
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
  /** By serial number. */
  entries: Map<bigint, CrlEntry>;
  /** Issuing distribution point scope (RFC 5280 §5.2.5), when the CRL has one. */
  scope?: { onlyUser: boolean; onlyCA: boolean };
  crl: pkijs.CertificateRevocationList;
}

const ab = (b: Uint8Array): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/** Parse a DER CRL (PEM is handled by the caller: pemToDer). */
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
    crl,
  };
  if (crl.nextUpdate) out.nextUpdate = crl.nextUpdate.value;
  for (const e of crl.crlExtensions?.extensions ?? []) {
    if (e.extnID === EXT.deltaIndicator) throw new RevocationError('delta CRLs are not supported (import the full CRL)');
    if (e.extnID === EXT.crlNumber && e.parsedValue instanceof asn1js.Integer) out.crlNumber = serialOf(e.parsedValue);
    if (e.extnID === EXT.idp) {
      const idp = e.parsedValue as pkijs.IssuingDistributionPoint | undefined;
      if (!idp || (idp as { parsingError?: string }).parsingError) throw new RevocationError('malformed issuingDistributionPoint extension');
      // Partitioned by reason or indirect: this CRL alone may not hold a revocation we must see.
      if (idp.onlySomeReasons !== undefined || idp.indirectCRL) throw new RevocationError('indirect or reason-partitioned CRLs are not supported');
      out.scope = { onlyUser: !!idp.onlyContainsUserCerts, onlyCA: !!idp.onlyContainsCACerts };
    }
    if (e.critical && !KNOWN_CRL_EXT.has(e.extnID)) throw new RevocationError(`the CRL has an unsupported critical extension ${e.extnID}`);
  }
  for (const r of crl.revokedCertificates ?? []) {
    const entry: CrlEntry = { revokedAt: r.revocationDate.value };
    for (const e of r.crlEntryExtensions?.extensions ?? []) {
      if (e.extnID === EXT.reasonCode) {
        const v = asn1js.fromBER(e.extnValue.valueBlock.valueHexView).result;
        if (v instanceof asn1js.Enumerated) entry.reason = CRL_REASONS[v.valueBlock.valueDec] ?? `reason ${v.valueBlock.valueDec}`;
      } else if (e.critical && !KNOWN_ENTRY_EXT.has(e.extnID)) {
        throw new RevocationError(`a CRL entry has an unsupported critical extension ${e.extnID}`);
      }
    }
    // removeFromCRL only means something in delta CRLs, which we refuse above.
    out.entries.set(serialOf(r.userCertificate), entry);
  }
  return out;
}

/** PEM "X509 CRL" → DER; DER passes through. */
export function crlToDer(data: Buffer): Buffer {
  const text = data.subarray(0, 64).toString('latin1');
  if (!text.includes('-----BEGIN')) return data;
  const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(data.toString('latin1'));
  if (!m) throw new RevocationError('a PEM file without an X509 CRL block');
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

/** Whether `crl` was signed by `issuer` (name, cRLSign key usage, signature). A sentence when not. */
export async function verifyCrlSignature(crl: ParsedCrl, issuer: CertInfo): Promise<string | undefined> {
  if (crl.issuer !== issuer.subject) return `the CRL was issued by ${crl.issuer}, not by ${issuer.subject}`;
  if (issuer.keyUsage && !issuer.keyUsage.includes('cRLSign')) return `${issuer.subject} may not sign CRLs (no cRLSign key usage)`;
  const ok = await crl.crl.verify({ issuerCertificate: pkijsCertificate(issuer) }).catch(() => false);
  return ok ? undefined : `the CRL's signature does not verify with the key of ${issuer.subject}`;
}

/** Whether the CRL is current at `at` (with `skewMs` of tolerance). A sentence when not. */
export function crlTimeProblem(crl: ParsedCrl, at: Date, skewMs: number): string | undefined {
  if (crl.thisUpdate.getTime() > at.getTime() + skewMs) return `the CRL's thisUpdate (${crl.thisUpdate.toISOString()}) is in the future`;
  if (crl.nextUpdate && crl.nextUpdate.getTime() < at.getTime() - skewMs) return `the CRL expired at ${crl.nextUpdate.toISOString()} (nextUpdate)`;
  return undefined;
}

/** Whether the CRL's scope covers `cert` (an end-entity-only CRL says nothing about CAs). */
export const crlCovers = (crl: ParsedCrl, cert: CertInfo): boolean => !crl.scope || !((crl.scope.onlyUser && cert.isCA) || (crl.scope.onlyCA && !cert.isCA));

/** The entry for `cert`, or undefined when it is not listed. */
export const crlEntryFor = (crl: ParsedCrl, cert: CertInfo): CrlEntry | undefined => crl.entries.get(serialOf(pkijsCertificate(cert).serialNumber));

// ---------------------------------------------------------------- building (internal CA)

/** DER INTEGER content of a positive number given as hex (CertInfo.serial) or a bigint. */
function positiveInteger(v: string | bigint): asn1js.Integer {
  let hex = typeof v === 'bigint' ? v.toString(16) : v.toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) throw new RevocationError(`not a hex serial number: ${JSON.stringify(v)}`);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  return new asn1js.Integer({ valueHex: ab(Buffer.from(hex, 'hex')) });
}

export interface CrlBuildEntry {
  /** Lower-case hex, as CertInfo.serial. */
  serial: string;
  revokedAt: Date;
  /** A CRLReason name; 'unspecified' or undefined writes no reasonCode (RFC 5280 §5.3.1). */
  reason?: string;
}

export interface CrlBuildOptions {
  issuer: CertInfo;
  /** Unencrypted PKCS#8 of the issuer (a secret: the caller zeroes it). */
  issuerKey: Buffer;
  entries: CrlBuildEntry[];
  thisUpdate: Date;
  nextUpdate: Date;
  /** Must grow with every CRL issued (RFC 5280 §5.2.3). */
  crlNumber: bigint;
}

const time = (d: Date) => new pkijs.Time({ type: d.getUTCFullYear() >= 2050 ? 1 : 0, value: d });

/** A signed v2 CRL (DER) with authorityKeyIdentifier, cRLNumber and reason codes. */
export async function buildCrl(o: CrlBuildOptions): Promise<Buffer> {
  const issuer = pkijsCertificate(o.issuer);
  const crl = new pkijs.CertificateRevocationList();
  crl.version = 1;
  crl.issuer = issuer.subject;
  crl.thisUpdate = time(o.thisUpdate);
  crl.nextUpdate = time(o.nextUpdate);
  if (o.entries.length) {
    crl.revokedCertificates = o.entries.map((e) => {
      const code = e.reason ? CRL_REASON_CODES[e.reason] : undefined;
      if (e.reason && code === undefined) throw new RevocationError(`unknown revocation reason ${JSON.stringify(e.reason)}`);
      return new pkijs.RevokedCertificate({
        userCertificate: positiveInteger(e.serial),
        revocationDate: time(e.revokedAt),
        ...(code ? { crlEntryExtensions: new pkijs.Extensions({ extensions: [new pkijs.Extension({ extnID: EXT.reasonCode, critical: false, extnValue: new asn1js.Enumerated({ value: code }).toBER(false) })] }) } : {}),
      });
    });
  }
  const exts = [new pkijs.Extension({ extnID: EXT.crlNumber, critical: false, extnValue: positiveInteger(o.crlNumber).toBER(false) })];
  if (o.issuer.subjectKeyId) {
    const aki = new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: ab(Buffer.from(o.issuer.subjectKeyId, 'hex')) }) });
    exts.unshift(new pkijs.Extension({ extnID: EXT.aki, critical: false, extnValue: aki.toSchema().toBER(false) }));
  }
  crl.crlExtensions = new pkijs.Extensions({ extensions: exts });
  const { key, hash } = await signingKey(o.issuerKey, o.issuer);
  await crl.sign(key as unknown as Parameters<pkijs.CertificateRevocationList['sign']>[0], hash);
  return Buffer.from(crl.toSchema(true).toBER(false));
}

/** The same choice of algorithm as the internal CA's certificates (ca.ts): ECDSA with a hash of the curve's size, else RSA PKCS#1 v1.5 SHA-256. */
async function signingKey(pkcs8: Buffer, issuer: CertInfo): Promise<{ key: webcrypto.CryptoKey; hash: string }> {
  const curve = issuer.key.curve;
  if (issuer.key.algorithm === 'ec' && (curve === 'P-256' || curve === 'P-384')) {
    return { key: await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: curve }, false, ['sign']), hash: curve === 'P-256' ? 'SHA-256' : 'SHA-384' };
  }
  if (issuer.key.algorithm !== 'rsa') throw new RevocationError(`cannot sign a CRL with a ${issuer.key.algorithm} key`);
  return { key: await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']), hash: 'SHA-256' };
}
