/**
 * OpenPGP keys for the keystore: read (armored or binary, one key or a keyring), describe what
 * they are good for now, generate v4 keys gpg 2.2 can use (or v6 keys, RFC 9580, on request), and
 * export. Usability comes from the key's own self-signatures as openpgp.js verifies them (expiry,
 * revocation, key flags — with the direct-key signature's, key-semantics.ts), never from
 * guesswork on packet fields.
 */
import * as openpgp from 'openpgp';
import type { Key, PrivateKey, Subkey } from 'openpgp';
import { withKeySemantics } from './key-semantics.js';

export interface PgpSubkeyInfo {
  fingerprint: string;
  algorithm: string;
  bits?: number;
  curve?: string;
  created: Date;
  expires: Date | null;
  revoked: boolean;
  canEncrypt: boolean;
  canSign: boolean;
}

export interface PgpKeyInfo {
  /** Primary key fingerprint, upper-case hex, as gpg prints it. */
  fingerprint: string;
  keyId: string;
  version: 4 | 5 | 6;
  userIds: string[];
  /** Addresses of the valid (self-certified, unrevoked) user ids: domain lower-cased. */
  addresses: string[];
  algorithm: string;
  bits?: number;
  curve?: string;
  created: Date;
  expires: Date | null;
  revoked: boolean;
  /** A valid, unexpired, unrevoked encryption-capable (sub)key exists now. */
  canEncrypt: boolean;
  canSign: boolean;
  /** Why the key cannot be used to encrypt, when it cannot. */
  encryptProblem?: string;
  subkeys: PgpSubkeyInfo[];
  hasSecret: boolean;
}

export interface ParsedPgpKey {
  info: PgpKeyInfo;
  /** Binary transferable public key (never with secret material). */
  publicKey: Buffer;
  /** Binary transferable secret key, decrypted: a secret, sealed by the keystore. */
  secretKey?: Buffer;
}

export class PgpKeyError extends Error {
  override readonly name = 'PgpKeyError';
}

/** gpg 2.2 understands v4 keys and SEIPDv1 only: never make v6 keys or AEAD by default here. */
const V4 = { v6Keys: false, aeadProtect: false } as const;
/**
 * RFC 9580 v6 keys: their features advertise SEIPDv2 (AEAD), and their secret part is locked with
 * AEAD (S2K usage 253), not the malleable CFB of v4. Only peers with RFC 9580 read them (not gpg 2.2).
 */
const V6 = { v6Keys: true, aeadProtect: true } as const;

const dateOrNull = (d: Date | number | null): Date | null => (d instanceof Date ? d : null);

/** A plain Uint8Array copy for openpgp.js, which is written for Uint8Arrays, not Node Buffers (pool views). */
const bytes = (b: Uint8Array): Uint8Array => new Uint8Array(b);

function normalizeAddress(email: string): string | null {
  const at = email.lastIndexOf('@');
  if (at <= 0 || at === email.length - 1) return null;
  return `${email.slice(0, at)}@${email.slice(at + 1).toLowerCase()}`;
}

async function usable(fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch {
    return false;
  }
}

async function subkeyInfo(key: Key, sub: Subkey, now: Date): Promise<PgpSubkeyInfo> {
  const alg = sub.getAlgorithmInfo();
  const keyId = sub.getKeyID();
  let revoked = false;
  let expires: Date | null = null;
  try {
    await sub.verify(now);
  } catch (err) {
    revoked = /revoked/i.test((err as Error).message);
  }
  try {
    expires = dateOrNull(await sub.getExpirationTime(now));
  } catch {
    /* no valid binding signature */
  }
  return {
    fingerprint: sub.getFingerprint().toUpperCase(),
    algorithm: alg.algorithm,
    ...(alg.bits ? { bits: alg.bits } : {}),
    ...(alg.curve ? { curve: alg.curve } : {}),
    created: sub.getCreationTime(),
    expires,
    revoked,
    canEncrypt: await usable(() => key.getEncryptionKey(keyId, now)),
    canSign: await usable(() => key.getSigningKey(keyId, now)),
  };
}

