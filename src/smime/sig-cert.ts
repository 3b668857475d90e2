/**
 * A certificate as the signature code needs it: pki's CertInfo (addresses, key usage, validity)
 * plus the exact encoded pieces that CMS refers to and that path validation checks — the TBS bytes
 * and signature, the issuer and subject Names as encoded, the serial INTEGER, and the public key as
 * a Node KeyObject. Parsed once: signers and trust stores keep these; message certificates are
 * parsed per message.
 */
import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import * as asn1js from 'asn1js';
import { parseCertificate, type CertInfo } from '../pki/index.js';
import { SmimeError } from './errors.js';

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

const bytes = (n: asn1js.AsnType): Buffer => Buffer.from((n as asn1js.BaseBlock).valueBeforeDecodeView);
const kids = (n: asn1js.AsnType | undefined): asn1js.AsnType[] => {
  const v = (n as asn1js.Constructed | undefined)?.valueBlock?.value;
  return Array.isArray(v) ? (v as asn1js.AsnType[]) : [];
};

/** Parse one certificate; `what` names it in the error ("the signer certificate"). */
export function loadCert(der: Buffer, what = 'certificate'): CertEntry {
  let info: CertInfo;
  try {
    info = parseCertificate(der);
  } catch (err) {
    throw new SmimeError(`${what}: ${(err as Error).message}`, 'malformed', { cause: err });
  }
  const root = asn1js.fromBER(der).result;
  const [tbs, sigAlg, sigBits] = kids(root);
  const tbsParts = kids(tbs);
  const off = tbsParts[0]?.idBlock.tagClass === 3 ? 1 : 0;
  const serial = tbsParts[off];
  const issuer = tbsParts[off + 2];
  const subject = tbsParts[off + 4];
  const sigOidNode = kids(sigAlg)[0];
  if (!tbs || !serial || !issuer || !subject || !(sigOidNode instanceof asn1js.ObjectIdentifier) || !(sigBits instanceof asn1js.BitString)) {
    throw new SmimeError(`${what}: not a certificate structure`);
  }
  let key: KeyObject | null = null;
  try {
    key = createPublicKey({ key: info.spki, format: 'der', type: 'spki' });
  } catch {
    key = null;
  }
  return {
    info,
    der: info.der,
    tbs: bytes(tbs),
    sigOid: sigOidNode.valueBlock.toString(),
    sigParams: kids(sigAlg)[1],
    signature: Buffer.from(sigBits.valueBlock.valueHexView),
    issuerDer: bytes(issuer),
    subjectDer: bytes(subject),
    serialTlv: bytes(serial),
    key,
  };
}

/** Whether a certificate is the one a SignerIdentifier names (issuer+serial, or SKI). */
export function certMatchesSid(c: CertEntry, sid: { issuer: string; issuerDer: Buffer; serial: string } | { subjectKeyId: string }): boolean {
  if ('subjectKeyId' in sid) return c.info.subjectKeyId === sid.subjectKeyId;
  return c.info.serial === sid.serial && (c.issuerDer.equals(sid.issuerDer) || c.info.issuer === sid.issuer);
}
