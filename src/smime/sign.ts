/**
 * CMS SignedData for S/MIME (RFC 5652 §5, RFC 8551 §2.5): detached, for multipart/signed, or with
 * the content inside (opaque application/pkcs7-mime). The content is the canonical MIME entity
 * exactly as it will be sent (CRLF line ends, transfer-encoded); it is hashed as given, never
 * re-encoded, or the signature would not survive. Output is DER. The constant parts come
 * pre-encoded from the SmimeSigner; per message we encode the signing time, the digest and,
 * if asked, other capabilities, then make one private-key operation.
 */
import { createHash } from 'node:crypto';
import { encodeCapabilities, type Capabilities } from './capabilities.js';
import { SmimeError } from './errors.js';
import { attribute, type SmimeSigner } from './signer.js';
import { encodeTime, flat, oid, OID, seq, setOf, smallInt, tlv, TAG, type Der } from './sig-der.js';

export interface SignOptions {
  /** Default: now. */
  signingTime?: Date;
  /** Default: AES-256-GCM, AES-128-GCM, AES-256-CBC, AES-128-CBC, RSA-OAEP, RSA PKCS#1. */
  capabilities?: Capabilities;
}

const capsCache = new WeakMap<Capabilities, Buffer>();
const SIGNED_DATA_OID = oid(OID.signedData);
const DATA_OID = oid(OID.data);

function build(signer: SmimeSigner, content: Buffer, opts: SignOptions, opaque: boolean): Buffer {
  try {
    return assemble(signer, content, opts, opaque);
  } catch (err) {
    throw signingError(err);
  }
}

function assemble(signer: SmimeSigner, content: Buffer, opts: SignOptions, opaque: boolean): Buffer {
  if (!Buffer.isBuffer(content)) throw new SmimeError('content to sign must be a Buffer', 'no-content');
  const p = signer.parts;
  const signerInfo = signerInfoDer(signer, createHash(p.nodeHash).update(content).digest(), opts);
  const encap: Der = opaque ? seq(DATA_OID, tlv(TAG.CTX0, tlv(TAG.OCTET_STRING, content))) : seq(DATA_OID);
  const signedData = seq(smallInt(1), p.digestAlgorithms, encap, p.certificates, tlv(TAG.SET, signerInfo));
  return flat(seq(SIGNED_DATA_OID, tlv(TAG.CTX0, signedData)));
}

/**
 * The SignerInfo for content whose digest (with the signer's hash, `signer.parts.nodeHash`) is
 * `digest`: the signed attributes and one private-key operation. Shared with sign-stream.ts,
 * which computes the digest while the content streams past.
 */
export function signerInfoDer(signer: SmimeSigner, digest: Buffer, opts: SignOptions): Der {
  const p = signer.parts;
  const time = opts.signingTime ?? new Date();
  if (Number.isNaN(time.getTime())) throw new SmimeError('invalid signing time', 'malformed');

  let capsAttr = p.defaultCapabilitiesAttr;
  if (opts.capabilities) {
    capsAttr = capsCache.get(opts.capabilities) ?? attribute(OID.smimeCapabilities, encodeCapabilities(opts.capabilities));
    capsCache.set(opts.capabilities, capsAttr);
  }
  const attrs = [
    p.contentTypeAttr,
    attribute(OID.signingTime, encodeTime(time)),
    attribute(OID.messageDigest, flat(tlv(TAG.OCTET_STRING, digest))),
    capsAttr,
    p.encryptionKeyPreferenceAttr,
  ];
  // The signature covers the attributes as an explicit SET OF (RFC 5652 §5.4); the SignerInfo
  // carries the same bytes under [0] IMPLICIT.
  const signedSet = flat(setOf(attrs));
  const signature = p.sign(signedSet);
  const implicitAttrs = Buffer.from(signedSet);
  implicitAttrs[0] = TAG.CTX0;
  return seq(p.signerInfoHead, implicitAttrs, p.signatureAlgorithm, tlv(TAG.OCTET_STRING, signature));
}

/** Wrap a signing failure of the crypto library as the SmimeError callers expect. */
export function signingError(err: unknown): SmimeError {
  if (err instanceof SmimeError) return err;
  return new SmimeError(`signing failed: ${(err as Error).message}`, 'bad-key', { cause: err });
}

/** DER ContentInfo(SignedData) without eContent: the application/pkcs7-signature part. */
export async function signDetached(signer: SmimeSigner, content: Buffer, opts: SignOptions = {}): Promise<Buffer> {
  return build(signer, content, opts, false);
}

/** DER ContentInfo(SignedData) with the content inside: the body of application/pkcs7-mime; smime-type=signed-data. */
export async function signOpaque(signer: SmimeSigner, content: Buffer, opts: SignOptions = {}): Promise<Buffer> {
  return build(signer, content, opts, true);
}
