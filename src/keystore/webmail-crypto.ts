/**
 * Webmail mail at rest (issue 17): each account has an X25519 key pair. The worker seals every
 * message to the account's public key, so storing needs no password; the private key is kept only
 * wrapped under scrypt(the user's password), so reading needs the user. A stolen portal.db
 * therefore reveals no mail, and costs one scrypt per password guess per account.
 *
 * - Account key: the private key as PKCS#8 DER, AES-256-GCM under scrypt(NFKC(password), salt),
 *   the cost and salt stored as a PHC string (scrypt.ts) and bound as AAD, so a row whose cost
 *   was lowered (to make guessing cheaper) no longer opens.
 * - Messages, ECIES-style: an ephemeral X25519 key, HKDF-SHA256 of the shared secret (salted with
 *   both public keys), AES-256-GCM; the caller's `aad` names the account and the message, so a
 *   sealed blob moved to another row or account does not open.
 *
 * KEK-free and SQLite-free (node:crypto only): the portal loads it (role-imports.test.ts).
 * Untrusted input: passwords from the Internet (bounded before any work), wrapped keys and sealed
 * blobs read back from portal.db (length-checked; a damaged wrapped key throws, a blob that does
 * not open is null). Secrets: passwords, private keys, plain mail — never logged or put in an error.
 */
import {
  createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject,
} from 'node:crypto';
import { newPdfPassword } from '../pdfmail/password.js';
import { newKdf, parsePhc, runScrypt, type ScryptCost } from './scrypt.js';

export type { ScryptCost } from './scrypt.js';

export interface WrappedAccountKey {
  /** `$scrypt$ln=..,r=..,p=..$salt`: how the wrapping key is derived from the password. */
  kdf: string;
  iv: Buffer;
  /** Ciphertext ‖ 16-byte GCM tag. */
  ciphertext: Buffer;
}

export interface NewAccountKeys {
  /** Raw 32-byte X25519 public key. */
  publicKey: Buffer;
  wrapped: WrappedAccountKey;
}

export class WebmailCryptoError extends Error {
  override readonly name = 'WebmailCryptoError';
}

/** As PDF_SCRYPT: N=2^15, r=8 (32 MiB, ~0.1 s on the build machine): a log-in pays it once. */
export const WEBMAIL_SCRYPT: Readonly<ScryptCost> = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

/** Longer passwords are refused, not hashed: a megabyte typed into a form must cost nothing. */
export const MAX_WEBMAIL_PASSWORD_BYTES = 256;
/** What the portal asks of a password the user chooses. */
export const MIN_WEBMAIL_PASSWORD_LENGTH = 10;

const KEY_AAD = (kdf: string) => Buffer.from(`postern webmail account key v1:${kdf}`, 'utf8');
const SEAL_INFO = 'postern webmail message v1';
const SEAL_VERSION = 1;
const RAW_KEY = 32;
const IV = 12;
const TAG = 16;
/** version ‖ ephemeral public key ‖ iv, then ciphertext ‖ tag. */
const SEAL_HEAD = 1 + RAW_KEY + IV;

/** Worth a scrypt: a non-empty string of at most MAX_WEBMAIL_PASSWORD_BYTES in NFKC UTF-8. */
function plausible(password: string): boolean {
  return typeof password === 'string' && password.length > 0 && password.length <= MAX_WEBMAIL_PASSWORD_BYTES &&
    Buffer.byteLength(password.normalize('NFKC'), 'utf8') <= MAX_WEBMAIL_PASSWORD_BYTES;
}

/**
 * Why `password` will not do as a new webmail password, or null when it will (the portal shows
 * the reason). Control and invisible characters cannot be typed reliably on another device.
 */
export function webmailPasswordProblem(password: string): string | null {
  if (typeof password !== 'string' || [...password].length < MIN_WEBMAIL_PASSWORD_LENGTH) return `at least ${MIN_WEBMAIL_PASSWORD_LENGTH} characters`;
  if (!plausible(password)) return `at most ${MAX_WEBMAIL_PASSWORD_BYTES} bytes`;
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(password)) return 'no control or invisible characters';
  return null;
}

/** The raw 32-byte public key of an X25519 key object (public or private). */
export function rawPublicKey(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const x = pub.export({ format: 'jwk' }).x;
  if (pub.asymmetricKeyType !== 'x25519' || typeof x !== 'string') throw new WebmailCryptoError('not an X25519 key');
  return Buffer.from(x, 'base64url');
}

function publicKeyObject(raw: Buffer): KeyObject {
  if (!Buffer.isBuffer(raw) || raw.length !== RAW_KEY) throw new WebmailCryptoError(`an account's public key must be ${RAW_KEY} bytes, not ${raw?.length}`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
}

async function wrap(privateKey: KeyObject, password: string, cost: ScryptCost): Promise<WrappedAccountKey> {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'x25519') throw new WebmailCryptoError('only an X25519 private key can be an account key');
  if (!plausible(password)) throw new WebmailCryptoError(`a webmail password must be 1 to ${MAX_WEBMAIL_PASSWORD_BYTES} bytes`);
  const kdf = newKdf(cost, WebmailCryptoError);
  const k = parsePhc(kdf, 'account key parameters', WebmailCryptoError);
  const key = await runScrypt(password, k.salt, k, WebmailCryptoError);
  const plain = privateKey.export({ format: 'der', type: 'pkcs8' });
  try {
    const iv = randomBytes(IV);
    const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG });
    c.setAAD(KEY_AAD(kdf));
    return { kdf, iv, ciphertext: Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]) };
  } finally {
    key.fill(0);
    plain.fill(0);
  }
}

