/**
 * A signing identity, prepared once: the private key as a Node KeyObject, the parsed certificate
 * and chain, and every constant piece of a SignedData already DER-encoded (certificates, algorithm
 * identifiers, IssuerAndSerialNumber, the contentType and encryption-key-preference attributes).
 * The worker caches a SmimeSigner per certificate fingerprint, so a signature costs one hash and one
 * private-key operation (sign.ts). Refuses, as SmimeError('bad-key'), a key that is not the
 * certificate's, a certificate whose key usage forbids signing, and keys S/MIME 4.0 cannot use.
 * Secrets: the KeyObject; it is never exported again and never appears in an error.
 */
import { constants, createPrivateKey, createPublicKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import { EKU_ANY, EKU_EMAIL_PROTECTION, keyMatchesCertificate, type CertInfo } from '../pki/index.js';
import { defaultCapabilitiesDer } from './capabilities.js';
import { SmimeError } from './errors.js';
import { loadCert } from './sig-cert.js';
import { algId, flat, oid, OID, seq, setOf, smallInt, tlv, DIGEST_OID, TAG } from './sig-der.js';

export type SignHash = 'SHA-256' | 'SHA-384' | 'SHA-512';

export interface SignerOptions {
  /** Default: SHA-256, or SHA-384 for P-384 and SHA-512 for P-521 keys (the curve's strength). */
  hash?: SignHash;
  /** RSASSA-PSS instead of PKCS#1 v1.5 for an RSA key (always PSS for an RSASSA-PSS key). */
  rsaPss?: boolean;
  /**
   * The certificate peers should encrypt to, when it is not the signing one (separate signing and
   * encryption certificates); named in SMIMEEncryptionKeyPreference. Default: the signer's.
   */
  encryptionCertDer?: Buffer;
}

/** The pre-encoded parts sign.ts assembles; internal to smime/. */
export interface SignerParts {
  /** Node hash name ('sha256'). */
  nodeHash: string;
  /** SET OF DigestAlgorithmIdentifier with our one digest algorithm. */
  digestAlgorithms: Buffer;
  /** [0] IMPLICIT CertificateSet: signer certificate and chain. */
  certificates: Buffer;
  /** SignerInfo's version, sid and digestAlgorithm, encoded back to back. */
  signerInfoHead: Buffer;
  signatureAlgorithm: Buffer;
  /** Complete Attribute encodings that are the same in every signature. */
  contentTypeAttr: Buffer;
  encryptionKeyPreferenceAttr: Buffer;
  defaultCapabilitiesAttr: Buffer;
  /** Sign the DER of the signed attributes (hash + private-key operation in one call). */
  sign(data: Buffer): Buffer;
}

export interface SmimeSigner {
  /** SHA-256 of the signer certificate's DER, lower-case hex. */
  readonly fingerprint: string;
  /** The multipart/signed micalg parameter (RFC 8551 §3.5.3.2): 'sha-256' … */
  readonly micalg: string;
  readonly hash: SignHash;
  readonly algorithm: 'rsa' | 'rsa-pss' | 'ecdsa' | 'ed25519';
  readonly cert: CertInfo;
  /** The chain as given (signer certificate removed), parsed. */
  readonly chain: readonly CertInfo[];
  /** @internal */
  readonly parts: SignerParts;
}

const HASH_NODE: Record<SignHash, string> = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };
const HASH_LEN: Record<string, number> = { sha256: 32, sha384: 48, sha512: 64 };
const ECDSA_OID: Record<string, string> = { sha256: OID.ecdsaSha256, sha384: OID.ecdsaSha384, sha512: OID.ecdsaSha512 };
const NODE_HASH_NAME: Record<string, SignHash> = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };

const badKey = (msg: string, cause?: unknown) => new SmimeError(msg, 'bad-key', cause ? { cause } : undefined);

/** Attribute ::= SEQUENCE { attrType OID, attrValues SET OF value } with one value. */
export const attribute = (type: string, value: Buffer): Buffer => flat(seq(oid(type), tlv(TAG.SET, value)));

/** IssuerAndSerialNumber from the certificate's own encodings (so it matches byte for byte). */
const issuerAndSerial = (issuerDer: Buffer, serialTlv: Buffer): Buffer => flat(seq(issuerDer, serialTlv));

