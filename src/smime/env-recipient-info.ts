/**
 * RecipientInfo (RFC 5652 §6.2) in both directions: reading ktri and kari from untrusted messages
 * (kekri, pwri and ori are recognised and skipped: Postern holds no such keys), and writing ktri
 * and kari as DER. Also the RSAES-OAEP-params of RFC 4055, which appear both in key transport
 * and in recipient certificates.
 */
import * as asn1js from 'asn1js';
import { SmimeError } from './errors.js';
import {
  algId, contextTag, expectSeq, HASH_BY_OID, isNullOrAbsent, kids, malformed, octetContent, octets,
  OID, raw, readAlgId, readSmallInt, seq, smallInt, tlv,
} from './env-der.js';
import type { OaepParams } from '../pki/index.js';

/** RecipientIdentifier / KeyAgreeRecipientIdentifier, as read from a message. */
export type Rid =
  | { kind: 'issuerSerial'; issuer: asn1js.AsnType; issuerDer: Buffer; serial: Buffer }
  | { kind: 'ski'; ski: Buffer };

export interface Ktri {
  type: 'ktri';
  rid: Rid;
  keyAlg: { oid: string; params?: asn1js.AsnType };
  encryptedKey: Buffer;
}

export interface Kari {
  type: 'kari';
  /**
   * The ephemeral EC public key, or why this kari cannot be used (originator identified by
   * certificate = static-static, or X25519/X448): an error only if it turns out to be addressed to us.
   */
  originator: { point: Buffer; curveOid?: string } | { unsupported: string };
  ukm?: Buffer;
  keyAlg: { oid: string; params?: asn1js.AsnType };
  recipients: { rid: Rid; encryptedKey: Buffer }[];
}

const KEY_NAMES: Record<string, string> = { '1.3.101.110': 'X25519', '1.3.101.111': 'X448' };

export type RecipientInfo = Ktri | Kari | { type: 'kekri' | 'pwri' | 'ori' };

/** INTEGER content bytes without leading zero octets: the form serial numbers are compared in. */
export function serialBytes(n: asn1js.AsnType | undefined, what: string): Buffer {
  if (!(n instanceof asn1js.Integer)) throw malformed(`${what} serial number is not an INTEGER`);
  const v = Buffer.from(n.valueBlock.valueHexView);
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  return v.subarray(i);
}

function issuerAndSerial(n: asn1js.AsnType | undefined, what: string): Rid {
  const [issuer, serial, extra] = expectSeq(n, `${what} issuerAndSerialNumber`);
  if (!issuer || extra) throw malformed(`${what} issuerAndSerialNumber has the wrong shape`);
  expectSeq(issuer, `${what} issuer`);
  return { kind: 'issuerSerial', issuer, issuerDer: raw(issuer), serial: serialBytes(serial, what) };
}

function readKtri(n: asn1js.AsnType): Ktri {
  const [version, ridNode, keyAlgNode, ek, extra] = expectSeq(n, 'KeyTransRecipientInfo');
  readSmallInt(version, 'KeyTransRecipientInfo version');
  if (extra) throw malformed('KeyTransRecipientInfo has extra fields');
  const rid: Rid = contextTag(ridNode) === 0 ? { kind: 'ski', ski: octetContent(ridNode, 'subjectKeyIdentifier') } : issuerAndSerial(ridNode, 'KeyTransRecipientInfo');
  return { type: 'ktri', rid, keyAlg: readAlgId(keyAlgNode, 'keyEncryptionAlgorithm'), encryptedKey: octetContent(ek, 'encryptedKey') };
}

