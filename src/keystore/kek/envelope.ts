/**
 * The sealed-secret envelope: a secret (a private key, a PDF password…) encrypted under its own
 * random data key, and that data key wrapped by the KEK. Rotating the KEK re-wraps 32-byte data
 * keys and leaves the ciphertexts alone.
 *
 * The same `aad` (the row's identity) authenticates both layers, so neither a ciphertext nor a
 * wrapped key can be moved to another row.
 */
import { randomBytes } from 'node:crypto';
import { KEY_BYTES, gcmDecrypt, gcmEncrypt } from './aead.js';
import { KekError, type Kek } from './types.js';

export interface SealedSecret {
  /** Kek.id of the KEK that wrapped the data key. */
  kekId: string;
  /** Kek.algorithm of that KEK, e.g. "AES-256-GCM". */
  kekAlg: string;
  /** The data key as returned by Kek.wrap. */
  wrappedKey: Buffer;
  /** IV of the secret's AES-256-GCM encryption (12 bytes). */
  iv: Buffer;
  /** The secret's ciphertext followed by its 16-byte GCM tag. */
  ciphertext: Buffer;
}

function checkKek(kek: Kek, sealed: SealedSecret): void {
  if (sealed.kekId !== kek.id) {
    throw new KekError(
      `this key is wrapped by KEK ${sealed.kekId}, the configured KEK is ${kek.id} ` +
        '(configure the old KEK, or finish `postern kek rotate`)',
    );
  }
}

async function unwrapDataKey(kek: Kek, sealed: SealedSecret, aad: Buffer): Promise<Buffer> {
  checkKek(kek, sealed);
  const dek = await kek.unwrap(sealed.wrappedKey, aad);
  if (dek.length !== KEY_BYTES) {
    dek.fill(0);
    throw new KekError(`the data key unwrapped by KEK ${kek.id} is ${dek.length} bytes, expected ${KEY_BYTES}`);
  }
  return dek;
}

/** Encrypt `secret` under a fresh random 256-bit data key (AES-256-GCM, `aad` as AAD), the data key wrapped by the KEK with the same aad. */
export async function seal(kek: Kek, secret: Buffer, aad: Buffer): Promise<SealedSecret> {
  const dek = randomBytes(KEY_BYTES);
  try {
    const { iv, ciphertext } = gcmEncrypt(dek, secret, aad);
    const wrappedKey = await kek.wrap(dek, aad);
    return { kekId: kek.id, kekAlg: kek.algorithm, wrappedKey, iv, ciphertext };
  } finally {
    dek.fill(0);
  }
}

/** Decrypt; throws KekError if sealed.kekId !== kek.id or on authentication failure. */
export async function unseal(kek: Kek, sealed: SealedSecret, aad: Buffer): Promise<Buffer> {
  const dek = await unwrapDataKey(kek, sealed, aad);
  try {
    const secret = gcmDecrypt(dek, sealed.iv, sealed.ciphertext, aad);
    if (!secret) {
      throw new KekError(`sealed secret failed authentication under KEK ${kek.id} (the ciphertext was altered or belongs to another row)`);
    }
    return secret;
  } finally {
    dek.fill(0);
  }
}

/** Re-wrap only the data key under `to` (the ciphertext stays): what `kek rotate` does per row. */
export async function rewrap(from: Kek, to: Kek, sealed: SealedSecret, aad: Buffer): Promise<SealedSecret> {
  const dek = await unwrapDataKey(from, sealed, aad);
  try {
    const wrappedKey = await to.wrap(dek, aad);
    return { kekId: to.id, kekAlg: to.algorithm, wrappedKey, iv: sealed.iv, ciphertext: sealed.ciphertext };
  } finally {
    dek.fill(0);
  }
}

