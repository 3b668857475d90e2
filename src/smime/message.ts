/**
 * S/MIME at the level of a whole message (RFC 8551 section 3): outbound, sign the body entity
 * (multipart/signed or opaque) and encrypt it (application/pkcs7-mime), keeping the outer header
 * readable; the CMS work is sign.ts / encrypt.ts. Inbound is open.ts.
 *
 * The signed entity is put into its canonical form once (CRLF, 7-bit transfer encodings) and
 * hashed exactly as it is written into the message: nothing re-encodes it afterwards.
 */
import { canonicalEntity, joinMessage, multipartSigned, pkcs7MimeMessage, splitMessage, toCrlf } from '../mime/index.js';
import { encrypt, type EncryptOptions } from './encrypt.js';
import type { SmimeRecipient } from './recipient-keys.js';
import { signDetached, signOpaque } from './sign.js';
import type { SmimeSigner } from './signer.js';

export interface SignMessageOptions {
  /** 'detached' (multipart/signed, readable without S/MIME; the default) or 'opaque'. */
  form?: 'detached' | 'opaque';
  signingTime?: Date;
  /** The entity to sign instead of the message's body entity: a payload with protected header fields (mime protectHeaders). */
  payload?: Buffer;
}

/** The outer header and the entity a signature or an encryption covers: the given payload, else the body entity. */
function parts(message: Buffer, payload: Buffer | undefined): { outer: Buffer; entity: Buffer } {
  const split = splitMessage(toCrlf(message));
  return payload ? { outer: split.outer, entity: toCrlf(payload) } : split;
}

/** The message with its body signed by `signer`; the outer header fields unchanged. */
export async function signMessage(message: Buffer, signer: SmimeSigner, opts: SignMessageOptions = {}): Promise<Buffer> {
  const { outer, entity } = parts(message, opts.payload);
  const canonical = canonicalEntity(entity);
  const signOpts = opts.signingTime ? { signingTime: opts.signingTime } : {};
  if (opts.form === 'opaque') return pkcs7MimeMessage(outer, await signOpaque(signer, canonical, signOpts), 'signed-data');
  const der = await signDetached(signer, canonical, signOpts);
  return joinMessage(
    outer,
    multipartSigned(canonical, { der, protocol: 'application/pkcs7-signature', micalg: signer.micalg, filename: 'smime.p7s', description: 'S/MIME Cryptographic Signature' }),
  );
}

/** The message with its body encrypted to every recipient in one CMS object. */
export async function encryptMessage(message: Buffer, recipients: SmimeRecipient[], opts: EncryptOptions & { payload?: Buffer } = {}): Promise<Buffer> {
  const { outer, entity } = parts(message, opts.payload);
  const der = await encrypt(entity, recipients, opts);
  const authenticated = (opts.cipher ?? 'aes-256-cbc').endsWith('-gcm');
  return pkcs7MimeMessage(outer, der, authenticated ? 'authEnveloped-data' : 'enveloped-data');
}
