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
 * - A cipher Postern does not decrypt (IDEA, Camellia, an unknown id, a legacy cipher the key does
 *   not advertise) is said to be 'unsupported', not damage: for RSA from a consistent session-key
 *   block only (pgp-rsa.ts: no oracle), for ECDH from the unwrapped key (AES key wrap is
 *   authenticated, so only whoever encrypted it can choose that octet).
 */
import * as openpgp from 'openpgp';
import { DECOMPRESSED_FACTOR, LimitExceededError, sizeText } from '../core/limits.js';
import { rsaSessionKeys } from './pgp-rsa.js';
import { bytes, enumName, type PgpDecryptionKey } from './prepared.js';
import { IN_CONFIG, unsupportedSignatures, verdicts, verificationInstances, type PgpSignatureReport, type VerifyContext } from './pgp-verify.js';

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
/** openpgp.js' words for a well-formed session key of a cipher it does not decrypt. */
const UNSUPPORTED_CIPHER: [RegExp, string][] = [
  [/Unsupported cipher/i, 'IDEA'],
  [/Invalid enum value/i, 'a cipher unknown to Postern (Camellia or another)'],
  [/non-preferred symmetric algorithm/i, 'a legacy cipher the key does not advertise (Blowfish or Twofish)'],
];
/** Key id 0 in a PKESK: the recipient is hidden (gpg --throw-keyids); any of our keys may be it. */
export const WILDCARD_KEY_ID = '0000000000000000';

/**
 * Compressed data is inflated to at most this many bytes unless the caller says otherwise (the
 * worker passes worker.max_decompressed_size): DECOMPRESSED_FACTOR × the default message size.
 */
export const DEFAULT_MAX_DECOMPRESSED = DECOMPRESSED_FACTOR * 50 * 1024 * 1024;

/**
 * openpgp.js inflates a Compressed Data packet while it parses it — when the message is read
 * (signed-only) or decrypted (inside SEIPD) — as a stream that its `maxDecompressedMessageSize`
 * cuts off once that many bytes came out, so a bomb never exists in memory past the limit. These
 * are its words when it does; the packet grammar it enforces allows no compressed packet inside
 * another, so one limit per message bounds the whole of it.
 */
const TOO_BIG = /Maximum decompressed message size exceeded/i;

function limitHit(err: unknown, max: number): LimitExceededError | null {
  const m = err instanceof Error ? err.message : String(err);
  return TOO_BIG.test(m) ? new LimitExceededError('decompressed_size', max, `OpenPGP compressed data inflates to more than ${sizeText(max)} (worker.max_decompressed_size): a decompression bomb, not opened`) : null;
}

/** The bytes each message was read from (decryption consumes a message, and a retry needs a new one), and its inflation limit. */
const sources = new WeakMap<object, { data: Buffer | string; maxDecompressed: number }>();

const configFor = (maxDecompressed: number) => ({ ...openpgp.config, ...IN_CONFIG, maxDecompressedMessageSize: maxDecompressed });

export async function readPgpMessage(data: Buffer | string, maxDecompressed = DEFAULT_MAX_DECOMPRESSED): Promise<openpgp.Message<Uint8Array>> {
  try {
    const config = configFor(maxDecompressed);
    const m = typeof data === 'string' ? ((await openpgp.readMessage({ armoredMessage: data, config })) as openpgp.Message<Uint8Array>) : await openpgp.readMessage({ binaryMessage: bytes(data), config });
    sources.set(m, { data, maxDecompressed });
    return m;
  } catch (err) {
    throw limitHit(err, maxDecompressed) ?? new PgpDecryptError(`the OpenPGP message is not readable: ${(err as Error).message.replace(/^Error: /, '')}`, 'malformed');
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
  const source = sources.get(message);
  const maxDecompressed = source?.maxDecompressed ?? DEFAULT_MAX_DECOMPRESSED;
  const config = configFor(maxDecompressed);
  let sessionKeys: openpgp.DecryptedSessionKey[] = [];
  let used: PgpDecryptionKey | undefined;
  let decrypted: openpgp.Message<Uint8Array> | undefined;
  // Each key in turn, session key and data together: with constant-time PKCS#1 a wrong RSA key
  // "succeeds" with a random session key, and only the data's integrity check tells.
  // Reading the session key and the data both consume packets of the message: every attempt
  // but the only one works on a fresh copy, read from the bytes as they came.
  // The first attempt on the message itself, every later one on a copy read again from its bytes
  // (decryption consumes the packets and the buffers they came from).
  let attempts = 0;
  const fresh = async () => (attempts++ === 0 ? message : source !== undefined ? readPgpMessage(source.data, maxDecompressed) : message);
  const unsupported = new Set<string>();
  for (const k of usable) {
    // RSA: Node's RSA with our implicit-rejection unpadding (pgp-rsa.ts), milliseconds instead of
    // openpgp.js' constant-time big-number path; every candidate fails alike when it is wrong.
    const fast = rsaSessionKeys(message, k, WILDCARD_KEY_ID);
    if (fast) {
      for (const u of fast.unsupported) unsupported.add(u);
      // All candidates in one call: openpgp.js tries each against the data's integrity check.
      try {
        decrypted = await (await fresh()).decrypt(undefined, undefined, fast.candidates as openpgp.SessionKey[], now, config);
        sessionKeys = fast.candidates;
        used = k;
        break;
      } catch (err) {
        // The right key, and data that inflates past the limit: no other key will do better.
        const limit = limitHit(err, maxDecompressed);
        if (limit) throw limit;
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
    } catch (err) {
      const limit = limitHit(err, maxDecompressed);
      if (limit) throw limit;
      // the next key; a failure is reported below exactly as a modified message is, unless the
      // session key itself named a cipher we do not decrypt
      const m = err instanceof Error ? err.message : '';
      const u = UNSUPPORTED_CIPHER.find(([re]) => re.test(m));
      if (u) unsupported.add(u[1]);
    }
  }
  if ((!used || !decrypted) && unsupported.size) {
    throw new PgpDecryptError(`the message is encrypted with ${[...unsupported].join(', ')}, which Postern does not decrypt (unsupported algorithm, not damage)`, 'unsupported');
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
      const instances = await verificationInstances(vkeys);
      const results = await decrypted.verify(instances, verify.now ?? now, { ...openpgp.config, ...IN_CONFIG });
      signatures = await verdicts(results, vkeys, verify, 'whole', instances);
    }
    signatures.push(...unsupportedSignatures(decrypted.unwrapCompressed().packets, 'whole'));
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
  const instances = await verificationInstances(keys);
  const results = await message.verify(instances, verify.now, { ...openpgp.config, ...IN_CONFIG });
  const signatures = await verdicts(results, keys, verify, 'whole', instances);
  return { data, signatures: [...signatures, ...unsupportedSignatures(message.unwrapCompressed().packets, 'whole')] };
}