export function prepareSigner(certDer: Buffer, pkcs8: Buffer, chainDer: Buffer[], opts: SignerOptions = {}): SmimeSigner {
  const cert = (() => {
    try {
      return loadCert(certDer, 'the signer certificate');
    } catch (err) {
      throw badKey((err as Error).message, err);
    }
  })();
  const info = cert.info;

  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw badKey('the private key is not an unencrypted PKCS#8 key', err);
  }
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!keyMatchesCertificate({ pkcs8, spki, key: info.key }, info)) throw badKey(`the private key does not belong to the certificate ${info.subject}`);

  const ku = info.keyUsage;
  if (ku && !ku.includes('digitalSignature') && !ku.includes('nonRepudiation')) {
    throw badKey(`the certificate's key usage (${ku.join(', ') || 'empty'}) does not allow signing (digitalSignature or nonRepudiation)`);
  }
  const eku = info.extKeyUsage;
  if (eku && !eku.includes(EKU_EMAIL_PROTECTION) && !eku.includes(EKU_ANY)) {
    throw badKey('the certificate\'s extended key usage does not include emailProtection: peers would reject its signatures');
  }

  // Hash and signature algorithm from the key type; sizes as in pki's import rules.
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  let nodeHash: string;
  let algorithm: SmimeSigner['algorithm'];
  let signatureAlgorithm: Buffer;
  let sign: (data: Buffer) => Buffer;
  if (type === 'rsa' || type === 'rsa-pss') {
    if ((details.modulusLength ?? 0) < 2048) throw badKey(`RSA key of ${details.modulusLength ?? 'unknown'} bits is too weak: at least 2048 bits are required`);
    const keyHash = details.hashAlgorithm?.replace('-', '').toLowerCase();
    nodeHash = keyHash && type === 'rsa-pss' ? keyHash : HASH_NODE[opts.hash ?? 'SHA-256'];
    if (opts.hash && HASH_NODE[opts.hash] !== nodeHash) throw badKey(`the RSASSA-PSS key is restricted to ${keyHash}`);
    if (!HASH_LEN[nodeHash]) throw badKey(`the RSASSA-PSS key is restricted to an unsupported hash (${nodeHash})`);
    if (type === 'rsa-pss' || opts.rsaPss) {
      const salt = Math.max(HASH_LEN[nodeHash]!, details.saltLength ?? 0);
      const hashId = algId(DIGEST_OID[nodeHash]!);
      signatureAlgorithm = algId(OID.rsaPss, seq(tlv(TAG.CTX0, hashId), tlv(TAG.CTX1, algId(OID.mgf1, hashId)), tlv(TAG.CTX2, smallInt(salt))));
      algorithm = 'rsa-pss';
      const h = nodeHash;
      sign = (data) => nodeSign(h, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: salt });
    } else {
      // rsaEncryption, as OpenSSL, NSS and Outlook write it; RFC 5754 §3.2 allows either form.
      signatureAlgorithm = algId(OID.rsaEncryption, 'null');
      algorithm = 'rsa';
      const h = nodeHash;
      sign = (data) => nodeSign(h, data, { key, padding: constants.RSA_PKCS1_PADDING });
    }
  } else if (type === 'ec') {
    const curve = details.namedCurve;
    const byCurve: Record<string, string> = { prime256v1: 'sha256', secp384r1: 'sha384', secp521r1: 'sha512' };
    const curveHash = byCurve[curve ?? ''];
    if (!curveHash) throw badKey(`EC key on curve ${curve ?? 'unknown'} is not supported: only P-256, P-384 and P-521`);
    nodeHash = opts.hash ? HASH_NODE[opts.hash] : curveHash;
    signatureAlgorithm = algId(ECDSA_OID[nodeHash]!);
    algorithm = 'ecdsa';
    const h = nodeHash;
    sign = (data) => nodeSign(h, data, key);
  } else if (type === 'ed25519') {
    // RFC 8419: pure Ed25519 over the signed attributes; the message digest is SHA-512.
    if (opts.hash && opts.hash !== 'SHA-512') throw badKey('Ed25519 signatures use SHA-512 for the message digest (RFC 8419)');
    nodeHash = 'sha512';
    signatureAlgorithm = algId(OID.ed25519);
    algorithm = 'ed25519';
    sign = (data) => nodeSign(null, data, key);
  } else {
    throw badKey(`${type ?? 'unknown'} keys cannot sign S/MIME: use RSA, ECDSA P-256/P-384/P-521 or Ed25519`);
  }

  const chain = chainDer
    .map((d, i) => {
      try {
        return loadCert(d, `chain certificate ${i + 1}`);
      } catch (err) {
        throw badKey((err as Error).message, err);
      }
    })
    .filter((c) => c.info.fingerprint !== info.fingerprint);
  const seen = new Set<string>();
  const certs = [cert, ...chain].filter((c) => !seen.has(c.info.fingerprint) && seen.add(c.info.fingerprint));

  let prefCert = cert;
  if (opts.encryptionCertDer) {
    try {
      prefCert = loadCert(opts.encryptionCertDer, 'the encryption certificate');
    } catch (err) {
      throw badKey((err as Error).message, err);
    }
  }
  const digestAlg = algId(DIGEST_OID[nodeHash]!);
  const parts: SignerParts = {
    nodeHash,
    digestAlgorithms: flat(setOf([digestAlg])),
    certificates: flat(setOf(certs.map((c) => c.der), TAG.CTX0)),
    signerInfoHead: Buffer.concat([smallInt(1), issuerAndSerial(cert.issuerDer, cert.serialTlv), digestAlg]),
    signatureAlgorithm,
    contentTypeAttr: attribute(OID.contentType, oid(OID.data)),
    // SMIMEEncryptionKeyPreference ::= CHOICE { issuerAndSerialNumber [0] IMPLICIT … } (RFC 8551 §2.5.3)
    encryptionKeyPreferenceAttr: attribute(OID.encryptionKeyPreference, flat(tlv(TAG.CTX0, prefCert.issuerDer, prefCert.serialTlv))),
    defaultCapabilitiesAttr: attribute(OID.smimeCapabilities, defaultCapabilitiesDer()),
    sign,
  };
  const hash = NODE_HASH_NAME[nodeHash]!;
  return Object.freeze({
    fingerprint: info.fingerprint,
    micalg: hash.toLowerCase(),
    hash,
    algorithm,
    cert: info,
    chain: Object.freeze(chain.map((c) => c.info)),
    parts,
  });
}
