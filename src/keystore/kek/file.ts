/**
 * The file KEK: 32 random bytes in a 0600 file (data_dir/kek.key by default). Also the in-memory
 * KEK that the file and passphrase KEKs share once they hold their 32 bytes.
 */
import { randomBytes } from 'node:crypto';
import { AES_GCM, KEY_BYTES, gcmDecrypt, gcmEncrypt, keyFingerprint, packWrapped, unpackWrapped, unwrapFailed } from './aead.js';
import { createExclusive, readCheckedFile } from './secret-file.js';
import { KekError, type Kek } from './types.js';

/**
 * A KEK whose key is in this process's memory. Takes ownership of `key` (zeroed on close).
 * `idPrefix` says where the key came from ("file", "passphrase").
 */
export function memoryKek(idPrefix: string, key: Buffer): Kek {
  if (key.length !== KEY_BYTES) throw new KekError(`a KEK must be ${KEY_BYTES} bytes, got ${key.length}`);
  const id = `${idPrefix}:${keyFingerprint(key)}`;
  let closed = false;
  const live = (): Buffer => {
    if (closed) throw new KekError(`KEK ${id} is closed`);
    return key;
  };
  return {
    id,
    algorithm: AES_GCM,
    async wrap(dataKey, aad) {
      const { iv, ciphertext } = gcmEncrypt(live(), dataKey, aad);
      return packWrapped(iv, ciphertext);
    },
    async unwrap(wrapped, aad) {
      const { iv, ciphertext } = unpackWrapped(wrapped, id);
      const out = gcmDecrypt(live(), iv, ciphertext, aad);
      if (!out) throw unwrapFailed(id);
      return out;
    },
    async close() {
      closed = true;
      key.fill(0);
    },
  };
}

export interface OpenFileKekOptions {
  /** Generate the file when it does not exist (first start, `kek rotate --to file`). */
  create: boolean;
}

/**
 * Open the KEK file at `path` (absolute). Refuses a file that others could read, a file of the
 * wrong size, or anything but a regular file: a KEK that leaked or was truncated must stop the
 * start-up, not be used.
 */
export async function openFileKek(path: string, opts: OpenFileKekOptions): Promise<Kek> {
  const what = 'KEK file';
  let key = await readCheckedFile(path, { what, exactSize: KEY_BYTES, privateMode: true });
  if (!key) {
    if (!opts.create) {
      throw new KekError(`${what} ${path} does not exist (it is created on first start; restore it from backup if keys were sealed with it)`);
    }
    const fresh = randomBytes(KEY_BYTES);
    try {
      // false: another process created it first; use its key (read below).
      if (await createExclusive(path, fresh)) return memoryKek('file', fresh);
    } catch (e) {
      fresh.fill(0);
      throw e;
    }
    fresh.fill(0);
    key = await readCheckedFile(path, { what, exactSize: KEY_BYTES, privateMode: true });
    if (!key) throw new KekError(`${what} ${path} vanished while it was being created`);
  }
  return memoryKek('file', key);
}
