/**
 * ECDH key agreement for CMS (RFC 5753, ephemeral-static): the ANSI X9.63 KDF over
 * ECC-CMS-SharedInfo, and AES key wrap (RFC 3394) of the content key, with Node's synchronous ECDH
 * and OpenSSL's id-aesNNN-wrap ciphers. The SharedInfo leaves entityUInfo out when the sender sent
 * no UKM (RFC 5753 §7.2; PKI.js issue 335 encodes an empty one and so cannot read openssl's mail).
 */
import { createCipheriv, createDecipheriv, createECDH, createHash } from 'node:crypto';
import { SmimeError } from './errors.js';
import { algId, octets, OID, seq, tlv } from './env-der.js';

export type Curve = 'P-256' | 'P-384' | 'P-521';

export const CURVE_BY_OID: Record<string, Curve> = {
  '1.2.840.10045.3.1.7': 'P-256',
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
};
const NODE_CURVE: Record<Curve, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' };

/** dhSinglePass KDF schemes → KDF hash. Cofactor DH equals standard DH on the NIST curves (h = 1). */
export const KDF_BY_OID: Record<string, string> = {
  '1.3.133.16.840.63.0.2': 'sha1', // stdDH-sha1kdf
  '1.3.132.1.11.0': 'sha224',
  '1.3.132.1.11.1': 'sha256',
  '1.3.132.1.11.2': 'sha384',
  '1.3.132.1.11.3': 'sha512',
  '1.3.133.16.840.63.0.3': 'sha1', // cofactorDH-sha1kdf
  '1.3.132.1.14.0': 'sha224',
  '1.3.132.1.14.1': 'sha256',
  '1.3.132.1.14.2': 'sha384',
  '1.3.132.1.14.3': 'sha512',
};

/** Key wraps. 3DES (RFC 3217) is read only: openssl uses it for ECDH when the content is -des3. */
export const WRAP_BY_OID: Record<string, { node: string; keyLen: number; label: string; iv: Buffer | null }> = {
  [OID.aes128Wrap]: { node: 'id-aes128-wrap', keyLen: 16, label: 'AES-128', iv: Buffer.from('a6a6a6a6a6a6a6a6', 'hex') },
  [OID.aes192Wrap]: { node: 'id-aes192-wrap', keyLen: 24, label: 'AES-192', iv: Buffer.from('a6a6a6a6a6a6a6a6', 'hex') },
  [OID.aes256Wrap]: { node: 'id-aes256-wrap', keyLen: 32, label: 'AES-256', iv: Buffer.from('a6a6a6a6a6a6a6a6', 'hex') },
  '1.2.840.113549.1.9.16.3.6': { node: 'des3-wrap', keyLen: 24, label: '3DES', iv: null },
};

/** What Postern sends per curve: the KDF hash of the curve's strength (RFC 5753 §8 / RFC 8551). */
const SEND_KDF: Record<Curve, string> = { 'P-256': '1.3.132.1.11.1', 'P-384': '1.3.132.1.11.2', 'P-521': '1.3.132.1.11.3' };

/**
 * ECC-CMS-SharedInfo ::= SEQUENCE { keyInfo, entityUInfo [0] EXPLICIT OCTET STRING OPTIONAL, suppPubInfo [2] EXPLICIT OCTET STRING }.
 * keyInfo is the wrap AlgorithmIdentifier exactly as the message carries it (as openssl does), so
 * absent-versus-NULL parameters of a sender cannot make the KEKs differ.
 */
export function sharedInfo(wrapAlgDer: Buffer, kekLen: number, ukm?: Buffer): Buffer {
  const bits = Buffer.alloc(4);
  bits.writeUInt32BE(kekLen * 8);
  return seq(wrapAlgDer, ...(ukm && ukm.length > 0 ? [tlv(0xa0, octets(ukm))] : []), tlv(0xa2, octets(bits)));
}

/** ANSI X9.63 KDF (SEC 1 §3.6.1): Hash(Z || counter || SharedInfo) for counter = 1, 2 … */
export function x963Kdf(hash: string, z: Buffer, info: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  let have = 0;
  for (let i = 1; have < length; i++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(i);
    const block = createHash(hash).update(z).update(c).update(info).digest();
    out.push(block);
    have += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

export function wrapKey(wrapOid: string, kek: Buffer, cek: Buffer): Buffer {
  const w = WRAP_BY_OID[wrapOid]!;
  const c = createCipheriv(w.node, kek, w.iv);
  return Buffer.concat([c.update(cek), c.final()]);
}

/** RFC 3394 unwrap; null when the integrity check fails (wrong key or tampered). */
export function unwrapKey(wrapOid: string, kek: Buffer, wrapped: Buffer): Buffer | null {
  const w = WRAP_BY_OID[wrapOid];
  if (!w || wrapped.length < 16 || wrapped.length % 8 !== 0) return null;
  try {
    const d = createDecipheriv(w.node, kek, w.iv);
    return Buffer.concat([d.update(wrapped), d.final()]);
  } catch {
    return null;
  }
}

/** The AES wrap that matches the content key's strength, as openssl chooses it. */
export function wrapForKeyLength(cekLen: number): string {
  return cekLen <= 16 ? OID.aes128Wrap : cekLen <= 24 ? OID.aes192Wrap : OID.aes256Wrap;
}

export interface SenderAgreement {
  ephemeralPoint: Buffer; // uncompressed point for OriginatorPublicKey
  kdfOid: string;
  wrapOid: string;
  wrappedKey: Buffer;
}

/** Sender side: a fresh ephemeral key on the recipient's curve, Z, the KEK, the wrapped content key. */
export function agreeAndWrap(curve: Curve, recipientPoint: Buffer, cek: Buffer): SenderAgreement {
  const ecdh = createECDH(NODE_CURVE[curve]);
  const ephemeralPoint = ecdh.generateKeys();
  const z = ecdh.computeSecret(recipientPoint);
  const kdfOid = SEND_KDF[curve];
  const wrapOid = wrapForKeyLength(cek.length);
  const kekLen = WRAP_BY_OID[wrapOid]!.keyLen;
  const kek = x963Kdf(KDF_BY_OID[kdfOid]!, z, sharedInfo(algId(wrapOid), kekLen), kekLen);
  return { ephemeralPoint, kdfOid, wrapOid, wrappedKey: wrapKey(wrapOid, kek, cek) };
}

/**
 * Recipient side: Z from our private scalar and the originator's point, then the KEK. Null when
 * the point is not on our curve (a tampered or mis-addressed message, not a crash).
 */
export function recipientKek(curve: Curve, privateScalar: Buffer, originatorPoint: Buffer, kdfHash: string, wrapOid: string, wrapAlgDer: Buffer, ukm?: Buffer): Buffer | null {
  const w = WRAP_BY_OID[wrapOid];
  if (!w) throw new SmimeError(`key wrap algorithm ${wrapOid} is not supported`, 'unsupported');
  let z: Buffer;
  try {
    const ecdh = createECDH(NODE_CURVE[curve]);
    ecdh.setPrivateKey(privateScalar);
    z = ecdh.computeSecret(originatorPoint);
  } catch {
    return null;
  }
  return x963Kdf(kdfHash, z, sharedInfo(wrapAlgDer, w.keyLen, ukm), w.keyLen);
}
