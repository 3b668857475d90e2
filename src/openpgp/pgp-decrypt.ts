/**
 * Decrypting one OpenPGP message (armored or binary) with our keys, and verifying the signatures
 * inside it. The rules:
 * - No integrity protection, no decryption: a Symmetrically Encrypted Data packet (RFC 2440 style,
 *   `gpg --rfc2440`, no MDC) is refused before any key is used — EFAIL's malleability gadgets need
 *   exactly that. openpgp.js refuses it too by default (allowUnauthenticatedMessages stays false).
 * - RSA PKCS#1 v1.5 session keys are decrypted in constant time with a random key on bad padding
 *   (openpgp.js' constantTimePKCS1Decryption): a wrong key, a bad padding and a modified message
 *   all end as the same integrity failure, so the result header is not a padding oracle (Marvin).
 * - The data is released only after the MDC or AEAD tags checked (non-streamed input).
 */
import * as openpgp from 'openpgp';
import { rsaSessionKeys } from './pgp-rsa.js';
import { bytes, enumName, type PgpDecryptionKey } from './prepared.js';
import { IN_CONFIG, verdicts, type PgpSignatureReport, type VerifyContext } from './pgp-verify.js';

export class PgpDecryptError extends Error {
  constructor(message: string, readonly code: 'malformed' | 'no-integrity' | 'no-recipient' | 'decrypt-failed' | 'unsupported') {
    super(message);
    this.name = 'PgpDecryptError';
  }
}

export interface PgpDecrypted {
  data: Buffer;
  cipher: string;
  packet: 'seipdv1' | 'seipdv2' | 'aead-v5';
  /** The fingerprint of our key that decrypted it. */
  key: string;
  signatures: PgpSignatureReport[];
}

const hex = (k: openpgp.KeyID) => k.toHex().toUpperCase();
/** Key id 0 in a PKESK: the recipient is hidden (gpg --throw-keyids); any of our keys may be it. */
export const WILDCARD_KEY_ID = '0000000000000000';

/** The bytes each message was read from: decryption consumes a message, and a retry needs a new one. */
const sources = new WeakMap<object, Buffer | string>();

export async function readPgpMessage(data: Buffer | string): Promise<openpgp.Message<Uint8Array>> {
  try {
    const m = typeof data === 'string' ? ((await openpgp.readMessage({ armoredMessage: data })) as openpgp.Message<Uint8Array>) : await openpgp.readMessage({ binaryMessage: bytes(data) });
    sources.set(m, data);
    return m;
  } catch (err) {
    throw new PgpDecryptError(`the OpenPGP message is not readable: ${(err as Error).message.replace(/^Error: /, '')}`, 'malformed');
  }
}

export function encryptionKeyIds(message: openpgp.Message<Uint8Array>): string[] {
  return [...new Set(message.getEncryptionKeyIDs().map(hex))];
}

