/**
 * RSA key transport padding, done here rather than by OpenSSL through Node:
 *  - PKCS#1 v1.5 decryption (what Outlook, Thunderbird, openssl and gpgsm send by default). Node 20
 *    refuses RSA_PKCS1_PADDING for private decryption since the Marvin fix, so the raw RSA result
 *    (RSA_NO_PADDING) is unpadded here with *implicit rejection* (draft-irtf-cfrg-rsa-guidance,
 *    OpenSSL 3.2): a bad block yields a deterministic synthetic key derived from the private key
 *    and the ciphertext, never an error, so the caller's content decryption fails in the same way
 *    whether the padding or the key was wrong. The check and the selection are branch-free.
 *  - RSAES-OAEP (RFC 8017 §7.1) for any hash / MGF1 hash pair and label: Node ties the MGF1 hash to
 *    the OAEP hash, and openssl sends e.g. SHA-256 with MGF1-SHA-1.
 */
import { constants, createHash, createHmac, privateDecrypt, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';

/** The raw RSA private operation, or null when the input is not a number below the modulus. */
export function rsaRaw(key: KeyObject, c: Buffer): Buffer | null {
  try {
    return privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, c);
  } catch {
    return null;
  }
}

const leftPad = (b: Buffer, k: number): Buffer => (b.length >= k ? b : Buffer.concat([Buffer.alloc(k - b.length), b]));

/** SHA-256 of the private exponent as k big-endian bytes: the long-term secret of implicit rejection. */
export function rejectionSecret(dBigEndian: Buffer, k: number): Buffer {
  return createHash('sha256').update(leftPad(dBigEndian, k)).digest();
}

/**
 * The synthetic key for a ciphertext that does not unpad: KDK = HMAC-SHA256(secret, C), then the
 * draft's PRF, HMAC-SHA256(KDK, I2OSP(i, 2) || "message" || I2OSP(bits, 2)) for i = 0, 1 …,
 * truncated to keyLen bytes. Deterministic, so retries cannot average it away.
 */
export function syntheticKey(secret: Buffer, ciphertext: Buffer, k: number, keyLen: number): Buffer {
  const kdk = createHmac('sha256', secret).update(leftPad(ciphertext, k)).digest();
  const bits = Buffer.alloc(2);
  bits.writeUInt16BE((keyLen * 8) & 0xffff);
  const blocks: Buffer[] = [];
  for (let i = 0; blocks.length * 32 < keyLen; i++) {
    const counter = Buffer.alloc(2);
    counter.writeUInt16BE(i);
    blocks.push(createHmac('sha256', kdk).update(counter).update('message').update(bits).digest());
  }
  return Buffer.concat(blocks).subarray(0, keyLen);
}

/** 1 when the byte is zero, else 0, without a branch. */
const isZero = (x: number): number => ((x - 1) >>> 31) & 1;

/**
 * Unpad an EME-PKCS1-v1_5 block (RFC 8017 §7.2.2) expected to carry exactly keyLen bytes:
 * 00 02 PS(≥ 8 non-zero bytes) 00 M. Anything else — a bad block, a message of another length,
 * or no block at all (em null: the RSA operation refused the input) — returns `synthetic`.
 */
export function pkcs1Unpad(em: Buffer | null, k: number, keyLen: number, synthetic: Buffer): Buffer {
  const sep = k - keyLen - 1; // public: depends only on the key size and the content cipher
  const block = em && em.length === k ? em : Buffer.alloc(k);
  let good = em && em.length === k && sep >= 10 ? 1 : 0;
  good &= isZero(block[0]!) & isZero(block[1]! ^ 0x02);
  for (let i = 2; i < sep; i++) good &= 1 - isZero(block[i]!);
  good &= isZero(block[Math.max(sep, 0)]!);
  const keep = -good & 0xff;
  const out = Buffer.alloc(keyLen);
  for (let i = 0; i < keyLen; i++) out[i] = (block[sep + 1 + i]! & keep) | (synthetic[i]! & ~keep & 0xff);
  return out;
}

/** PKCS#1 v1.5 key transport, decryption side: the content key, or an indistinguishable synthetic one. */
export function decryptPkcs1(key: KeyObject, secret: Buffer, k: number, ciphertext: Buffer, keyLen: number): Buffer {
  const synthetic = syntheticKey(secret, ciphertext, k, keyLen);
  const em = ciphertext.length <= k ? rsaRaw(key, ciphertext) : null;
  return pkcs1Unpad(em, k, keyLen, synthetic);
}

// ---------------------------------------------------------------- OAEP

export interface OaepParams {
  hash: string; // Node digest name
  mgfHash: string;
  label: Buffer;
}

function mgf1(seed: Buffer, length: number, hash: string): Buffer {
  const out: Buffer[] = [];
  let have = 0;
  for (let i = 0; have < length; i++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(i);
    const block = createHash(hash).update(seed).update(c).digest();
    out.push(block);
    have += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

function xorInto(target: Buffer, mask: Buffer): void {
  for (let i = 0; i < target.length; i++) target[i]! ^= mask[i]!;
}

/** EME-OAEP encoding (RFC 8017 §7.1.1) of a content key into a k-byte block. */
export function oaepEncode(message: Buffer, k: number, p: OaepParams): Buffer {
  const lHash = createHash(p.hash).update(p.label).digest();
  const hLen = lHash.length;
  if (message.length > k - 2 * hLen - 2) throw new RangeError('content key too long for the RSA modulus');
  const db = Buffer.concat([lHash, Buffer.alloc(k - message.length - 2 * hLen - 2), Buffer.from([0x01]), message]);
  const seed = randomBytes(hLen);
  xorInto(db, mgf1(seed, db.length, p.mgfHash));
  xorInto(seed, mgf1(db, hLen, p.mgfHash));
  return Buffer.concat([Buffer.from([0x00]), seed, db]);
}

/** RSAES-OAEP encryption with Node's raw public operation. */
export function encryptOaep(publicKey: KeyObject, k: number, message: Buffer, p: OaepParams): Buffer {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, oaepEncode(message, k, p));
}

/**
 * EME-OAEP decoding (RFC 8017 §7.1.2); null for any failure. The checks are accumulated without
 * early exits so that Manger's attack cannot tell a bad leading byte from a bad label hash.
 */
export function oaepDecode(em: Buffer | null, k: number, p: OaepParams): Buffer | null {
  const lHash = createHash(p.hash).update(p.label).digest();
  const hLen = lHash.length;
  if (!em || em.length !== k || k < 2 * hLen + 2) return null;
  const seed = Buffer.from(em.subarray(1, 1 + hLen));
  const db = Buffer.from(em.subarray(1 + hLen));
  xorInto(seed, mgf1(db, hLen, p.mgfHash));
  xorInto(db, mgf1(seed, db.length, p.mgfHash));
  let bad = em[0]!;
  for (let i = 0; i < hLen; i++) bad |= db[i]! ^ lHash[i]!;
  // Find the 0x01 separator after the zero padding: `looking` stays 1 until it is seen.
  let looking = 1;
  let index = 0;
  for (let i = hLen; i < db.length; i++) {
    const b = db[i]!;
    const isOne = isZero(b ^ 0x01);
    const zero = isZero(b);
    index |= -(looking & isOne) & i;
    bad |= looking & (1 - zero) & (1 - isOne); // a byte other than 00 before the separator
    looking &= 1 - isOne;
  }
  bad |= looking;
  return bad === 0 ? Buffer.from(db.subarray(index + 1)) : null;
}
