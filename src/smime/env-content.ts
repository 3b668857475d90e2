/**
 * Content-encryption algorithms of enveloped mail: which ones Postern reads and writes, their
 * AlgorithmIdentifiers (CBC: the IV as parameter; GCM: RFC 5084 GCMParameters), and the symmetric
 * work, done with Node's synchronous ciphers. CBC padding failures and GCM tag failures surface as
 * 'decrypt-failed' and 'integrity' with fixed texts: nothing about where decryption went wrong.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import { SmimeError } from './errors.js';
import { algId, expectSeq, malformed, octetContent, octets, readSmallInt, seq, smallInt } from './env-der.js';

export type ContentCipher = 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc' | 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';

interface CipherSpec {
  node: string; // Node / OpenSSL cipher name
  label: string; // what Decrypted.cipher says
  keyLen: number;
  mode: 'cbc' | 'gcm';
}

const SPECS: Record<string, CipherSpec> = {
  '2.16.840.1.101.3.4.1.2': { node: 'aes-128-cbc', label: 'AES-128-CBC', keyLen: 16, mode: 'cbc' },
  '2.16.840.1.101.3.4.1.22': { node: 'aes-192-cbc', label: 'AES-192-CBC', keyLen: 24, mode: 'cbc' },
  '2.16.840.1.101.3.4.1.42': { node: 'aes-256-cbc', label: 'AES-256-CBC', keyLen: 32, mode: 'cbc' },
  '1.2.840.113549.3.7': { node: 'des-ede3-cbc', label: '3DES-CBC', keyLen: 24, mode: 'cbc' },
  '2.16.840.1.101.3.4.1.6': { node: 'aes-128-gcm', label: 'AES-128-GCM', keyLen: 16, mode: 'gcm' },
  '2.16.840.1.101.3.4.1.26': { node: 'aes-192-gcm', label: 'AES-192-GCM', keyLen: 24, mode: 'gcm' },
  '2.16.840.1.101.3.4.1.46': { node: 'aes-256-gcm', label: 'AES-256-GCM', keyLen: 32, mode: 'gcm' },
};
const OID_BY_NODE = new Map(Object.entries(SPECS).map(([o, s]) => [s.node, o]));

/** Names of algorithms we recognise but do not implement, for a useful 'unsupported' message. */
const KNOWN_UNSUPPORTED: Record<string, string> = {
  '1.2.840.113549.3.2': 'RC2-CBC',
  '1.3.14.3.2.7': 'DES-CBC',
  '1.2.840.113549.1.9.16.3.18': 'ChaCha20-Poly1305',
  '2.16.840.1.101.3.4.1.7': 'AES-128-CCM',
  '2.16.840.1.101.3.4.1.27': 'AES-192-CCM',
  '2.16.840.1.101.3.4.1.47': 'AES-256-CCM',
};

export const DECRYPT_FAILED_TEXT = 'the message could not be decrypted with the key it is addressed to (wrong key or damaged content)';
export const decryptFailed = (): SmimeError => new SmimeError(DECRYPT_FAILED_TEXT, 'decrypt-failed');
export const INTEGRITY_TEXT = 'the authenticated encryption tag does not match: the content was altered or truncated, or the key is wrong';

/** A parsed contentEncryptionAlgorithm of an incoming message. */
export interface ContentAlgorithm {
  spec: CipherSpec;
  iv: Buffer;
  tagLen: number; // GCM only
}

export function isGcm(c: ContentCipher): boolean {
  return c.endsWith('-gcm');
}

export function keyLength(c: ContentCipher): number {
  return Number(c.slice(4, 7)) / 8;
}

