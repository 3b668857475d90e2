/**
 * Verifying S/MIME signatures (RFC 5652 §5.6, RFC 8551 §3.5, RFC 8550): one SignerResult per
 * SignerInfo, stating the signer, its chain's trust and its binding to the From: header. Input is
 * untrusted mail: a structure that is not CMS is SmimeError('malformed'); a well-formed signature
 * that fails any check is a result with a status and one sentence of reason, never an exception.
 * Statuses, worst first: 'invalid' (bad signature or digest, weak or unsupported algorithm, a
 * certificate that may not sign mail or is not valid at the signing time), 'untrusted' (good, but
 * no path to an anchor), 'mismatch' (trusted, but bound to neither a From: address nor, with
 * messageDate, the Date: header), 'valid'.
 */
import { constants, createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import { EKU_ANY, EKU_EMAIL_PROTECTION, type CertInfo } from '../pki/index.js';
import { bindSigner } from '../mime/index.js';
import { decodeCapabilities, type Capabilities } from './capabilities.js';
import { buildPath, validityProblem, type TrustStore } from './chain.js';
import { SmimeError } from './errors.js';
import { keyFits, resolveSigAlg, verifySignature } from './sig-algs.js';
import { certMatchesSid, loadCertCached, type CertEntry } from './sig-cert.js';
import { DIGEST_BY_OID, digestLabel, OID, WEAK_DIGESTS } from './sig-der.js';
import { readTlv } from './sig-ber.js';
import { issuerAndSerial, parseSignedData, type ParsedAttribute, type ParsedSignedData, type ParsedSignerInfo } from './sig-parse.js';

export type SignatureStatus = 'valid' | 'invalid' | 'untrusted' | 'mismatch';

/** Machine-readable cause of a status other than 'valid'. */
export type SignatureProblem =
  | 'no-certificate' | 'unsupported-algorithm' | 'weak-algorithm' | 'bad-attributes' | 'digest-mismatch'
  | 'bad-signature' | 'key-usage' | 'not-valid-at-signing-time' | 'revoked' | 'no-chain' | 'from-mismatch' | 'date-mismatch'
  | 'check-failed';

/**
 * Revocation seam (CRL/OCSP come later): called for a trusted path, signer first, anchor last.
 * Resolve `{ revoked: true }` to make the signature invalid; undefined means "not checked".
 */
export type RevocationCheck = (path: readonly CertInfo[], at: Date) => Promise<{ revoked: boolean; reason?: string } | undefined>;

export interface VerifyOptions {
  trust: TrustStore;
  /**
   * The address(es) a signer may be bound to. The openers pass the one From: address of a message
   * (mime/addresses.ts fromBinding); with fromProblem set no signature is 'valid' (several From:
   * fields or addresses, a differing Sender:), whichever address matches.
   */
  fromAddresses: string[];
  fromProblem?: string;
  now?: Date;
  /** Default false: SHA-1 and MD5 digests and signatures are invalid. */
  allowSha1?: boolean;
  /**
   * The Date: header. As Thunderbird does: when the signature has a signing time that differs
   * from it by more than an hour (or the header is unreadable: an Invalid Date), the signature does
   * not belong to this message as shown: 'mismatch'.
   */
  messageDate?: Date;
  revocation?: RevocationCheck;
}

export type EncryptionKeyPreference = { issuer: string; serial: string } | { subjectKeyId: string };

export interface SignerResult {
  status: SignatureStatus;
  /** One sentence when not valid. */
  reason?: string;
  problem?: SignatureProblem;
  /** The signer's address that matched From:, else its first. */
  address?: string;
  emails: string[];
  subject: string;
  fingerprint: string;
  certDer?: Buffer;
  /** Certificates from the message that built the (possibly partial) chain, for auto-import. */
  chainDer: Buffer[];
  signingTime?: Date;
  /** 'SHA-256' … */
  digest: string;
  capabilities?: Capabilities;
  encryptionKeyPreference?: EncryptionKeyPreference;
}

const DATE_TOLERANCE_MS = 60 * 60 * 1000;

class Failed extends Error {
  constructor(readonly status: SignatureStatus, readonly problem: SignatureProblem, reason: string) {
    super(reason);
  }
}
const invalid = (problem: SignatureProblem, reason: string): never => {
  throw new Failed('invalid', problem, reason);
};

function single(attrs: ParsedAttribute[], type: string, name: string): asn1js.AsnType | undefined {
  const found = attrs.filter((a) => a.type === type);
  if (!found.length) return undefined;
  if (found.length > 1 || found[0]!.values.length !== 1) invalid('bad-attributes', `the ${name} attribute must occur once with one value (RFC 5652 §11)`);
  return found[0]!.values[0];
}

function readTime(v: asn1js.AsnType): Date | undefined {
  if (v instanceof asn1js.UTCTime || v instanceof asn1js.GeneralizedTime) {
    const d = v.toDate();
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  return undefined;
}

function readPreference(v: asn1js.AsnType | undefined): EncryptionKeyPreference | undefined {
  if (!v || v.idBlock.tagClass !== 3) return undefined;
  try {
    const bytes = Buffer.from((v as asn1js.BaseBlock).valueBeforeDecodeView);
    const t = readTlv(bytes, 0);
    if (t.tag === 0 && t.constructed) {
      const { issuer, serial } = issuerAndSerial(bytes, t, 'the encryption key preference');
      return { issuer, serial };
    }
    if (t.tag === 2 && !t.constructed) return { subjectKeyId: bytes.subarray(t.contentStart, t.contentEnd).toString('hex') };
  } catch {
    // A malformed preference is ignored: it only steers which certificate we encrypt to.
  }
  return undefined;
}

async function evaluate(si: ParsedSignerInfo, sd: ParsedSignedData, content: Buffer, msgCerts: CertEntry[], opts: VerifyOptions): Promise<SignerResult> {
  const digestNode = DIGEST_BY_OID[si.digestOid];
  const result: SignerResult = { status: 'invalid', emails: [], subject: '', fingerprint: '', chainDer: [], digest: digestNode ? digestLabel(digestNode) : si.digestOid };
  try {
    const storeCerts = [...opts.trust.entries.anchors, ...opts.trust.entries.intermediates];
    const cert = msgCerts.find((c) => certMatchesSid(c, si.sid)) ?? storeCerts.find((c) => certMatchesSid(c, si.sid));
    if (!cert) {
      const who = 'subjectKeyId' in si.sid ? `subject key identifier ${si.sid.subjectKeyId}` : `serial ${si.sid.serial} from ${si.sid.issuer}`;
      invalid('no-certificate', `the signer's certificate (${who}) is neither in the message nor in the trust store`);
    }
    const info = cert!.info;
    Object.assign(result, { emails: [...info.emails], subject: info.subject, fingerprint: info.fingerprint, certDer: info.der });
    if (!digestNode) invalid('unsupported-algorithm', `digest algorithm ${si.digestOid} is not supported`);

    let signedData = content;
    if (si.signedAttrs) {
      const attrs = si.signedAttrs.attrs;
      const ct = single(attrs, OID.contentType, 'contentType');
      const md = single(attrs, OID.messageDigest, 'messageDigest');
      const st = single(attrs, OID.signingTime, 'signingTime');
      if (!(ct instanceof asn1js.ObjectIdentifier) || !(md instanceof asn1js.OctetString)) invalid('bad-attributes', 'the signed attributes lack contentType or messageDigest (RFC 5652 §5.3)');
      if ((ct as asn1js.ObjectIdentifier).valueBlock.toString() !== sd.eContentType) invalid('bad-attributes', 'the contentType attribute does not match the signed content type');
      if (st) {
        const t = readTime(st);
        if (!t) invalid('bad-attributes', 'the signingTime attribute is not a valid time');
        result.signingTime = t;
      }
      const caps = single(attrs, OID.smimeCapabilities, 'SMIMECapabilities');
      if (caps) {
        try {
          result.capabilities = decodeCapabilities(caps);
        } catch {
          // Unreadable capabilities only cost the peer its preferences; the signature stands.
        }
      }
      const pref = readPreference(single(attrs, OID.encryptionKeyPreference, 'SMIMEEncryptionKeyPreference'));
      if (pref) result.encryptionKeyPreference = pref;
      const expected = createHash(digestNode!).update(content).digest();
      if (!expected.equals(Buffer.from((md as asn1js.OctetString).valueBlock.valueHexView))) {
        invalid('digest-mismatch', 'the content does not match the signed message digest: it was changed after signing');
      }
      signedData = si.signedAttrs.der;
    } else if (sd.eContentType !== OID.data) {
      invalid('bad-attributes', 'a signature without signed attributes over content that is not id-data (RFC 5652 §5.3)');
    }

    const alg = resolveSigAlg(si.sigOid, si.sigParams, digestNode);
    if (typeof alg === 'string') invalid('unsupported-algorithm', alg as string);
    let sigAlg = alg as Exclude<typeof alg, string>;
    if (!cert!.key) invalid('unsupported-algorithm', `the signer's public key (${info.key.algorithm}) cannot be used`);
    if (sigAlg.kind === 'rsa' && cert!.key!.asymmetricKeyType === 'rsa-pss') {
      // OpenSSL 3.0 labels signatures by RSASSA-PSS keys as rsaEncryption. Such a key can only make
      // PSS signatures, so reading the label as PSS (salt length from the signature) weakens nothing.
      sigAlg = { kind: 'rsa-pss', hash: sigAlg.hash, saltLength: constants.RSA_PSS_SALTLEN_AUTO };
    }
    if (!keyFits(cert!.key!, sigAlg)) invalid('bad-signature', `a ${sigAlg.kind} signature cannot come from the certificate's ${info.key.algorithm} key`);
    // Without signed attributes the signature covers the content itself (signedData = content).
    if (!verifySignature(cert!.key!, sigAlg, signedData, si.signature)) invalid('bad-signature', 'the signature does not verify with the signer\'s certificate');
    if (!opts.allowSha1) {
      const weak = [digestNode!, sigAlg.hash].find((h) => h && WEAK_DIGESTS.has(h));
      if (weak) invalid('weak-algorithm', `signed with ${digestLabel(weak)}, which is no longer accepted`);
    }

    const ku = info.keyUsage;
    if (ku && !ku.includes('digitalSignature') && !ku.includes('nonRepudiation')) invalid('key-usage', `the signer's certificate may not sign (key usage: ${ku.join(', ') || 'empty'})`);
    const eku = info.extKeyUsage;
    if (eku && !eku.includes(EKU_EMAIL_PROTECTION) && !eku.includes(EKU_ANY)) invalid('key-usage', 'the signer\'s certificate is not for e-mail (extended key usage without emailProtection)');
    const at = result.signingTime ?? opts.now ?? new Date();
    const validity = validityProblem(info, at);
    if (validity) invalid('not-valid-at-signing-time', `${validity}, and the message was signed ${result.signingTime ? `on ${at.toISOString()}` : 'without a signing time (judged now)'}`);

    const path = buildPath(cert!, msgCerts, opts.trust, at, opts.allowSha1 === true);
    const storeFps = new Set(storeCerts.map((c) => c.info.fingerprint));
    result.chainDer = path.path.slice(1).filter((c) => !storeFps.has(c.info.fingerprint) && msgCerts.includes(c)).map((c) => c.der);
    if (!path.trusted) throw new Failed('untrusted', 'no-chain', `no chain to a trusted CA: ${path.reason ?? 'unknown issuer'}`);
    if (opts.revocation) {
      const r = await opts.revocation(path.path.map((c) => c.info), at);
      if (r?.revoked) invalid('revoked', r.reason ?? 'a certificate of the chain is revoked');
    }

    const bound = bindSigner(info.emails, { addresses: opts.fromAddresses, ...(opts.fromProblem ? { problem: opts.fromProblem } : {}) });
    result.address = bound.address;
    if (bound.mismatch) throw new Failed('mismatch', 'from-mismatch', bound.mismatch);
    if (opts.messageDate && result.signingTime) {
      const d = opts.messageDate.getTime();
      if (Number.isNaN(d)) throw new Failed('mismatch', 'date-mismatch', 'the Date: header cannot be read, so the signing time cannot be checked against it');
      if (Math.abs(d - result.signingTime.getTime()) > DATE_TOLERANCE_MS) {
        throw new Failed('mismatch', 'date-mismatch', `the signing time (${result.signingTime.toISOString()}) differs from the Date: header (${opts.messageDate.toISOString()}) by more than an hour`);
      }
    }
    result.status = 'valid';
    return result;
  } catch (err) {
    if (!(err instanceof Failed)) {
      return { ...result, status: 'invalid', problem: 'check-failed', reason: `the signature could not be checked (${(err as Error).message})` };
    }
    return { ...result, status: err.status, problem: err.problem, reason: err.message };
  }
}

function messageCerts(sd: ParsedSignedData): CertEntry[] {
  const out: CertEntry[] = [];
  for (const der of sd.certificates) {
    try {
      out.push(loadCertCached(der));
    } catch {
      // A certificate we cannot read cannot be the signer's or on its path; the others still count.
    }
  }
  return out;
}

async function verifyParsed(sd: ParsedSignedData, content: Buffer, opts: VerifyOptions): Promise<SignerResult[]> {
  if (!sd.signerInfos.length) throw new SmimeError('SignedData without any SignerInfo: a certificate bundle, not a signature', 'malformed');
  const certs = messageCerts(sd);
  const out: SignerResult[] = [];
  for (const si of sd.signerInfos) out.push(await evaluate(si, sd, content, certs, opts));
  return out;
}

function checkOptions(opts: VerifyOptions): void {
  if (!opts?.trust?.entries) throw new SmimeError('verify needs a TrustStore from prepareTrustStore()', 'malformed');
}

/** A detached signature (application/pkcs7-signature) over `content`: the exact signed entity bytes. */
export async function verifyDetached(signatureDer: Buffer, content: Buffer, opts: VerifyOptions): Promise<{ signers: SignerResult[] }> {
  checkOptions(opts);
  if (!Buffer.isBuffer(content)) throw new SmimeError('detached signature without the signed content', 'no-content');
  const sd = parseSignedData(signatureDer);
  return { signers: await verifyParsed(sd, content, opts) };
}

/** An opaque signature (application/pkcs7-mime; smime-type=signed-data): its content and signers. */
export async function verifyOpaque(der: Buffer, opts: VerifyOptions): Promise<{ content: Buffer; signers: SignerResult[] }> {
  checkOptions(opts);
  const sd = parseSignedData(der);
  if (!sd.eContent) throw new SmimeError('a detached signature: the signed content is not inside (use verifyDetached)', 'no-content');
  return { content: sd.eContent, signers: await verifyParsed(sd, sd.eContent, opts) };
}
