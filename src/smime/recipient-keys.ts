/**
 * Recipient certificates and our decryption keys, parsed once into the form encrypt() and
 * decrypt() use on every message (the worker caches them per certificate fingerprint). Deciding
 * here whether a certificate can be encrypted to at all keeps the per-message path free of checks
 * and gives the admin one clear sentence when it cannot.
 *
 * The secret parts (KeyObject, the EC scalar, the implicit-rejection secret) live in a module-private
 * WeakMap, not on the returned objects, so logging or serialising a key object shows no key material
 * and a key cannot be forged by building a look-alike object.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { parseCertificate, type CertInfo } from '../pki/index.js';
import { SmimeError } from './errors.js';
import { algId, decodeOne, expectSeq, kids, NULL, OID, raw, readAlgId, seq } from './env-der.js';
import { CURVE_BY_OID, type Curve } from './env-kari.js';
import { readOaepParams, serialBytes } from './env-recipient-info.js';
import { rejectionSecret, type OaepParams } from '../pki/index.js';

export interface SmimeRecipient {
  /** SHA-256 hex of the certificate DER. */
  readonly fingerprint: string;
  readonly keyKind: 'rsa' | 'ec';
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  /** 'P-256' | 'P-384' | 'P-521' for EC; RSA modulus bits for RSA. */
  readonly keySize: string;
  /** The certificate's key is id-RSAES-OAEP: it is always sent OAEP, whatever the options say. */
  readonly oaepOnly: boolean;
}

export interface SmimeDecryptionKey {
  readonly fingerprint: string;
  readonly keyKind: 'rsa' | 'ec';
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly subjectKeyId?: string;
}

/** What encrypt() needs per recipient. */
export interface RecipientMaterial {
  issuerAndSerial: Buffer; // DER, cut from the certificate
  rsa?: { publicKey: KeyObject; k: number; oaep?: OaepParams };
  ec?: { curve: Curve; point: Buffer };
}

/** What decrypt() needs per key. Secret. */
export interface KeyMaterial {
  issuerDer: Buffer;
  issuer: pkijs.RelativeDistinguishedNames;
  serial: Buffer;
  skis: Buffer[];
  rsa?: { privateKey: KeyObject; k: number; rejection: Buffer };
  ec?: { curve: Curve; scalar: Buffer };
}

const recipientMaterial = new WeakMap<SmimeRecipient, RecipientMaterial>();
const keyMaterial = new WeakMap<SmimeDecryptionKey, KeyMaterial>();

export function materialOfRecipient(r: SmimeRecipient): RecipientMaterial {
  const m = recipientMaterial.get(r);
  if (!m) throw new SmimeError('recipient was not made by prepareRecipient()', 'bad-key');
  return m;
}

export function materialOfKey(k: SmimeDecryptionKey): KeyMaterial {
  const m = keyMaterial.get(k);
  if (!m) throw new SmimeError('decryption key was not made by prepareDecryptionKey()', 'bad-key');
  return m;
}

const badKey = (sentence: string, cause?: unknown) => new SmimeError(sentence, 'bad-key', cause === undefined ? undefined : { cause });

interface ParsedCert {
  info: CertInfo;
  issuerNode: asn1js.AsnType;
  serialNode: asn1js.AsnType;
  spkiAlg: { oid: string; params?: asn1js.AsnType };
  spkiBits: asn1js.BitString;
  spkiBitsDer: Buffer;
}

/** The certificate's facts (pki/) plus the raw pieces CMS needs: issuer, serial and key, as encoded. */
function parseCert(certDer: Buffer): ParsedCert {
  let info: CertInfo;
  try {
    info = parseCertificate(certDer);
  } catch (err) {
    throw badKey(`the certificate cannot be used: ${(err as Error).message}`, err);
  }
  try {
    const [tbs] = kids(decodeOne(certDer, 'certificate'));
    const parts = kids(tbs);
    const off = parts[0]?.idBlock.tagClass === 3 ? 1 : 0;
    const [serialNode, , issuerNode, , , spkiNode] = parts.slice(off);
    const [alg, bits] = expectSeq(spkiNode, 'subjectPublicKeyInfo');
    if (!serialNode || !issuerNode || !(bits instanceof asn1js.BitString)) throw new Error('certificate fields');
    return { info, issuerNode, serialNode, spkiAlg: readAlgId(alg, 'public key algorithm'), spkiBits: bits, spkiBitsDer: raw(bits) };
  } catch (err) {
    throw badKey('the certificate cannot be used: its structure is not that of an X.509 certificate', err);
  }
}

