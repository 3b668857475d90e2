/**
 * AES-256-GCM in Node's crypto, and the byte layout of a wrapped data key, shared by the file and
 * passphrase KEKs (and the PKCS#11 KEK, whose token produces the same ciphertext ‖ tag).
 *
 * Wrapped data key, version 1:
 *
 *     0x01 ‖ iv (12 bytes) ‖ ciphertext ‖ tag (16 bytes)
 *
 * The tag goes last because that is what PKCS#11 C_Encrypt with CKM_AES_GCM returns, so one
 * parser serves every KEK. The version byte lets a later layout coexist with stored rows.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { KekError } from './types.js';

export const AES_GCM = 'AES-256-GCM';
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const KEY_BYTES = 32;
const WRAP_VERSION = 1;

export interface GcmOutput {
  iv: Buffer;
  /** Ciphertext followed by the 16-byte tag. */
  ciphertext: Buffer;
}

export function gcmEncrypt(key: Buffer, plaintext: Buffer, aad: Buffer): GcmOutput {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { iv, ciphertext };
}

/** Returns null on authentication failure, so callers can phrase the error for their context. */
export function gcmDecrypt(key: Buffer, iv: Buffer, ciphertextAndTag: Buffer, aad: Buffer): Buffer | null {
  if (iv.length !== IV_BYTES || ciphertextAndTag.length < TAG_BYTES) return null;
  const body = ciphertextAndTag.subarray(0, ciphertextAndTag.length - TAG_BYTES);
  const tag = ciphertextAndTag.subarray(ciphertextAndTag.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const out = decipher.update(body);
  try {
    return Buffer.concat([out, decipher.final()]);
  } catch {
    out.fill(0);
    return null;
  }
}

export function packWrapped(iv: Buffer, ciphertextAndTag: Buffer): Buffer {
  return Buffer.concat([Buffer.from([WRAP_VERSION]), iv, ciphertextAndTag]);
}

export function unpackWrapped(wrapped: Buffer, kekId: string): { iv: Buffer; ciphertext: Buffer } {
  if (wrapped.length < 1 + IV_BYTES + TAG_BYTES) {
    throw new KekError(`wrapped data key is truncated (${wrapped.length} bytes) for KEK ${kekId}`);
  }
  if (wrapped[0] !== WRAP_VERSION) {
    throw new KekError(`wrapped data key has unknown format version ${wrapped[0]} (KEK ${kekId})`);
  }
  return { iv: wrapped.subarray(1, 1 + IV_BYTES), ciphertext: wrapped.subarray(1 + IV_BYTES) };
}

/**
 * A public fingerprint of key material: 64 bits of a domain-separated SHA-256, enough to tell
 * KEKs apart and useless for recovering the key.
 */
export function keyFingerprint(key: Buffer): string {
  return createHash('sha256').update('postern-kek-id').update(key).digest('hex').slice(0, 16);
}

export function unwrapFailed(kekId: string): KekError {
  return new KekError(
    `cannot unwrap the data key with KEK ${kekId}: authentication failed ` +
      '(the wrapped key was altered, belongs to another row, or was wrapped by another KEK)',
  );
}