/** A new account's key pair, the private key wrapped under `password`. */
export async function newAccountKeys(password: string, cost: ScryptCost = WEBMAIL_SCRYPT): Promise<NewAccountKeys> {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { publicKey: rawPublicKey(publicKey), wrapped: await wrap(privateKey, password, cost) };
}

/** The same private key under a new password (a password change keeps the mail readable). */
export async function rewrapAccountKey(privateKey: KeyObject, newPassword: string, cost: ScryptCost = WEBMAIL_SCRYPT): Promise<WrappedAccountKey> {
  return wrap(privateKey, newPassword, cost);
}

/** null when the password is wrong (GCM fails); throws WebmailCryptoError when the row is damaged. */
export async function unwrapAccountKey(password: string, wrapped: WrappedAccountKey): Promise<KeyObject | null> {
  const k = parsePhc(wrapped?.kdf, 'account key parameters', WebmailCryptoError);
  if (k.hash) throw new WebmailCryptoError('the stored account key parameters are damaged (a hash where none belongs)');
  if (!Buffer.isBuffer(wrapped.iv) || wrapped.iv.length !== IV || !Buffer.isBuffer(wrapped.ciphertext) || wrapped.ciphertext.length <= TAG) {
    throw new WebmailCryptoError('the stored account key is damaged (wrong lengths)');
  }
  if (!plausible(password)) return null;
  const key = await runScrypt(password, k.salt, k, WebmailCryptoError);
  let plain: Buffer;
  try {
    const d = createDecipheriv('aes-256-gcm', key, wrapped.iv, { authTagLength: TAG });
    d.setAAD(KEY_AAD(wrapped.kdf));
    d.setAuthTag(wrapped.ciphertext.subarray(wrapped.ciphertext.length - TAG));
    plain = Buffer.concat([d.update(wrapped.ciphertext.subarray(0, wrapped.ciphertext.length - TAG)), d.final()]);
  } catch {
    return null;
  } finally {
    key.fill(0);
  }
  try {
    const priv = createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' });
    if (priv.asymmetricKeyType !== 'x25519') throw new Error('not X25519');
    return priv;
  } catch {
    // It authenticated, so the password was right and what was sealed is not a key: a bug or a forged row.
    throw new WebmailCryptoError('the stored account key is damaged (not an X25519 private key)');
  } finally {
    plain.fill(0);
  }
}

/** Spends the same scrypt as a real unwrap: the portal calls it for unknown accounts (no enumeration by timing). */
export async function unwrapNothing(password: string): Promise<null> {
  if (!plausible(password)) return null;
  const key = await runScrypt(password, randomBytes(16), WEBMAIL_SCRYPT, WebmailCryptoError);
  key.fill(0);
  return null;
}

function messageKey(shared: Buffer, ephemeral: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeral, recipient]), SEAL_INFO, 32));
}

/** Ephemeral X25519 + HKDF-SHA256 + AES-256-GCM; `aad` binds it to its account and message. */
export function sealForAccount(publicKey: Buffer, plain: Buffer, aad: string): Buffer {
  const recipient = publicKeyObject(publicKey);
  const eph = generateKeyPairSync('x25519');
  const ephRaw = rawPublicKey(eph.publicKey);
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: eph.privateKey, publicKey: recipient });
  } catch {
    shared = Buffer.alloc(RAW_KEY);
  }
  // A low-order public key gives an all-zero secret (OpenSSL may refuse it first): everyone could
  // read what was sealed to it.
  if (shared.every((b) => b === 0)) throw new WebmailCryptoError('the account public key is unusable (low order)');
  const key = messageKey(shared, ephRaw, publicKey);
  shared.fill(0);
  try {
    const iv = randomBytes(IV);
    const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG });
    c.setAAD(Buffer.from(aad, 'utf8'));
    return Buffer.concat([Buffer.of(SEAL_VERSION), ephRaw, iv, c.update(plain), c.final(), c.getAuthTag()]);
  } finally {
    key.fill(0);
  }
}

/**
 * The AADs of a stored message (the worker seals with them, the portal's pages open with them):
 * each blob bound to its account, key generation and delivery (queue id and recipient), so no row
 * can be moved to another message or account, nor a summary read as a body.
 */
export const webmailSummaryAad = (accountId: number, generation: number, deliveryKey: string) => `postern:webmail:summary:${accountId}:${generation}:${deliveryKey}`;
export const webmailBodyAad = (accountId: number, generation: number, deliveryKey: string) => `postern:webmail:body:${accountId}:${generation}:${deliveryKey}`;

/** The plain bytes, or null when the blob was not sealed to this key under this `aad` (or was altered). */
export function openForAccount(privateKey: KeyObject, sealed: Buffer, aad: string): Buffer | null {
  if (!Buffer.isBuffer(sealed) || sealed.length < SEAL_HEAD + TAG || sealed[0] !== SEAL_VERSION) return null;
  const ephRaw = sealed.subarray(1, 1 + RAW_KEY);
  const iv = sealed.subarray(1 + RAW_KEY, SEAL_HEAD);
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey: publicKeyObject(ephRaw) });
  } catch {
    return null;
  }
  if (shared.every((b) => b === 0)) return null;
  const key = messageKey(shared, ephRaw, rawPublicKey(privateKey));
  shared.fill(0);
  try {
    const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG });
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(sealed.subarray(sealed.length - TAG));
    return Buffer.concat([d.update(sealed.subarray(SEAL_HEAD, sealed.length - TAG)), d.final()]);
  } catch {
    return null;
  } finally {
    key.fill(0);
  }
}

/**
 * A first password for a new account, or after a reset: told to the internal sender, who reads
 * it out to the recipient, as with PDF mail — so the same alphabet (no look-alikes, ~84 bits).
 */
export function newWebmailPassword(): string {
  return newPdfPassword();
}