/** Why no encryption key is usable, in the admin's words. */
async function encryptProblem(key: Key, now: Date, subkeys: PgpSubkeyInfo[]): Promise<string> {
  if (await key.isRevoked(undefined, undefined, now)) return 'the key is revoked';
  const expires = await key.getExpirationTime().catch(() => null);
  if (expires instanceof Date && expires.getTime() <= now.getTime()) return `the key expired on ${expires.toISOString().slice(0, 10)}`;
  try {
    await key.verifyPrimaryKey(now);
  } catch (err) {
    return `the key is not valid: ${(err as Error).message.replace(/^Error: /, '')}`;
  }
  const enc = subkeys.filter((s) => /ecdh|elgamal|rsa|x25519|x448/i.test(s.algorithm));
  if (!enc.length) return 'no encryption-capable subkey';
  if (enc.every((s) => s.revoked)) return 'every encryption subkey is revoked';
  if (enc.every((s) => s.expires && s.expires.getTime() <= now.getTime())) return 'every encryption subkey has expired';
  return 'no valid encryption subkey (missing or broken binding signature, or no encryption key flag)';
}

async function describe(key: Key, now: Date): Promise<PgpKeyInfo> {
  const alg = key.getAlgorithmInfo();
  const subkeys = await Promise.all(key.getSubkeys().map((s) => subkeyInfo(key, s, now)));
  const addresses = new Set<string>();
  for (const user of key.users) {
    const email = user.userID?.email;
    if (!email || !(await usable(() => user.verify(now)))) continue;
    const a = normalizeAddress(email);
    if (a) addresses.add(a);
  }
  const canEncrypt = await usable(() => key.getEncryptionKey(undefined, now));
  let expires: Date | null = null;
  try {
    expires = dateOrNull(await key.getExpirationTime());
  } catch {
    /* no valid self-signature: reported through canEncrypt/encryptProblem */
  }
  return {
    fingerprint: key.getFingerprint().toUpperCase(),
    keyId: key.getKeyID().toHex().toUpperCase(),
    version: key.keyPacket.version as 4 | 5 | 6,
    userIds: key.getUserIDs(),
    addresses: [...addresses],
    algorithm: alg.algorithm,
    ...(alg.bits ? { bits: alg.bits } : {}),
    ...(alg.curve ? { curve: alg.curve } : {}),
    created: key.getCreationTime(),
    expires,
    revoked: await key.isRevoked(undefined, undefined, now).catch(() => false),
    canEncrypt,
    canSign: await usable(() => key.getSigningKey(undefined, now)),
    ...(canEncrypt ? {} : { encryptProblem: await encryptProblem(key, now, subkeys) }),
    subkeys,
    hasSecret: key.isPrivate(),
  };
}

async function readAll(data: Buffer | string): Promise<Key[]> {
  const text = typeof data === 'string' ? data : data.toString('latin1');
  if (text.includes('-----BEGIN PGP')) {
    // Several armored blocks (a file of exported keys) are read one by one.
    const blocks = text.match(/-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g) ?? [];
    if (!blocks.length) throw new PgpKeyError('no complete armored key block found');
    const keys: Key[] = [];
    for (const b of blocks) keys.push(...(await openpgp.readKeys({ armoredKeys: b })));
    return keys.map(withKeySemantics);
  }
  return (await openpgp.readKeys({ binaryKeys: bytes(typeof data === 'string' ? Buffer.from(data, 'latin1') : data) })).map(withKeySemantics);
}

/** The first key packet's version and public-key algorithm, read from its header (openpgp.js sets unknown ones aside unread). */
async function firstKeyPacket(data: Buffer | string): Promise<{ version: number; algorithm: number } | null> {
  try {
    const text = typeof data === 'string' ? data : data.toString('latin1');
    const start = text.indexOf('-----BEGIN PGP');
    const b = start >= 0 ? Buffer.from((await openpgp.unarmor(text.slice(start))).data as Uint8Array) : Buffer.from(data as Buffer);
    const ctb = b[0] ?? 0;
    const tag = ctb & 0x40 ? ctb & 0x3f : (ctb >> 2) & 0x0f;
    if (tag !== 5 && tag !== 6) return null;
    const header = ctb & 0x40 ? ((b[1] ?? 0) < 192 ? 2 : (b[1] ?? 0) < 224 ? 3 : 6) : [2, 3, 5, 1][ctb & 3]!;
    const version = b[header] ?? 0;
    // v3: version, created, validity (2), algorithm; v4/v5/v6: version, created, algorithm.
    return { version, algorithm: b[header + (version === 3 ? 7 : 5)] ?? 0 };
  } catch {
    return null;
  }
}

const KEY_VERSIONS: Record<number, string> = { 2: 'PGP 2.x', 3: 'PGP 2.x', 5: 'the LibrePGP draft gpg 2.4 and later can make' };
const KNOWN_KEY_ALGORITHMS = new Set(Object.values(openpgp.enums.publicKey) as number[]);

