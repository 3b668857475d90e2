/**
 * S/MIME encryption: one CMS object for all recipients (RFC 5652 EnvelopedData, or RFC 5083
 * AuthEnvelopedData for AES-GCM), content key sent per recipient by RSA key transport (PKCS#1 v1.5
 * by default, because that is what Outlook, Thunderbird and gpgsm read; RSAES-OAEP on request or
 * when the certificate demands it) or by ephemeral-static ECDH (RFC 5753) with AES key wrap.
 * All primitives are Node's synchronous crypto on material prepared once (recipient-keys.ts): this
 * runs for every outgoing message, and pkijs' WebCrypto path costs milliseconds per call.
 */
import { constants, publicEncrypt, randomBytes } from 'node:crypto';
import { SmimeError } from './errors.js';
import { authEnvelopedDataDer } from './auth-enveloped.js';
import { CONTENT_CIPHERS, encryptContent, isGcm, keyLength, type ContentCipher } from './env-content.js';
import { encryptedContentInfoDer, envelopedDataDer } from './env-enveloped.js';
import { agreeAndWrap } from './env-kari.js';
import { kariDer, ktriDer, oaepAlgId, PKCS1_ALG } from './env-recipient-info.js';
import { materialOfRecipient, type SmimeRecipient } from './recipient-keys.js';
import { encryptOaep, type OaepParams } from '../pki/index.js';

export type { ContentCipher } from './env-content.js';

export interface EncryptOptions {
  /** Default aes-256-cbc; the *-gcm ciphers produce AuthEnvelopedData (RFC 5083/5084). */
  cipher?: ContentCipher;
  /**
   * Default pkcs1. 'oaep' = RSAES-OAEP with SHA-256 and MGF1-SHA-256 (RFC 4055/8017). A recipient
   * whose certificate key is id-RSAES-OAEP always gets OAEP, with the certificate's parameters.
   */
  rsaPadding?: 'pkcs1' | 'oaep';
}

const OAEP_SHA256: OaepParams = Object.freeze({ hash: 'sha256', mgfHash: 'sha256', label: Buffer.alloc(0) }) as OaepParams;

/** One RecipientInfo for the content key; `v0` says whether it is a version-0 structure (ktri). Shared with encrypt-stream.ts. */
export function recipientInfo(r: SmimeRecipient, cek: Buffer, opts: EncryptOptions): { der: Buffer; v0: boolean } {
  const m = materialOfRecipient(r);
  if (m.rsa) {
    const oaep = m.rsa.oaep ?? (opts.rsaPadding === 'oaep' ? OAEP_SHA256 : undefined);
    if (oaep) return { der: ktriDer(m.issuerAndSerial, oaepAlgId(oaep), encryptOaep(m.rsa.publicKey, m.rsa.k, cek, oaep)), v0: true };
    const ek = publicEncrypt({ key: m.rsa.publicKey, padding: constants.RSA_PKCS1_PADDING }, cek);
    return { der: ktriDer(m.issuerAndSerial, PKCS1_ALG, ek), v0: true };
  }
  const ec = m.ec!;
  const a = agreeAndWrap(ec.curve, ec.point, cek);
  return { der: kariDer(a.ephemeralPoint, a.kdfOid, a.wrapOid, m.issuerAndSerial, a.wrappedKey), v0: false };
}

/** The synchronous core of encrypt(); the worker may call it directly. */
/** The options checked and the recipients de-duplicated, as both encrypt paths need them. */
export function checkEncryptOptions(recipients: readonly SmimeRecipient[], opts: EncryptOptions): { cipher: ContentCipher; unique: SmimeRecipient[] } {
  const cipher = opts.cipher ?? 'aes-256-cbc';
  if (!CONTENT_CIPHERS.includes(cipher)) throw new SmimeError(`unknown content cipher ${String(cipher)}`, 'unsupported');
  if (opts.rsaPadding !== undefined && opts.rsaPadding !== 'pkcs1' && opts.rsaPadding !== 'oaep') {
    throw new SmimeError(`unknown RSA padding ${String(opts.rsaPadding)}`, 'unsupported');
  }
  const unique = [...new Map(recipients.map((r) => [r.fingerprint, r])).values()];
  if (unique.length === 0) throw new SmimeError('encryption needs at least one recipient certificate', 'no-recipient');
  return { cipher, unique };
}

export function encryptSync(content: Buffer, recipients: readonly SmimeRecipient[], opts: EncryptOptions = {}): Buffer {
  const { cipher, unique } = checkEncryptOptions(recipients, opts);

  const cek = randomBytes(keyLength(cipher));
  try {
    const infos = unique.map((r) => recipientInfo(r, cek, opts));
    const enc = encryptContent(cipher, cek, content);
    const eci = encryptedContentInfoDer(enc.algorithm, enc.ciphertext);
    const ders = infos.map((i) => i.der);
    return isGcm(cipher) ? authEnvelopedDataDer(ders, eci, enc.tag!) : envelopedDataDer(ders, infos.every((i) => i.v0), eci);
  } finally {
    cek.fill(0);
  }
}

/** Encrypt `content` (the MIME entity, CRLF) to every recipient; DER ContentInfo. */
export async function encrypt(content: Buffer, recipients: SmimeRecipient[], opts?: EncryptOptions): Promise<Buffer> {
  try {
    return encryptSync(content, recipients, opts);
  } catch (err) {
    if (err instanceof SmimeError) throw err;
    throw new SmimeError('encryption failed inside the crypto library', 'bad-key', { cause: err });
  }
}
