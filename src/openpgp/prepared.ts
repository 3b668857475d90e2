/**
 * Keys read once for the message path. openpgp.js takes milliseconds to read and check a key (its
 * self-signatures are verified on use), so the worker prepares each key once and caches it per
 * fingerprint; the message functions only take prepared keys.
 *
 * - PgpRecipient: a public key with a usable encryption subkey now, and what packet format it can
 *   read (SEIPDv2/AEAD for v6 keys and keys that advertise it, SEIPDv1 with MDC otherwise: gpg 2.2
 *   reads only the latter — DESIGN.md §6).
 * - PgpSigner / PgpDecryptionKey: an unprotected secret key as the keystore returns it (a secret:
 *   never logged, never part of an error).
 * - PgpVerificationKey: a public key a signature may be checked with, and whether it is trusted.
 */
import * as openpgp from 'openpgp';
import type { Key, PrivateKey, PublicKey } from 'openpgp';
import { hasSoftRevocation, withKeySemantics } from './key-semantics.js';
import { parsePgpKeys, PgpKeyError } from './keys.js';

/** openpgp.js is written for Uint8Arrays; Node Buffers may be views into a shared pool. */
export const bytes = (b: Uint8Array): Uint8Array => new Uint8Array(b);

/** The name of an openpgp.enums value ('sha256', 'ocb' …); the typings only know keyFlags' reverse map. */
export function enumName(table: Record<string, unknown>, value: unknown): string {
  for (const [name, v] of Object.entries(table)) if (v === value) return name;
  return String(value);
}

/** RFC 9580 §5.2.3.32 features: the key holder reads SEIPDv2 (not in openpgp.js' typings). */
const FEATURE_SEIPDV2 = 0x08;
type SelfSigned = { getPrimarySelfSignature(date?: Date | null): Promise<{ features?: number[] | null; preferredSymmetricAlgorithms?: number[] | null }> };

const isArmored = (b: Buffer) => b.subarray(0, 4096).includes('-----BEGIN PGP');

async function readPublic(data: Buffer): Promise<PublicKey> {
  const key = isArmored(data) ? await openpgp.readKey({ armoredKey: data.toString('latin1') }) : await openpgp.readKey({ binaryKey: bytes(data) });
  return withKeySemantics(key.isPrivate() ? key.toPublic() : (key as PublicKey));
}

async function readSecret(data: Buffer): Promise<PrivateKey> {
  const key = isArmored(data) ? await openpgp.readPrivateKey({ armoredKey: data.toString('latin1') }) : await openpgp.readPrivateKey({ binaryKey: bytes(data) });
  // The keystore holds secret keys decrypted and sealed under the KEK; a locked one is a bug there.
  if (!key.isDecrypted()) throw new PgpKeyError(`secret key ${key.getFingerprint().toUpperCase()} is still passphrase-protected`);
  return withKeySemantics(key);
}

/** The addresses of a key's valid (self-certified, unrevoked) user ids, lower-cased. */
export async function keyAddresses(key: Key, now = new Date()): Promise<string[]> {
  const out = new Set<string>();
  for (const user of key.users) {
    const email = user.userID?.email;
    if (!email) continue;
    try {
      await user.verify(now);
      out.add(email.toLowerCase());
    } catch {
      // an unbound or revoked user id says nothing about who holds the key
    }
  }
  return [...out];
}

const keyIdsOf = (key: Key) => key.getKeyIDs().map((k) => k.toHex().toUpperCase());

export interface PgpRecipient {
  fingerprint: string;
  key: PublicKey;
  addresses: string[];
  /** The subkey messages to this recipient are encrypted to (upper-case hex key id). */
  encryptionKeyId: string;
  /** The recipient reads SEIPDv2 (AEAD): a v6 key, or a key whose features say so. */
  aead: boolean;
}

