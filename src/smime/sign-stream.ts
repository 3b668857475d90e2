/**
 * S/MIME signing of an entity that streams (the worker's large-message path), in the two forms
 * of message.ts signMessage():
 *  - detached: the multipart/signed entity — the canonical entity passes through unchanged while
 *    its digest is computed over exactly those bytes (RFC 8551 3.1.1, 3.5), and the signature
 *    part follows once the digest is known. The natural streaming form.
 *  - opaque: the application/pkcs7-mime; smime-type=signed-data entity — SignedData in BER with
 *    indefinite lengths, the content as a constructed OCTET STRING of chunks, and the SignerInfo
 *    (which comes after the content in SignedData) once the digest is known; base64 lines.
 * The SignerInfo is signerInfoDer() of sign.ts: the same attributes and key operation as the
 * Buffer path. The caller gives the canonical entity (crlfChunks, checked by canonicalScan).
 */
import { randomUUID, createHash } from 'node:crypto';
import { base64LineChunks, multipartSignedHead, multipartSignedTail, pkcs7Head, type SignatureSpec } from '../mime/index.js';
import { flat, oid, OID, smallInt, tlv, TAG } from './sig-der.js';
import { signerInfoDer, signingError, type SignOptions } from './sign.js';
import type { SmimeSigner } from './signer.js';

const EOC = Buffer.from([0x00, 0x00]);
const SEGMENT = 64 * 1024;
const open = (tag: number): Buffer => Buffer.from([tag, 0x80]);

export interface StreamSignOptions extends SignOptions {
  /** 'detached' (multipart/signed; the default) or 'opaque'. */
  form?: 'detached' | 'opaque';
  /**
   * The multipart/signed boundary. It must not occur in the entity: the caller picks it with
   * signingBoundary() and checks the content for it before streaming (canonicalScan's needles).
   */
  boundary?: string;
}

/** A boundary for multipart/signed (as newBoundary() of the Buffer path, without seeing the content). */
export function signingBoundary(): string {
  return `=_postern_${randomUUID().replace(/-/g, '')}`;
}

const SIGNATURE: Omit<SignatureSpec, 'micalg'> = { protocol: 'application/pkcs7-signature', filename: 'smime.p7s', description: 'S/MIME Cryptographic Signature' };

/** The signed entity for the canonical `entity`, as chunks (see the module header for the forms). */
export async function* signedEntityChunks(entity: AsyncIterable<Buffer>, signer: SmimeSigner, opts: StreamSignOptions = {}): AsyncGenerator<Buffer> {
  if (opts.form === 'opaque') {
    yield Buffer.from(pkcs7Head('signed-data'), 'latin1');
    yield* base64LineChunks(opaqueSignedData(entity, signer, opts));
    return;
  }
  const boundary = opts.boundary ?? signingBoundary();
  const spec: SignatureSpec = { ...SIGNATURE, micalg: signer.micalg };
  yield Buffer.from(multipartSignedHead(boundary, spec));
  const hash = createHash(signer.parts.nodeHash);
  for await (const chunk of entity) {
    hash.update(chunk);
    yield chunk;
  }
  yield Buffer.from(multipartSignedTail(boundary, spec, detachedSignedData(signer, hash.digest(), opts)));
}

/** DER ContentInfo(SignedData) without eContent, from the content's digest. */
function detachedSignedData(signer: SmimeSigner, digest: Buffer, opts: SignOptions): Buffer {
  try {
    const p = signer.parts;
    const signerInfo = signerInfoDer(signer, digest, opts);
    const signedData = tlv(TAG.SEQUENCE, smallInt(1), p.digestAlgorithms, tlv(TAG.SEQUENCE, oid(OID.data)), p.certificates, tlv(TAG.SET, signerInfo));
    return flat(tlv(TAG.SEQUENCE, oid(OID.signedData), tlv(TAG.CTX0, signedData)));
  } catch (err) {
    throw signingError(err);
  }
}

/** BER ContentInfo(SignedData) with the content inside in chunks, then certificates and SignerInfo. */
async function* opaqueSignedData(entity: AsyncIterable<Buffer>, signer: SmimeSigner, opts: SignOptions): AsyncGenerator<Buffer> {
  const p = signer.parts;
  // ContentInfo, [0], SignedData, version, digestAlgorithms, EncapsulatedContentInfo, id-data, [0], OCTET STRING (constructed)
  yield Buffer.concat([open(0x30), oid(OID.signedData), open(0xa0), open(0x30), smallInt(1), p.digestAlgorithms, open(0x30), oid(OID.data), open(0xa0), open(0x24)]);
  const hash = createHash(p.nodeHash);
  let pending: Buffer[] = [];
  let size = 0;
  for await (const chunk of entity) {
    hash.update(chunk);
    pending.push(chunk);
    size += chunk.length;
    if (size >= SEGMENT) {
      yield flat(tlv(TAG.OCTET_STRING, Buffer.concat(pending, size)));
      pending = [];
      size = 0;
    }
  }
  const tail: Buffer[] = [];
  if (size) tail.push(flat(tlv(TAG.OCTET_STRING, Buffer.concat(pending, size))));
  tail.push(EOC, EOC, EOC); // OCTET STRING, [0], EncapsulatedContentInfo
  let signerInfo: Buffer;
  try {
    signerInfo = flat(tlv(TAG.SET, signerInfoDer(signer, hash.digest(), opts)));
  } catch (err) {
    throw signingError(err);
  }
  tail.push(p.certificates, signerInfo, EOC, EOC, EOC); // SignedData, [0], ContentInfo
  yield Buffer.concat(tail);
}