/** An RSA SPKI Node can load: id-RSAES-OAEP keys are re-labelled rsaEncryption (the key itself is the same). */
function rsaPublicKey(p: ParsedCert): KeyObject {
  const spki = seq(algId(OID.rsaEncryption, NULL), p.spkiBitsDer);
  return createPublicKey({ key: spki, format: 'der', type: 'spki' });
}

const who = (info: CertInfo) => `the certificate of ${info.emails[0] ?? info.subject}`;

function classify(p: ParsedCert): { kind: 'rsa'; oaep?: OaepParams } | { kind: 'ec'; curve: Curve } {
  const { info, spkiAlg } = p;
  const ku = info.keyUsage;
  switch (spkiAlg.oid) {
    case OID.rsaEncryption:
    case OID.rsaesOaep: {
      if (ku && !ku.includes('keyEncipherment')) throw badKey(`${who(info)} is an RSA certificate whose key usage does not allow keyEncipherment, so it cannot be encrypted to`);
      if (spkiAlg.oid === OID.rsaEncryption) return { kind: 'rsa' };
      // RFC 4055 §4.1: parameters, when present, fix the OAEP hash; when absent (or a stray NULL), any may be used.
      const oaep = spkiAlg.params === undefined || spkiAlg.params instanceof asn1js.Null ? { hash: 'sha256', mgfHash: 'sha256', label: Buffer.alloc(0) } : readOaepParams(spkiAlg.params);
      return { kind: 'rsa', oaep };
    }
    case OID.ecPublicKey: {
      const curveOid = spkiAlg.params instanceof asn1js.ObjectIdentifier ? spkiAlg.params.valueBlock.toString() : '';
      const curve = CURVE_BY_OID[curveOid];
      if (!curve) throw badKey(`${who(info)} has an EC key on a curve Postern does not encrypt to (${info.key.curve ?? 'explicit parameters'}); P-256, P-384 and P-521 are supported`);
      if (ku && !ku.includes('keyAgreement')) throw badKey(`${who(info)} is an EC certificate whose key usage does not allow keyAgreement, so it cannot be encrypted to`);
      return { kind: 'ec', curve };
    }
    case OID.rsassaPss:
      throw badKey(`${who(info)} holds an RSASSA-PSS key, which may only sign (RFC 4055), so it cannot be encrypted to`);
    default: {
      const name = { ed25519: 'an Ed25519', ed448: 'an Ed448', dsa: 'a DSA' }[info.key.algorithm as string] ?? `a ${spkiAlg.oid}`;
      throw badKey(`${who(info)} holds ${name} key, which cannot be used for encryption`);
    }
  }
}

export function prepareRecipient(certDer: Buffer): SmimeRecipient {
  const p = parseCert(certDer);
  const c = classify(p);
  const issuerAndSerial = seq(raw(p.issuerNode), raw(p.serialNode));
  const base = { fingerprint: p.info.fingerprint, subject: p.info.subject, issuer: p.info.issuer, serial: p.info.serial };
  let r: SmimeRecipient;
  try {
    if (c.kind === 'rsa') {
      const publicKey = rsaPublicKey(p);
      const bits = publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
      r = Object.freeze({ ...base, keyKind: 'rsa' as const, keySize: `RSA-${bits}`, oaepOnly: !!c.oaep });
      recipientMaterial.set(r, { issuerAndSerial, rsa: { publicKey, k: Math.ceil(bits / 8), ...(c.oaep ? { oaep: c.oaep } : {}) } });
    } else {
      const point = Buffer.from(p.spkiBits.valueBlock.valueHexView);
      createPublicKey({ key: certSpki(p), format: 'der', type: 'spki' }); // the point must be on the curve
      r = Object.freeze({ ...base, keyKind: 'ec' as const, keySize: c.curve, oaepOnly: false });
      recipientMaterial.set(r, { issuerAndSerial, ec: { curve: c.curve, point } });
    }
  } catch (err) {
    throw badKey(`${who(p.info)} has a public key that cannot be loaded`, err);
  }
  return r;
}

