/**
 * The passphrase KEK: 32 bytes derived with scrypt from a passphrase in an environment variable
 * and a salt kept in a small file (data_dir/kek.salt).
 *
 * The salt file also records the scrypt parameters, so the cost can be raised for new
 * installations later without changing the key of an existing one. Format (JSON, one line):
 *
 *     {"v":1,"kdf":"scrypt","N":131072,"r":8,"p":1,"salt":"<16 bytes, base64>"}
 *
 * Cost: N=2^17, r=8, p=1 (128 MiB, ~0.3 s on the build machine; 2^15 took ~75 ms, 2^16 ~140 ms).
 * It is paid once per process start, so the stronger setting is affordable.
 */
import { randomBytes, scrypt } from 'node:crypto';
import { KEY_BYTES } from './aead.js';
import { memoryKek } from './file.js';
import { createExclusive, readCheckedFile } from './secret-file.js';
import { KekError, type Kek } from './types.js';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** Used when a salt file is created. */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });
/** A salt file asking for less than this is refused (it was edited, not written by us). */
const MIN_N = 2 ** 15;
const MAX_N = 2 ** 22;
const SALT_BYTES = 16;

export interface OpenPassphraseKekOptions {
  /** Absolute path of the salt file. */
  saltFile: string;
  /** Create the salt file when it is missing. */
  create: boolean;
  /** Where to read the variable (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Parameters for a salt file created now (tests use cheaper ones). */
  scrypt?: ScryptParams;
}

interface SaltRecord extends ScryptParams {
  salt: Buffer;
}

export async function openPassphraseKek(envName: string, opts: OpenPassphraseKekOptions): Promise<Kek> {
  const env = opts.env ?? process.env;
  const passphrase = env[envName];
  if (passphrase === undefined || passphrase === '') {
    throw new KekError(`the KEK passphrase variable ${envName} is not set or empty (kek.passphrase_env names it)`);
  }
  const rec = await loadOrCreateSalt(opts.saltFile, opts.create, opts.scrypt ?? DEFAULT_SCRYPT);
  const secret = Buffer.from(passphrase, 'utf8');
  try {
    const key = await deriveKey(secret, rec);
    return memoryKek('passphrase', key);
  } finally {
    secret.fill(0);
  }
}

function deriveKey(passphrase: Buffer, rec: SaltRecord): Promise<Buffer> {
  // Node's default maxmem (32 MiB) is below what N=2^15, r=8 needs; allow what the params ask.
  const maxmem = 128 * rec.N * rec.r * 2 + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(passphrase, rec.salt, KEY_BYTES, { N: rec.N, r: rec.r, p: rec.p, maxmem }, (err, key) => {
      if (err) reject(new KekError(`scrypt failed (N=${rec.N}, r=${rec.r}, p=${rec.p}): ${err.message}`));
      else resolve(key);
    });
  });
}

async function loadOrCreateSalt(path: string, create: boolean, params: ScryptParams): Promise<SaltRecord> {
  const what = 'KEK salt file';
  let raw = await readCheckedFile(path, { what, maxSize: 1024 });
  if (!raw) {
    if (!create) {
      throw new KekError(
        `${what} ${path} does not exist: without it the passphrase gives a different key ` +
          '(restore it from backup, or start once to create it on a new installation)',
      );
    }
    checkParams(path, params);
    const rec: SaltRecord = { ...params, salt: randomBytes(SALT_BYTES) };
    await createExclusive(path, Buffer.from(encodeSalt(rec)));
    // Read back whichever salt won, in case another process created it at the same moment.
    raw = await readCheckedFile(path, { what, maxSize: 1024 });
    if (!raw) throw new KekError(`${what} ${path} vanished while it was being created`);
  }
  return parseSalt(path, raw);
}

function encodeSalt(rec: SaltRecord): string {
  return JSON.stringify({ v: 1, kdf: 'scrypt', N: rec.N, r: rec.r, p: rec.p, salt: rec.salt.toString('base64') }) + '\n';
}

function parseSalt(path: string, raw: Buffer): SaltRecord {
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new KekError(`KEK salt file ${path} is not valid (expected one JSON line written by Postern)`);
  }
  const o = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  if (o.v !== 1 || o.kdf !== 'scrypt' || typeof o.salt !== 'string') {
    throw new KekError(`KEK salt file ${path} has an unknown format (v=${String(o.v)}, kdf=${String(o.kdf)})`);
  }
  const salt = Buffer.from(o.salt, 'base64');
  if (salt.length !== SALT_BYTES) throw new KekError(`KEK salt file ${path}: salt must be ${SALT_BYTES} bytes`);
  const params = { N: Number(o.N), r: Number(o.r), p: Number(o.p) };
  checkParams(path, params);
  return { ...params, salt };
}

function checkParams(path: string, { N, r, p }: ScryptParams): void {
  const pow2 = Number.isInteger(N) && N > 1 && (N & (N - 1)) === 0;
  if (!pow2 || N < MIN_N || N > MAX_N || !Number.isInteger(r) || r < 8 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) {
    throw new KekError(
      `KEK salt file ${path}: scrypt parameters N=${N}, r=${r}, p=${p} are out of range ` +
        `(N a power of two in 2^15..2^22, r 8..32, p 1..16)`,
    );
  }
}
