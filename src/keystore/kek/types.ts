/**
 * The key-encryption key (KEK) behind an HSM-style interface: it wraps and unwraps the per-key
 * data keys (DEKs) that encrypt private keys at rest. With a real HSM (PKCS#11) the KEK never
 * leaves the token; with the file KEK it is 32 bytes on disk, mode 0600.
 */

export interface Kek {
  /**
   * Stable identity of this KEK, recorded beside every data key it wraps, so the store can tell
   * which KEK a row needs (and `kek rotate` which rows are done). E.g. "file:1f2e3d4c5b6a7988",
   * "passphrase:…", "pkcs11:postern/kek".
   */
  readonly id: string;
  /** Wrapping algorithm recorded in the envelope, e.g. "AES-256-GCM". */
  readonly algorithm: string;
  /** Encrypt a data key; `aad` binds it to its row (the row id), so rows cannot be swapped. */
  wrap(dataKey: Buffer, aad: Buffer): Promise<Buffer>;
  /** Reverse of wrap; throws KekError when the KEK is wrong or the data was altered. */
  unwrap(wrapped: Buffer, aad: Buffer): Promise<Buffer>;
  /** Release the token session / zero the key material. */
  close(): Promise<void>;
}

/** A KEK that cannot be opened or used: the message says what to do, never the secret. */
export class KekError extends Error {
  override readonly name = 'KekError';
}
