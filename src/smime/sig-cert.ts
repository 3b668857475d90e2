/**
 * A certificate as the signature code needs it: pki's CertInfo (addresses, key usage, validity)
 * plus the exact encoded pieces that CMS refers to and that path validation checks — the TBS bytes
 * and signature, the issuer and subject Names as encoded, the serial INTEGER, and the public key as
 * a Node KeyObject. Parsed once: signers and trust stores keep these, and certificates from mail
 * go through a bounded cache (loadCertCached), so a known sender costs no parsing.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import type * as asn1js from 'asn1js';
import { parseCertificate, type CertInfo } from '../pki/index.js';
import { SmimeError } from './errors.js';
import { content, isCtx, isUniv, kidsOf, oidText, readTlv, slice } from './sig-ber.js';
import { decodeSmall } from './sig-parse.js';

export interface CertEntry {
  info: CertInfo;
  der: Buffer;
  tbs: Buffer;
  sigOid: string;
  sigParams: asn1js.AsnType | undefined;
  signature: Buffer;
  /** The Names and the serial INTEGER exactly as encoded (IssuerAndSerialNumber is built from them). */
  issuerDer: Buffer;
  subjectDer: Buffer;
  serialTlv: Buffer;
  /** null when Node cannot load the key (e.g. DSA with parameters inherited from the issuer). */
  key: KeyObject | null;
}

/** Parse one certificate; `what` names it in the error ("the signer certificate"). */
export function loadCert(der: Buffer, what = 'certificate'): CertEntry {
  let info: CertInfo;
  try {
    info = parseCertificate(der);
  } catch (err) {
    throw new SmimeError(`${what}: ${(err as Error).message}`, 'malformed', { cause: err });
  }
  let parts: Omit<CertEntry, 'info' | 'der' | 'key'>;
  try {
    const root = readTlv(der, 0);
    const [tbs, sigAlg, sigBits] = kidsOf(der, root);
    const tbsParts = tbs ? kidsOf(der, tbs) : [];
    const off = isCtx(tbsParts[0], 0) ? 1 : 0;
    const [serial, issuer, subject] = [tbsParts[off], tbsParts[off + 2], tbsParts[off + 4]];
    const [sigOid, sigParams] = sigAlg ? kidsOf(der, sigAlg) : [];
    if (!tbs || !isUniv(serial, 2) || !isUniv(issuer, 16) || !isUniv(subject, 16) || !isUniv(sigBits, 3)) throw new Error('not a certificate structure');
    parts = {
      tbs: Buffer.from(slice(der, tbs)),
      sigOid: oidText(der, sigOid, 'the certificate signature algorithm'),
      sigParams: sigParams ? decodeSmall(Buffer.from(slice(der, sigParams)), 'signature parameters') : undefined,
      // BIT STRING: the first content octet counts unused bits (0 for signatures).
      signature: Buffer.from(content(der, sigBits).subarray(1)),
      issuerDer: Buffer.from(slice(der, issuer)),
      subjectDer: Buffer.from(slice(der, subject)),
      serialTlv: Buffer.from(slice(der, serial)),
    };
  } catch (err) {
    throw new SmimeError(`${what}: not a certificate structure`, 'malformed', { cause: err });
  }
  let key: KeyObject | null = null;
  try {
    key = createPublicKey({ key: info.spki, format: 'der', type: 'spki' });
  } catch {
    key = null;
  }
  return { info, der: info.der, ...parts, key };
}

const CACHE_MAX = 2048;
const cache = new Map<string, CertEntry>();

/**
 * loadCert for certificates that arrive in mail: the same senders' certificates come again and
 * again, and parsing one costs more than verifying a signature. Bounded; oldest entries leave first.
 */
export function loadCertCached(der: Buffer): CertEntry {
  const k = createHash('sha256').update(der).digest('hex');
  const hit = cache.get(k);
  if (hit) {
    cache.delete(k);
    cache.set(k, hit);
    return hit;
  }
  const entry = loadCert(der);
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(k, entry);
  return entry;
}

/** Whether a certificate is the one a SignerIdentifier names (issuer+serial, or SKI). */
export function certMatchesSid(c: CertEntry, sid: { issuer: string; issuerDer: Buffer; serial: string } | { subjectKeyId: string }): boolean {
  if ('subjectKeyId' in sid) return c.info.subjectKeyId === sid.subjectKeyId;
  return c.info.serial === sid.serial && (c.issuerDer.equals(sid.issuerDer) || c.info.issuer === sid.issuer);
}