const certSpki = (p: ParsedCert): Buffer => p.info.spki;

function loadPrivateKey(pkcs8: Buffer): KeyObject {
  try {
    return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw badKey('the private key is not a readable unencrypted PKCS#8 key', err);
  }
}

/** Subject key identifiers a sender may use for this certificate: the extension's, else RFC 5280 method 1. */
function skisOf(p: ParsedCert): Buffer[] {
  if (p.info.subjectKeyId) return [Buffer.from(p.info.subjectKeyId, 'hex')];
  return [createHash('sha1').update(p.spkiBits.valueBlock.valueHexView).digest()];
}

export function prepareDecryptionKey(certDer: Buffer, pkcs8: Buffer): SmimeDecryptionKey {
  const p = parseCert(certDer);
  const c = classify(p);
  const privateKey = loadPrivateKey(pkcs8);
  const base = {
    fingerprint: p.info.fingerprint, subject: p.info.subject, issuer: p.info.issuer, serial: p.info.serial,
    ...(p.info.subjectKeyId ? { subjectKeyId: p.info.subjectKeyId } : {}),
  };
  const mismatch = () => badKey(`the private key does not belong to ${who(p.info)}`);
  let issuer: pkijs.RelativeDistinguishedNames;
  try {
    issuer = new pkijs.RelativeDistinguishedNames({ schema: p.issuerNode });
  } catch (err) {
    throw badKey('the certificate issuer name cannot be read', err);
  }
  const common = { issuerDer: raw(p.issuerNode), issuer, serial: serialBytes(p.serialNode, 'certificate'), skis: skisOf(p) };
  let k: SmimeDecryptionKey;
  if (c.kind === 'rsa') {
    if (privateKey.asymmetricKeyType !== 'rsa') throw mismatch();
    const pub = rsaPublicKey(p).export({ format: 'jwk' });
    const priv = privateKey.export({ format: 'jwk' });
    if (pub.n !== priv.n || pub.e !== priv.e || !priv.d) throw mismatch();
    const bytes = Math.ceil((privateKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
    k = Object.freeze({ ...base, keyKind: 'rsa' as const });
    keyMaterial.set(k, { ...common, rsa: { privateKey, k: bytes, rejection: rejectionSecret(Buffer.from(priv.d, 'base64url'), bytes) } });
  } else {
    if (privateKey.asymmetricKeyType !== 'ec') throw mismatch();
    const pub = createPublicKey({ key: certSpki(p), format: 'der', type: 'spki' }).export({ format: 'jwk' });
    const priv = privateKey.export({ format: 'jwk' });
    if (pub.crv !== priv.crv || pub.x !== priv.x || pub.y !== priv.y || !priv.d) throw mismatch();
    k = Object.freeze({ ...base, keyKind: 'ec' as const });
    keyMaterial.set(k, { ...common, ec: { curve: c.curve, scalar: Buffer.from(priv.d, 'base64url') } });
  }
  return k;
}

/** Whether a recipient identifier in a message names this key's certificate. */
export function ridMatches(m: KeyMaterial, rid: { kind: 'issuerSerial'; issuer: asn1js.AsnType; issuerDer: Buffer; serial: Buffer } | { kind: 'ski'; ski: Buffer }): boolean {
  if (rid.kind === 'ski') return m.skis.some((s) => s.equals(rid.ski));
  if (!rid.serial.equals(m.serial)) return false;
  if (rid.issuerDer.equals(m.issuerDer)) return true;
  try {
    // Same name, other string types or case (RFC 5280 §7.1 comparison as pkijs does it).
    return m.issuer.isEqual(new pkijs.RelativeDistinguishedNames({ schema: rid.issuer }));
  } catch {
    return false;
  }
}