/** Why openpgp.js read no key: an unsupported version or algorithm is said so, anything else quoted. */
async function unreadable(data: Buffer | string, err: unknown): Promise<string> {
  const why = (err as Error).message.replace(/^Error: /, '');
  const k = await firstKeyPacket(data);
  if (k && k.version !== 4 && k.version !== 6) return `unsupported: a version ${k.version} key${KEY_VERSIONS[k.version] ? ` (${KEY_VERSIONS[k.version]})` : ''}, which Postern cannot use (only v4 and v6 keys)`;
  if (k && !KNOWN_KEY_ALGORITHMS.has(k.algorithm)) return `unsupported: the key uses public-key algorithm ${k.algorithm}, which Postern does not support`;
  return `not an OpenPGP key: ${why}`;
}

/**
 * Armored or binary, one key or a keyring. Passphrase-protected secret keys are decrypted with
 * `passphrase` (the gateway must use them unattended; the keystore seals them under the KEK).
 */
export async function parsePgpKeys(data: Buffer | string, opts: { passphrase?: string; now?: Date } = {}): Promise<{ keys: ParsedPgpKey[]; problems: string[] }> {
  const now = opts.now ?? new Date();
  let keys: Key[];
  try {
    keys = await readAll(data);
  } catch (err) {
    return { keys: [], problems: [await unreadable(data, err)] };
  }
  const out: ParsedPgpKey[] = [];
  const problems: string[] = [];
  for (const key of keys) {
    const fpr = key.getFingerprint().toUpperCase();
    try {
      let secretKey: Buffer | undefined;
      if (key.isPrivate()) {
        let priv: PrivateKey = key;
        if (!priv.isDecrypted()) {
          if (!opts.passphrase) throw new PgpKeyError(`secret key ${fpr} is passphrase-protected: give the passphrase with --passphrase-env VAR`);
          try {
            priv = await openpgp.decryptKey({ privateKey: priv, passphrase: opts.passphrase });
          } catch {
            throw new PgpKeyError(`secret key ${fpr}: wrong passphrase`);
          }
        }
        secretKey = Buffer.from(priv.write());
      }
      out.push({ info: await describe(key, now), publicKey: Buffer.from(key.toPublic().write()), ...(secretKey ? { secretKey } : {}) });
    } catch (err) {
      problems.push(err instanceof PgpKeyError ? err.message : `key ${fpr}: ${(err as Error).message}`);
    }
  }
  return { keys: out, problems };
}

/**
 * A v4 key gpg 2.2 accepts: ed25519 + cv25519 by default, or RSA (3072 bits). With `v6`, an
 * RFC 9580 v6 key: Ed25519 + X25519 (the native algorithms, not the legacy EdDSA/ECDH ones), or
 * RSA of at least 3072 bits (RFC 9580 §12.4 forbids less in v6).
 */
export async function generatePgpKey(opts: { address: string; name?: string; type?: 'ecc' | 'rsa'; rsaBits?: 2048 | 3072 | 4096; v6?: boolean; expiresDays?: number; now?: Date }): Promise<ParsedPgpKey> {
  const address = normalizeAddress(opts.address.trim());
  if (!address || /[\s<>]/.test(address)) throw new PgpKeyError(`${JSON.stringify(opts.address)} is not an e-mail address`);
  if (opts.v6 && opts.type === 'rsa' && (opts.rsaBits ?? 3072) < 3072) throw new PgpKeyError('a v6 RSA key needs at least 3072 bits (RFC 9580 §12.4)');
  const ecc = opts.v6 ? { type: 'curve25519' as const } : { type: 'ecc' as const, curve: 'curve25519Legacy' as const };
  const { privateKey } = await openpgp.generateKey({
    userIDs: [{ ...(opts.name ? { name: opts.name } : {}), email: address }],
    ...(opts.type === 'rsa' ? { type: 'rsa' as const, rsaBits: opts.rsaBits ?? 3072 } : ecc),
    ...(opts.expiresDays ? { keyExpirationTime: opts.expiresDays * 86_400 } : {}),
    ...(opts.now ? { date: opts.now } : {}),
    format: 'object',
    config: opts.v6 ? V6 : V4,
  });
  return {
    info: await describe(privateKey, opts.now ?? new Date()),
    publicKey: Buffer.from(privateKey.toPublic().write()),
    secretKey: Buffer.from(privateKey.write()),
  };
}

/**
 * A key the store holds, updated with what another copy of it brings (new self-signatures,
 * revocations, user ids, subkeys) — never losing what the store had. A copy from a key server, WKD
 * or an Autocrypt header that lacks the revocation (stripped, or simply older) must not un-revoke
 * the key. The addresses: those the store had and the incoming ones, as far as the merged key still
 * binds them (a copy narrowed to one address does not unbind the others; a revoked user id does).
 */