/** Read the AlgorithmIdentifier of the encrypted content; 'unsupported' for algorithms we do not do. */
export function readContentAlgorithm(oidStr: string, params: asn1js.AsnType | undefined, authenticated: boolean): ContentAlgorithm {
  const spec = SPECS[oidStr];
  if (!spec) throw new SmimeError(`content encryption ${KNOWN_UNSUPPORTED[oidStr] ?? oidStr} is not supported`, 'unsupported');
  if ((spec.mode === 'gcm') !== authenticated) {
    throw new SmimeError(`${spec.label} in ${authenticated ? 'AuthEnvelopedData' : 'EnvelopedData'} is not allowed (RFC 5083/5084)`, 'unsupported');
  }
  if (spec.mode === 'cbc') {
    const iv = octetContent(params, 'content encryption IV');
    if (iv.length !== (spec.node.startsWith('des') ? 8 : 16)) throw malformed('content encryption IV has the wrong length');
    return { spec, iv, tagLen: 0 };
  }
  // GCMParameters ::= SEQUENCE { aes-nonce OCTET STRING, aes-ICVlen AES-GCM-ICVlen DEFAULT 12 }
  const [nonceNode, icvNode, extra] = expectSeq(params, 'GCM parameters');
  const iv = octetContent(nonceNode, 'GCM nonce');
  const tagLen = icvNode === undefined ? 12 : readSmallInt(icvNode, 'GCM ICV length');
  if (extra || iv.length === 0 || iv.length > 64 || tagLen < 12 || tagLen > 16) throw malformed('GCM parameters are out of range');
  return { spec, iv, tagLen };
}

/** Decrypt the content. CBC: any failure is 'decrypt-failed'. GCM: a tag mismatch is 'integrity'. */
export function decryptContent(alg: ContentAlgorithm, key: Buffer, ciphertext: Buffer, tag?: Buffer, aad?: Buffer): Buffer {
  if (key.length !== alg.spec.keyLen) throw decryptFailed();
  if (alg.spec.mode === 'cbc') {
    try {
      const d = createDecipheriv(alg.spec.node, key, alg.iv);
      return Buffer.concat([d.update(ciphertext), d.final()]);
    } catch {
      throw decryptFailed();
    }
  }
  if (!tag || tag.length !== alg.tagLen) throw new SmimeError(INTEGRITY_TEXT, 'integrity');
  try {
    const d = createDecipheriv(alg.spec.node as 'aes-256-gcm', key, alg.iv, { authTagLength: alg.tagLen });
    if (aad) d.setAAD(aad);
    d.setAuthTag(tag);
    return Buffer.concat([d.update(ciphertext), d.final()]);
  } catch {
    throw new SmimeError(INTEGRITY_TEXT, 'integrity');
  }
}

export interface EncryptedContent {
  algorithm: Buffer; // DER AlgorithmIdentifier
  ciphertext: Buffer;
  tag?: Buffer;
}

/** A content cipher under way: its AlgorithmIdentifier, and the cipher to feed (encrypt-stream.ts streams through it). */
export interface ContentEncryptor {
  algorithm: Buffer; // DER AlgorithmIdentifier
  update(data: Buffer): Buffer;
  final(): Buffer;
  /** GCM: the tag, after final(). */
  tag(): Buffer | undefined;
}

/** GCM: a 96-bit random nonce and a 16-byte tag, as openssl writes them. */
export function startContentCipher(cipher: ContentCipher, key: Buffer): ContentEncryptor {
  const oidStr = OID_BY_NODE.get(cipher);
  if (!oidStr) throw new SmimeError(`unknown content cipher ${String(cipher)}`, 'unsupported');
  if (isGcm(cipher)) {
    const nonce = randomBytes(12);
    const c = createCipheriv(cipher as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
    return { algorithm: algId(oidStr, seq(octets(nonce), smallInt(16))), update: (d) => c.update(d), final: () => c.final(), tag: () => c.getAuthTag() };
  }
  const iv = randomBytes(16);
  const c = createCipheriv(cipher, key, iv);
  return { algorithm: algId(oidStr, octets(iv)), update: (d) => c.update(d), final: () => c.final(), tag: () => undefined };
}

export function encryptContent(cipher: ContentCipher, key: Buffer, content: Buffer): EncryptedContent {
  const c = startContentCipher(cipher, key);
  const ciphertext = Buffer.concat([c.update(content), c.final()]);
  const tag = c.tag();
  return { algorithm: c.algorithm, ciphertext, ...(tag ? { tag } : {}) };
}

export const CONTENT_CIPHERS: readonly ContentCipher[] = ['aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc', 'aes-128-gcm', 'aes-192-gcm', 'aes-256-gcm'];
