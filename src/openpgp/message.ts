/**
 * PGP/MIME at the level of a whole message (RFC 3156), outbound: sign the body entity
 * (multipart/signed, application/pgp-signature) and encrypt it (multipart/encrypted), keeping the
 * outer header readable. Signed and encrypted is the combined method of RFC 3156 §6.2: one
 * OpenPGP message holding the signature and the entity, which is what Thunderbird, Enigmail and
 * gpg-based clients send and read. Inline PGP for plain-text mail is inline.ts; inbound is open.ts.
 *
 * The signed entity is put into its canonical form once (mime/entity canonicalEntity: CRLF,
 * 7-bit transfer encodings) and hashed exactly as it is written into the message.
 */
import * as openpgp from 'openpgp';
import { canonicalEntity, joinMessage, multipartSigned, newBoundary, splitMessage, toCrlf, type SignatureSpec } from '../mime/index.js';
import { PgpError } from './pgp-errors.js';
import { bytes, enumName, type PgpRecipient, type PgpSigner } from './prepared.js';

/** No compression (CRIME-like length leaks, decompression bombs at the peer); SHA-256 where the key allows. */
export const OUT_CONFIG = {
  preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed,
  preferredHashAlgorithm: openpgp.enums.hash.sha256,
  preferredSymmetricAlgorithm: openpgp.enums.symmetric.aes256,
} as const;

/** The armored text with CRLF line ends and without the final line break (the MIME writer adds one). */
export function crlfArmor(armored: string): string {
  return toCrlf(Buffer.from(armored.replace(/\s+$/, ''), 'latin1')).toString('latin1');
}

/** Is this exactly what its UTF-8 decoding re-encodes to (so a text-mode signature hashes these bytes)? */
function isUtf8(buf: Buffer): boolean {
  return Buffer.from(buf.toString('utf8'), 'utf8').equals(buf);
}

export interface PgpSignOptions {
  /** The signature's creation time (default now). */
  date?: Date;
  /** The entity to sign instead of the message's body entity: a payload with protected header fields (mime protectHeaders). */
  payload?: Buffer;
}

/** The outer header and the entity a signature or an encryption covers: the given payload, else the body entity. */
function parts(message: Buffer, payload: Buffer | undefined): { outer: Buffer; entity: Buffer } {
  const split = splitMessage(toCrlf(message));
  return payload ? { outer: split.outer, entity: toCrlf(payload) } : split;
}

/** How the signature part of a PGP/MIME multipart/signed is labelled (RFC 3156 5), micalg aside. */
export const PGP_SIGNATURE: Omit<SignatureSpec, 'micalg'> = { protocol: 'application/pgp-signature', filename: 'signature.asc', description: 'OpenPGP digital signature' };

export interface PgpSigned {
  armored: string;
  /** RFC 3156 micalg: "pgp-" and the hash actually used, lower-case. */
  micalg: string;
}

/** A detached, armored signature over `content` exactly (RFC 3156 §5). */
export async function signDetached(content: Buffer, signer: PgpSigner, opts: PgpSignOptions = {}): Promise<PgpSigned> {
  // A text-mode signature (type 0x01) as RFC 3156 §5 suggests; with CRLF already in place it hashes
  // exactly these bytes. Content that is not UTF-8 (an 8-bit header in another charset) gets a
  // binary signature instead, which hashes the same bytes without openpgp.js re-encoding them.
  const message = isUtf8(content)
    ? await openpgp.createMessage({ text: content.toString('utf8') })
    : await openpgp.createMessage({ binary: bytes(content) });
  let signature: openpgp.Signature;
  try {
    signature = (await openpgp.sign({ message, signingKeys: signer.key, detached: true, format: 'object', config: OUT_CONFIG, ...(opts.date ? { date: opts.date } : {}) })) as unknown as openpgp.Signature;
  } catch (err) {
    throw new PgpError(`OpenPGP signing with ${signer.fingerprint} failed: ${(err as Error).message.replace(/^Error: /, '')}`, 'sign-failed', { cause: err });
  }
  // openpgp 6 leaves the CRC-24 out; v4 peers such as gpg 2.2 and old Enigmail like it there.
  const armored = openpgp.armor(openpgp.enums.armor.signature, signature.write(), undefined, undefined, undefined, true);
  return { armored: crlfArmor(armored), micalg: micalgOf(signature) };
}

/** RFC 3156 micalg of a signature: "pgp-" and the hash openpgp.js chose for the key, lower-case (known before the data is hashed). */
export function micalgOf(signature: openpgp.Signature): string {
  const packet = signature.packets[0] as openpgp.SignaturePacket | undefined;
  const hash = packet ? enumName(openpgp.enums.hash, packet.hashAlgorithm) : 'sha256';
  return `pgp-${String(hash).toLowerCase()}`;
}