export async function mergePgpKey(stored: Buffer, storedAddresses: readonly string[], incoming: ParsedPgpKey, now = new Date()): Promise<ParsedPgpKey> {
  const kept = withKeySemantics(await openpgp.readKey({ binaryKey: bytes(stored) }));
  const merged = withKeySemantics(await kept.update(await openpgp.readKey({ binaryKey: bytes(incoming.publicKey) }), now));
  const info = await describe(merged, now);
  const bound = new Set(info.addresses.map((a) => a.toLowerCase()));
  return {
    info: { ...info, addresses: [...new Set([...storedAddresses, ...incoming.info.addresses])].filter((a) => bound.has(a.toLowerCase())), hasSecret: incoming.info.hasSecret },
    publicKey: Buffer.from(merged.toPublic().write()),
    ...(incoming.secretKey ? { secretKey: incoming.secretKey } : {}),
  };
}

/** The binary packets of armored (any block type, gpg's ":-----BEGIN" too) or binary data. */
async function packetBytes(data: Buffer | string): Promise<Uint8Array> {
  const text = typeof data === 'string' ? data : data.toString('latin1');
  const start = text.indexOf('-----BEGIN PGP');
  if (start >= 0) return (await openpgp.unarmor(text.slice(start))).data as Uint8Array;
  return bytes(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
}

/**
 * A key revocation certificate on its own (what gpg --gen-revoke writes, in a "PUBLIC KEY BLOCK"):
 * the issuer's fingerprint (or key id, when it names none), or null when `data` is something else.
 */
export async function revocationCertificateIssuer(data: Buffer | string): Promise<string | null> {
  try {
    const sig = await openpgp.readSignature({ binarySignature: await packetBytes(data) });
    const p = sig.packets[0] as openpgp.SignaturePacket | undefined;
    if (sig.packets.length !== 1 || p?.signatureType !== openpgp.enums.signature.keyRevocation) return null;
    return p.issuerFingerprint ? Buffer.from(p.issuerFingerprint).toString('hex').toUpperCase() : p.issuerKeyID.toHex().toUpperCase();
  } catch {
    return null;
  }
}

/** A stored public key with a revocation certificate applied; openpgp.js checks that the key itself made it. */
export async function applyRevocationCertificate(publicKey: Buffer, certificate: Buffer | string, now = new Date()): Promise<ParsedPgpKey> {
  const key = await openpgp.readKey({ binaryKey: bytes(publicKey) });
  const armored = openpgp.armor(openpgp.enums.armor.signature, await packetBytes(certificate));
  let revoked: Key;
  try {
    // A public method of openpgp.js' Key, missing from its typings.
    const apply = (key as unknown as { applyRevocationCertificate(c: string, d: Date): Promise<Key> }).applyRevocationCertificate.bind(key);
    revoked = withKeySemantics(await apply(armored, now));
  } catch (err) {
    throw new PgpKeyError(`the revocation certificate does not apply to ${key.getFingerprint().toUpperCase()}: ${(err as Error).message.replace(/^Error: /, '')}`);
  }
  return { info: await describe(revoked, now), publicKey: Buffer.from(revoked.toPublic().write()) };
}

export async function armorPublicKey(publicKey: Buffer): Promise<string> {
  const key = await openpgp.readKey({ binaryKey: bytes(publicKey) });
  return key.toPublic().armor();
}

/** The only way a secret key leaves the store: armored and passphrase-protected. */
export async function exportSecretKey(secretKey: Buffer, passphrase: string): Promise<string> {
  if (!passphrase) throw new PgpKeyError('refusing to export a secret key without a passphrase');
  const key = await openpgp.readPrivateKey({ binaryKey: bytes(secretKey) });
  const locked = await openpgp.encryptKey({ privateKey: key, passphrase, config: key.keyPacket.version === 6 ? V6 : V4 });
  return locked.armor();
}

/** Several public keys in one armored block (what `{send_keys}` attaches as a .asc file). */
export async function armorPublicKeys(publicKeys: readonly Buffer[]): Promise<string> {
  if (!publicKeys.length) throw new PgpKeyError('no OpenPGP key to export');
  const binary = Buffer.concat(publicKeys);
  const keys = await openpgp.readKeys({ binaryKeys: bytes(binary) });
  // With the CRC-24 line: gpg 2.2 misreads an armored block of several keys without it (openpgp
  // 6 leaves it out by default, as RFC 9580 allows; key.armor() adds it for v4 keys).
  return openpgp.armor(openpgp.enums.armor.publicKey, bytes(Buffer.concat(keys.map((k) => k.toPublic().write()))), undefined, undefined, undefined, true);
}
