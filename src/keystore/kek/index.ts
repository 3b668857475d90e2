/**
 * keystore/kek: the key-encryption key (file, passphrase or PKCS#11 token) and the sealed-secret
 * envelope that keeps private keys encrypted at rest (DESIGN §4, Secrets).
 * Untrusted input: the KEK file, salt file and token contents are checked before use (mode, size,
 * labels); sealed rows from the database are authenticated (GCM, row id as AAD) before use.
 * Secrets: the KEK bytes (file/passphrase, zeroed on close), the passphrase and the token PIN
 * (read from the environment, never logged or put in messages), and every data key (zeroed
 * after use). Errors are KekError with a message that says what to do, never a secret.
 */
import type { KekConfig } from '../../config/types.js';
import { openFileKek } from './file.js';
import { openPassphraseKek } from './passphrase.js';
import { openPkcs11Kek } from './pkcs11.js';
import type { Kek } from './types.js';

export { KekError, type Kek } from './types.js';
export { seal, unseal, rewrap, type SealedSecret } from './envelope.js';
export { openFileKek, type OpenFileKekOptions } from './file.js';
export { openPassphraseKek, DEFAULT_SCRYPT, type OpenPassphraseKekOptions, type ScryptParams } from './passphrase.js';
export { openPkcs11Kek, createPkcs11Key, pkcs11KekId, type Pkcs11KekConfig, type Pkcs11Options } from './pkcs11.js';

export interface OpenKekOptions {
  /** Absolute path of kek.salt (used by the passphrase KEK only), normally data_dir/kek.salt. */
  saltFile: string;
  /** Create the KEK file or salt file when missing (not a PKCS#11 key: see createPkcs11Key). */
  create: boolean;
  /** Where passphrase and PIN variables are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Open the configured KEK. Close it when done: that zeroes the key or ends the token session. */
export async function openKek(config: KekConfig, opts: OpenKekOptions): Promise<Kek> {
  if ('pkcs11' in config) return openPkcs11Kek(config.pkcs11, { env: opts.env });
  if (config.file !== undefined) return openFileKek(config.file, { create: opts.create });
  return openPassphraseKek(config.passphrase_env, { saltFile: opts.saltFile, create: opts.create, env: opts.env });
}