/** The message with its body entity signed (RFC 3156 §5 multipart/signed); the outer header unchanged. */
export async function pgpSignMessage(message: Buffer, signer: PgpSigner, opts: PgpSignOptions = {}): Promise<Buffer> {
  const { outer, entity } = parts(message, opts.payload);
  const canonical = canonicalEntity(entity);
  const { armored, micalg } = await signDetached(canonical, signer, opts);
  return joinMessage(
    outer,
    multipartSigned(canonical, { ...PGP_SIGNATURE, armored, micalg }),
  );
}

export interface PgpEncryptOptions {
  signer?: PgpSigner;
  date?: Date;
  /** As PgpSignOptions.payload (pgpEncryptMessage only). */
  payload?: Buffer;
}

export interface PgpEncrypted {
  armored: string;
  /** 'seipdv1' (MDC, what gpg 2.2 reads) or 'seipdv2' (AEAD) — chosen from the recipients' keys. */
  packet: 'seipdv1' | 'seipdv2';
  cipher: string;
}

/**
 * The session key for one message to all of `recipients`: SEIPDv2 (AEAD, OCB) only when every
 * recipient reads it, otherwise none (SEIPDv1 with MDC for all, what gpg 2.2 reads).
 */
export async function sessionKeyFor(recipients: readonly PgpRecipient[], date?: Date): Promise<openpgp.SessionKey> {
  const aead = recipients.every((r) => r.aead);
  const sessionKey = await openpgp.generateSessionKey({ encryptionKeys: recipients.map((r) => r.key), config: OUT_CONFIG, ...(date ? { date } : {}) });
  // openpgp.js decides from the features subpacket alone; a v6 key without it still gets AEAD.
  if (aead && !sessionKey.aeadAlgorithm) sessionKey.aeadAlgorithm = 'ocb';
  if (!aead) delete sessionKey.aeadAlgorithm;
  return sessionKey;
}

/**
 * One OpenPGP message for every recipient, signed inside when a signer is given. SEIPDv2 (AEAD)
 * only when every recipient reads it; otherwise SEIPDv1 with MDC for all.
 */
export async function encryptData(data: Buffer | string, recipients: PgpRecipient[], opts: PgpEncryptOptions = {}): Promise<PgpEncrypted> {
  if (!recipients.length) throw new PgpError('no OpenPGP recipient to encrypt to', 'no-recipient');
  const keys = recipients.map((r) => r.key);
  const aead = recipients.every((r) => r.aead);
  try {
    const sessionKey = await sessionKeyFor(recipients, opts.date);
    const message = typeof data === 'string' ? await openpgp.createMessage({ text: data }) : await openpgp.createMessage({ binary: bytes(data) });
    const encrypted = await openpgp.encrypt({
      message,
      encryptionKeys: keys,
      sessionKey,
      ...(opts.signer ? { signingKeys: opts.signer.key } : {}),
      format: 'binary',
      config: OUT_CONFIG,
      ...(opts.date ? { date: opts.date } : {}),
    });
    const armored = openpgp.armor(openpgp.enums.armor.message, encrypted, undefined, undefined, undefined, !aead);
    return { armored: crlfArmor(armored), packet: aead ? 'seipdv2' : 'seipdv1', cipher: `${sessionKey.algorithm}${aead ? `-${sessionKey.aeadAlgorithm}` : ''}` };
  } catch (err) {
    throw new PgpError(`OpenPGP encryption failed: ${(err as Error).message.replace(/^Error: /, '')}`, 'encrypt-failed', { cause: err });
  }
}

/** RFC 3156 §4 multipart/encrypted around an armored OpenPGP message, as an entity. */
export function multipartEncrypted(armored: string): Buffer {
  const boundary = newBoundary(Buffer.from(armored, 'latin1'));
  return Buffer.from(multipartEncryptedHead(boundary) + armored + multipartEncryptedTail(boundary), 'latin1');
}

/** What comes before the armored message in multipartEncrypted() (message-stream.ts writes the same bytes). */
export function multipartEncryptedHead(boundary: string): string {
  return (
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n boundary="${boundary}"\r\n\r\n` +
    'This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n' +
    `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n` +
    `--${boundary}\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\nContent-Description: OpenPGP encrypted message\r\nContent-Disposition: inline; filename="encrypted.asc"\r\n\r\n`
  );
}

/** What follows the armored message (without its final line break) in multipartEncrypted(). */
export function multipartEncryptedTail(boundary: string): string {
  return `\r\n--${boundary}--\r\n`;
}

/** The message with its body entity encrypted (and signed inside, RFC 3156 §6.2) for every recipient. */
export async function pgpEncryptMessage(message: Buffer, recipients: PgpRecipient[], opts: PgpEncryptOptions = {}): Promise<Buffer> {
  const { outer, entity } = parts(message, opts.payload);
  // Canonical: a signature inside covers these bytes, and the decrypted entity may travel on over 7-bit hops.
  const { armored } = await encryptData(canonicalEntity(entity), recipients, opts);
  return joinMessage(outer, multipartEncrypted(armored));
}