export async function preparePgpRecipient(armoredOrBinary: Buffer, opts: { now?: Date } = {}): Promise<PgpRecipient> {
  const now = opts.now ?? new Date();
  let key: PublicKey;
  try {
    key = await readPublic(armoredOrBinary);
  } catch (err) {
    throw new PgpKeyError(`not an OpenPGP public key: ${(err as Error).message.replace(/^Error: /, '')}`, { cause: err });
  }
  const fingerprint = key.getFingerprint().toUpperCase();
  let encKey;
  try {
    encKey = await key.getEncryptionKey(undefined, now);
  } catch {
    // Said in the admin's words, with keys.ts's diagnosis (parsing again is fine on this rare path).
    const { keys } = await parsePgpKeys(armoredOrBinary, { now });
    const why = keys[0]?.info.encryptProblem ?? 'no usable encryption subkey';
    throw new PgpKeyError(`OpenPGP key ${fingerprint} cannot be encrypted to: ${why}`);
  }
  let features = 0;
  try {
    features = (await (key as unknown as SelfSigned).getPrimarySelfSignature(now)).features?.[0] ?? 0;
  } catch {
    // no valid primary self-signature: getEncryptionKey would have failed already
  }
  return {
    fingerprint,
    key,
    addresses: await keyAddresses(key, now),
    encryptionKeyId: encKey.getKeyID().toHex().toUpperCase(),
    aead: key.keyPacket.version === 6 || (features & FEATURE_SEIPDV2) !== 0,
  };
}

export interface PgpSigner {
  fingerprint: string;
  address?: string;
  key: PrivateKey;
  signingKeyId: string;
}

export async function preparePgpSigner(secretKey: Buffer, opts: { now?: Date } = {}): Promise<PgpSigner> {
  const now = opts.now ?? new Date();
  let key: PrivateKey;
  try {
    key = await readSecret(secretKey);
  } catch (err) {
    throw err instanceof PgpKeyError ? err : new PgpKeyError(`not an OpenPGP secret key: ${(err as Error).message.replace(/^Error: /, '')}`, { cause: err });
  }
  const fingerprint = key.getFingerprint().toUpperCase();
  let signing;
  try {
    signing = await key.getSigningKey(undefined, now);
  } catch (err) {
    throw new PgpKeyError(`OpenPGP key ${fingerprint} cannot sign now: ${(err as Error).message.replace(/^Error: /, '')}`);
  }
  const [address] = await keyAddresses(key, now);
  return { fingerprint, ...(address ? { address } : {}), key, signingKeyId: signing.getKeyID().toHex().toUpperCase() };
}

export interface PgpDecryptionKey {
  fingerprint: string;
  key: PrivateKey;
  /** Key ids of the primary key and every subkey (what a PKESK packet names). */
  keyIds: string[];
  /** The symmetric ciphers the key advertises (openpgp.enums.symmetric ids): a session key may use them. */
  ciphers?: number[];
}

export async function preparePgpDecryptionKey(secretKey: Buffer): Promise<PgpDecryptionKey> {
  let key: PrivateKey;
  try {
    key = await readSecret(secretKey);
  } catch (err) {
    throw err instanceof PgpKeyError ? err : new PgpKeyError(`not an OpenPGP secret key: ${(err as Error).message.replace(/^Error: /, '')}`, { cause: err });
  }
  // Revoked or expired keys still decrypt what was sent to them before (as gpg and Thunderbird do).
  let ciphers: number[] = [];
  try {
    ciphers = (await (key as unknown as SelfSigned).getPrimarySelfSignature(null)).preferredSymmetricAlgorithms ?? [];
  } catch {
    // no valid self-signature: only the fallback ciphers (pgp-rsa.ts)
  }
  return { fingerprint: key.getFingerprint().toUpperCase(), key, keyIds: keyIdsOf(key), ciphers };
}

export interface PgpVerificationKey {
  fingerprint: string;
  key: PublicKey;
  addresses: string[];
  keyIds: string[];
  /**
   * False for a key nobody vouched for (collected from mail, Autocrypt, a key server): a good
   * signature by it is 'untrusted', not 'valid'.
   */
  trusted: boolean;
  /**
   * For a key with a soft revocation: a new key object for one verification, so that what
   * openpgp.js found at one date is not taken for another (key-semantics.ts). Absent otherwise:
   * `key` itself is used.
   */
  fresh?: () => Promise<PublicKey>;
}

export async function preparePgpVerificationKey(publicKey: Buffer, opts: { trusted?: boolean; now?: Date } = {}): Promise<PgpVerificationKey> {
  let key: PublicKey;
  try {
    key = await readPublic(publicKey);
  } catch (err) {
    throw new PgpKeyError(`not an OpenPGP public key: ${(err as Error).message.replace(/^Error: /, '')}`, { cause: err });
  }
  const copy = Buffer.from(publicKey);
  return {
    fingerprint: key.getFingerprint().toUpperCase(),
    key,
    addresses: await keyAddresses(key, opts.now),
    keyIds: keyIdsOf(key),
    trusted: opts.trusted ?? true,
    ...(hasSoftRevocation(key) ? { fresh: () => readPublic(copy) } : {}),
  };
}