function readKari(n: asn1js.AsnType): Kari {
  const parts = kids(n);
  let i = 0;
  readSmallInt(parts[i++], 'KeyAgreeRecipientInfo version');
  const origWrap = parts[i++];
  if (contextTag(origWrap) !== 0) throw malformed('KeyAgreeRecipientInfo has no originator');
  const orig = kids(origWrap)[0];
  let originator: Kari['originator'] = { unsupported: 'key agreement with a static originator key (by certificate)' };
  if (!orig) throw malformed('KeyAgreeRecipientInfo originator is empty');
  if (contextTag(orig) === 1) {
    // [1] IMPLICIT OriginatorPublicKey ::= SEQUENCE { algorithm, publicKey BIT STRING }
    const [alg, bits] = kids(orig);
    const a = readAlgId(alg, 'originator key algorithm');
    if (!(bits instanceof asn1js.BitString)) throw malformed('originator public key is not a BIT STRING');
    const curveOid = a.params instanceof asn1js.ObjectIdentifier ? a.params.valueBlock.toString() : undefined;
    originator = a.oid === OID.ecPublicKey
      ? { point: Buffer.from(bits.valueBlock.valueHexView), ...(curveOid ? { curveOid } : {}) }
      : { unsupported: `key agreement with originator key ${KEY_NAMES[a.oid] ?? a.oid}` };
  }
  let ukm: Buffer | undefined;
  if (contextTag(parts[i]) === 1) ukm = octetContent(kids(parts[i++])[0], 'user keying material');
  const keyAlg = readAlgId(parts[i++], 'key agreement algorithm');
  const reks = expectSeq(parts[i++], 'recipientEncryptedKeys');
  if (parts[i]) throw malformed('KeyAgreeRecipientInfo has extra fields');
  const recipients = reks.map((rek) => {
    const [ridNode, ek, extra] = expectSeq(rek, 'RecipientEncryptedKey');
    if (extra) throw malformed('RecipientEncryptedKey has extra fields');
    let rid: Rid;
    if (contextTag(ridNode) === 0) {
      // [0] IMPLICIT RecipientKeyIdentifier ::= SEQUENCE { subjectKeyIdentifier, date OPTIONAL, other OPTIONAL }
      rid = { kind: 'ski', ski: octetContent(kids(ridNode)[0], 'rKeyId subjectKeyIdentifier') };
    } else {
      rid = issuerAndSerial(ridNode, 'RecipientEncryptedKey');
    }
    return { rid, encryptedKey: octetContent(ek, 'encryptedKey') };
  });
  return { type: 'kari', originator, ...(ukm ? { ukm } : {}), keyAlg, recipients };
}

export function readRecipientInfos(nodes: asn1js.AsnType[]): RecipientInfo[] {
  if (nodes.length === 0) throw malformed('recipientInfos is empty');
  return nodes.map((n) => {
    switch (contextTag(n)) {
      case -1: return readKtri(n);
      case 1: return readKari(n);
      case 2: return { type: 'kekri' as const };
      case 3: return { type: 'pwri' as const };
      case 4: return { type: 'ori' as const };
      default: throw malformed('unknown RecipientInfo choice');
    }
  });
}

// ---------------------------------------------------------------- RSAES-OAEP-params (RFC 4055 §4.1)

const hashOf = (n: asn1js.AsnType | undefined, what: string): string => {
  const a = readAlgId(n, what);
  const h = HASH_BY_OID[a.oid];
  if (!h || !isNullOrAbsent(a.params)) throw new SmimeError(`RSA-OAEP with ${what} ${a.oid} is not supported`, 'unsupported');
  return h;
};

/** RSAES-OAEP-params: hashFunc [0] (default SHA-1), maskGenFunc [1] (default MGF1-SHA-1), pSourceFunc [2] (default empty label). */
export function readOaepParams(params: asn1js.AsnType | undefined): OaepParams {
  const p: OaepParams = { hash: 'sha1', mgfHash: 'sha1', label: Buffer.alloc(0) };
  if (params === undefined || params instanceof asn1js.Null) return p;
  for (const field of expectSeq(params, 'RSAES-OAEP parameters')) {
    const inner = kids(field)[0];
    switch (contextTag(field)) {
      case 0: p.hash = hashOf(inner, 'OAEP hash'); break;
      case 1: {
        const mgf = readAlgId(inner, 'OAEP mask generation');
        if (mgf.oid !== OID.mgf1) throw new SmimeError(`RSA-OAEP mask generation ${mgf.oid} is not supported`, 'unsupported');
        p.mgfHash = hashOf(mgf.params, 'MGF1 hash');
        break;
      }
      case 2: {
        const src = readAlgId(inner, 'OAEP label source');
        if (src.oid !== OID.pSpecified) throw new SmimeError(`RSA-OAEP label source ${src.oid} is not supported`, 'unsupported');
        p.label = src.params === undefined ? Buffer.alloc(0) : octetContent(src.params, 'OAEP label');
        break;
      }
      default: throw malformed('RSAES-OAEP parameters have an unknown field');
    }
  }
  return p;
}