export async function decryptPgp(message: openpgp.Message<Uint8Array>, keysFor: (ids: string[]) => Promise<PgpDecryptionKey[]>, verify: VerifyContext | null, now?: Date): Promise<PgpDecrypted> {
  const P = openpgp.enums.packet;
  if (message.packets.filterByTag(P.symmetricallyEncryptedData).length) {
    throw new PgpDecryptError('the message has no integrity protection (a Symmetrically Encrypted Data packet without MDC, as gpg --rfc2440 writes): refused, never decrypted', 'no-integrity');
  }
  const seipd = message.packets.filterByTag(P.symEncryptedIntegrityProtectedData)[0] as openpgp.SymEncryptedIntegrityProtectedDataPacket | undefined;
  const aeadV5 = message.packets.filterByTag(P.aeadEncryptedData)[0];
  if (!seipd && !aeadV5) throw new PgpDecryptError('the OpenPGP message holds no encrypted data', 'malformed');
  const ids = encryptionKeyIds(message);
  if (!ids.length) {
    // openpgp.js drops session-key packets of algorithms it does not know (post-quantum ones, say).
    throw message.packets.filterByTag(P.symEncryptedSessionKey).length
      ? new PgpDecryptError('the message is encrypted with a password only, not to a key', 'no-recipient')
      : new PgpDecryptError('the message names no recipient key Postern can read (an unknown or post-quantum algorithm)', 'unsupported');
  }
  const keys = await keysFor(ids);
  const usable = keys.filter((k) => ids.includes(WILDCARD_KEY_ID) || k.keyIds.some((id) => ids.includes(id)));
  if (!usable.length) throw new PgpDecryptError(`the message is not encrypted to any key of ours (it names ${ids.map((i) => `0x${i}`).join(', ')})`, 'no-recipient');
  const packet = seipd ? ((seipd as unknown as { version: number }).version === 2 ? 'seipdv2' : 'seipdv1') : 'aead-v5';
  const config = { ...openpgp.config, ...IN_CONFIG };
  let sessionKeys: openpgp.DecryptedSessionKey[] = [];
  let used: PgpDecryptionKey | undefined;
  let decrypted: openpgp.Message<Uint8Array> | undefined;
  // Each key in turn, session key and data together: with constant-time PKCS#1 a wrong RSA key
  // "succeeds" with a random session key, and only the data's integrity check tells.
  // Reading the session key and the data both consume packets of the message: every attempt
  // but the only one works on a fresh copy, read from the bytes as they came.
  // The first attempt on the message itself, every later one on a copy read again from its bytes
  // (decryption consumes the packets and the buffers they came from).
  const source = sources.get(message);
  let attempts = 0;
  const fresh = async () => (attempts++ === 0 ? message : source !== undefined ? readPgpMessage(source) : message);
  for (const k of usable) {
    // RSA: Node's RSA with our implicit-rejection unpadding (pgp-rsa.ts), milliseconds instead of
    // openpgp.js' constant-time big-number path; every candidate fails alike when it is wrong.
    const fast = rsaSessionKeys(message, k, WILDCARD_KEY_ID);
    if (fast) {
      // All candidates in one call: openpgp.js tries each against the data's integrity check.
      try {
        decrypted = await (await fresh()).decrypt(undefined, undefined, fast as openpgp.SessionKey[], now, config);
        sessionKeys = fast;
        used = k;
        break;
      } catch {
        continue;
      }
    }
    try {
      const m = await fresh();
      sessionKeys = await openpgp.decryptSessionKeys({ message: m, decryptionKeys: k.key, config, ...(now ? { date: now } : {}) });
      if (!sessionKeys.length) continue;
      decrypted = await m.decrypt(undefined, undefined, sessionKeys as openpgp.SessionKey[], now, config);
      used = k;
      break;
    } catch {
      // the next key; a failure is reported below exactly as a modified message is
    }
  }
  if (!used || !decrypted) {
    throw new PgpDecryptError('the encrypted data could not be decrypted with our key: it was modified, damaged, or not made for this key (integrity check failed)', 'decrypt-failed');
  }
  // SEIPDv2 names its cipher in the packet (the v6 PKESK does not carry it).
  const seipdCipher = (seipd as unknown as { cipherAlgorithm?: number } | undefined)?.cipherAlgorithm;
  const algorithm = sessionKeys[0]?.algorithm ?? (seipdCipher ? enumName(openpgp.enums.symmetric, seipdCipher) : 'unknown');
  const aeadAlgo = seipd && packet === 'seipdv2' ? enumName(openpgp.enums.aead, (seipd as unknown as { aeadAlgorithm: number }).aeadAlgorithm) : undefined;
  let data: Buffer;
  try {
    const literal = decrypted.getLiteralData();
    if (!(literal instanceof Uint8Array)) throw new Error('streamed literal data');
    data = Buffer.from(literal);
  } catch {
    throw new PgpDecryptError('the decrypted OpenPGP message holds no readable literal data', 'malformed');
  }
  let signatures: PgpSignatureReport[] = [];
  if (verify) {
    const sigIds = decrypted.getSigningKeyIDs().map(hex);
    if (sigIds.length) {
      const vkeys = await verify.keysFor(sigIds);
      const results = await decrypted.verify(vkeys.map((k) => k.key), verify.now ?? now, { ...openpgp.config, ...IN_CONFIG });
      signatures = await verdicts(results, vkeys, verify, 'whole');
    }
  }
  return { data, cipher: `${algorithm}${aeadAlgo ? `-${String(aeadAlgo)}` : ''}`, packet, key: used.fingerprint, signatures };
}

/** Is this an OpenPGP message that is signed but not encrypted (gpg --sign --armor)? */
export function isSignedOnly(message: openpgp.Message<Uint8Array>): boolean {
  const P = openpgp.enums.packet;
  return !message.packets.filterByTag(P.symmetricallyEncryptedData, P.symEncryptedIntegrityProtectedData, P.aeadEncryptedData, P.publicKeyEncryptedSessionKey).length
    && message.packets.filterByTag(P.literalData, P.compressedData).length > 0;
}

/** The literal data of a signed-only message and its signatures' verdicts (the opaque form of a signature). */
export async function verifySignedPgp(message: openpgp.Message<Uint8Array>, verify: VerifyContext): Promise<{ data: Buffer; signatures: PgpSignatureReport[] }> {
  let data: Buffer;
  try {
    const literal = message.getLiteralData();
    if (!(literal instanceof Uint8Array)) throw new Error('streamed literal data');
    data = Buffer.from(literal);
  } catch {
    throw new PgpDecryptError('the signed OpenPGP message holds no readable literal data', 'malformed');
  }
  const ids = message.getSigningKeyIDs().map(hex);
  const keys = ids.length ? await verify.keysFor(ids) : [];
  const results = await message.verify(keys.map((k) => k.key), verify.now, { ...openpgp.config, ...IN_CONFIG });
  return { data, signatures: await verdicts(results, keys, verify, 'whole') };
}