const HASH_OID_BY_NAME: Record<string, string> = Object.fromEntries(Object.entries(HASH_BY_OID).map(([o, n]) => [n, o]));

/** DER AlgorithmIdentifier for RSAES-OAEP; defaults are omitted, hash parameters absent (as openssl writes them). */
export function oaepAlgId(p: OaepParams): Buffer {
  const fields: Buffer[] = [];
  if (p.hash !== 'sha1') fields.push(tlv(0xa0, algId(HASH_OID_BY_NAME[p.hash]!)));
  if (p.mgfHash !== 'sha1') fields.push(tlv(0xa1, algId(OID.mgf1, algId(HASH_OID_BY_NAME[p.mgfHash]!))));
  if (p.label.length > 0) fields.push(tlv(0xa2, algId(OID.pSpecified, octets(p.label))));
  return algId(OID.rsaesOaep, seq(...fields));
}

export function describeOaep(p: OaepParams): string {
  const name = (h: string) => h.toUpperCase().replace(/^SHA/, 'SHA-');
  const extras = [...(p.mgfHash !== p.hash ? [`MGF1-${name(p.mgfHash)}`] : []), ...(p.label.length ? ['label'] : [])];
  return `RSA-OAEP (${[name(p.hash), ...extras].join(', ')})`;
}

// ---------------------------------------------------------------- writing

export const PKCS1_ALG = algId(OID.rsaEncryption, Buffer.from([0x05, 0x00]));

/** KeyTransRecipientInfo, version 0, rid = issuerAndSerialNumber. */
export const ktriDer = (issuerAndSerialDer: Buffer, keyAlg: Buffer, encryptedKey: Buffer): Buffer =>
  seq(smallInt(0), issuerAndSerialDer, keyAlg, octets(encryptedKey));

/** KeyAgreeRecipientInfo, version 3: originatorKey (id-ecPublicKey, parameters absent per RFC 5753), no UKM. */
export function kariDer(point: Buffer, kdfOid: string, wrapOid: string, issuerAndSerialDer: Buffer, wrappedKey: Buffer): Buffer {
  const originatorKey = tlv(0xa1, algId(OID.ecPublicKey), tlv(0x03, Buffer.from([0x00]), point));
  return tlv(0xa1, smallInt(3), tlv(0xa0, originatorKey), algId(kdfOid, algId(wrapOid)), seq(seq(issuerAndSerialDer, octets(wrappedKey))));
}

// ---------------------------------------------------------------- names for humans

const ATTR: Record<string, string> = {
  '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU',
  '2.5.4.5': 'serialNumber', '0.9.2342.19200300.100.1.25': 'DC', '1.2.840.113549.1.9.1': 'emailAddress',
};

/** An RFC 4514-style string of a Name (most specific RDN first), for "not addressed to us" reasons only. */
export function nameToString(name: asn1js.AsnType): string {
  return kids(name)
    .map((rdn) =>
      kids(rdn)
        .map((atv) => {
          const [t, v] = kids(atv);
          const type = t instanceof asn1js.ObjectIdentifier ? t.valueBlock.toString() : '?';
          const s = (v as { valueBlock?: { value?: unknown } } | undefined)?.valueBlock?.value;
          const text = typeof s === 'string' ? s.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`) : `#${v ? raw(v).toString('hex') : ''}`;
          return `${ATTR[type] ?? type}=${text}`;
        })
        .join('+'),
    )
    .reverse()
    .join(',');
}
