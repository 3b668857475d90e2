/**
 * Reading a ContentInfo(SignedData) from untrusted mail into plain values (RFC 5652 §5). BER is
 * accepted (NSS and Outlook write indefinite lengths and chunked OCTET STRINGs); anything that is
 * not the structure it claims to be is SmimeError('malformed'), never an asn1js exception. The
 * structure is walked with sig-ber's position reader (certificates stay raw bytes); only the
 * signed attributes' values and algorithm parameters are decoded by asn1js. The signed attributes
 * keep their exact received bytes: the signature covers them, so they are never re-encoded.
 */
import * as asn1js from 'asn1js';
import { SmimeError } from './errors.js';
import { content, isCtx, isUniv, kidsOf, octetsOf, oidText, readTlv, slice, type Tlv } from './sig-ber.js';
import { OID } from './sig-der.js';

export type SignerId = { issuerDer: Buffer; issuer: string; serial: string } | { subjectKeyId: string };

export interface ParsedAttribute {
  type: string;
  values: asn1js.AsnType[];
  /** The values' encodings. */
  raw: Buffer[];
}

export interface ParsedSignerInfo {
  sid: SignerId;
  digestOid: string;
  /** The signed attributes re-tagged as SET OF (the bytes the signature covers), and decoded. */
  signedAttrs?: { der: Buffer; attrs: ParsedAttribute[] };
  sigOid: string;
  sigParams: asn1js.AsnType | undefined;
  signature: Buffer;
}

export interface ParsedSignedData {
  eContentType: string;
  /** Absent in a detached signature. */
  eContent?: Buffer;
  certificates: Buffer[];
  signerInfos: ParsedSignerInfo[];
}

const bad = (why: string): never => {
  throw new SmimeError(`malformed CMS signature: ${why}`, 'malformed');
};

/** Decode one small element with asn1js (it must span the bytes exactly). */
export function decodeSmall(bytes: Buffer, what: string): asn1js.AsnType {
  const r = asn1js.fromBER(bytes);
  if (r.offset !== bytes.length || r.result.error) bad(`${what} cannot be decoded`);
  return r.result;
}

function algorithm(buf: Buffer, t: Tlv | undefined, what: string): { oid: string; params: asn1js.AsnType | undefined } {
  if (!isUniv(t, 16)) return bad(`${what} is not an AlgorithmIdentifier`);
  const [o, params] = kidsOf(buf, t);
  return { oid: oidText(buf, o, what), params: params ? decodeSmall(slice(buf, params), `${what} parameters`) : undefined };
}

const ATTR_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU', '2.5.4.5': 'serialNumber',
  '0.9.2342.19200300.100.1.25': 'DC', '1.2.840.113549.1.9.1': 'emailAddress',
};

/** A readable Name for reasons ("CN=Mail CA,O=Example"); matching uses the bytes. */
export function nameText(buf: Buffer, name: Tlv): string {
  try {
    return kidsOf(buf, name)
      .reverse()
      .map((rdn) =>
        kidsOf(buf, rdn)
          .map((atv) => {
            const [t, v] = kidsOf(buf, atv);
            const type = oidText(buf, t, 'attribute type');
            const text = v && !v.constructed ? content(buf, v).toString(v.tag === 30 ? 'utf16le' : 'utf8') : '#';
            return `${ATTR_NAMES[type] ?? type}=${text}`;
          })
          .join('+'),
      )
      .join(',');
  } catch {
    return '(unreadable name)';
  }
}

/** Serial INTEGER content as lower-case hex without leading zeros (CertInfo.serial's form). */
export const serialHex = (b: Buffer): string => b.toString('hex').replace(/^0+(?=.)/, '') || '0';

/** IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER }, given its contents' holder. */
export function issuerAndSerial(buf: Buffer, t: Tlv, what: string): { issuerDer: Buffer; issuer: string; serial: string } {
  const [issuer, serial] = kidsOf(buf, t);
  if (!isUniv(issuer, 16) || !isUniv(serial, 2)) return bad(`${what} is not an IssuerAndSerialNumber`);
  return { issuerDer: Buffer.from(slice(buf, issuer)), issuer: nameText(buf, issuer), serial: serialHex(content(buf, serial)) };
}

function signerInfo(buf: Buffer, n: Tlv): ParsedSignerInfo {
  if (!isUniv(n, 16)) return bad('a SignerInfo is not a SEQUENCE');
  const f = kidsOf(buf, n);
  let i = 0;
  if (!isUniv(f[i++], 2)) bad('SignerInfo version missing');
  const sidNode = f[i++];
  let sid: SignerId;
  if (isUniv(sidNode, 16)) sid = issuerAndSerial(buf, sidNode, 'the signer identifier');
  else if (isCtx(sidNode, 0) && !(sidNode as Tlv).constructed) sid = { subjectKeyId: content(buf, sidNode as Tlv).toString('hex') };
  else return bad('unknown signer identifier');
  const digest = algorithm(buf, f[i++], 'the digest algorithm');
  let signedAttrs: ParsedSignerInfo['signedAttrs'];
  const sa = f[i];
  if (isCtx(sa, 0)) {
    i++;
    const der = Buffer.from(slice(buf, sa));
    der[0] = 0x31; // [0] IMPLICIT → SET OF: what the signer signed (RFC 5652 §5.4)
    const attrs = kidsOf(buf, sa).map((a) => {
      const [t, vals] = kidsOf(buf, a);
      if (!isUniv(a, 16) || !isUniv(vals, 17)) return bad('a signed attribute is not an Attribute');
      const raw = kidsOf(buf, vals).map((v) => Buffer.from(slice(buf, v)));
      return { type: oidText(buf, t, 'an attribute type'), values: raw.map((r) => decodeSmall(r, 'an attribute value')), raw };
    });
    signedAttrs = { der, attrs };
  }
  const sig = algorithm(buf, f[i++], 'the signature algorithm');
  const signature = Buffer.from(octetsOf(buf, f[i++], 'the signature'));
  if (f[i] && !isCtx(f[i], 1)) bad('unexpected field after the signature');
  return { sid, digestOid: digest.oid, ...(signedAttrs ? { signedAttrs } : {}), sigOid: sig.oid, sigParams: sig.params, signature };
}

export function parseSignedData(der: Buffer): ParsedSignedData {
  if (!Buffer.isBuffer(der) || der.length === 0) return bad('empty input');
  try {
    return parse(der);
  } catch (err) {
    if (err instanceof SmimeError) throw err;
    throw new SmimeError(`malformed CMS signature: ${(err as Error).message}`, 'malformed', { cause: err });
  }
}

function parse(buf: Buffer): ParsedSignedData {
  const root = readTlv(buf, 0);
  if (root.end !== buf.length && buf.subarray(root.end).some((b) => b !== 0)) bad(`${buf.length - root.end} bytes of trailing data`);
  if (!isUniv(root, 16)) bad('not a ContentInfo');
  const [ct, wrapped] = kidsOf(buf, root);
  const contentType = oidText(buf, ct, 'the content type');
  if (contentType !== OID.signedData) {
    throw new SmimeError(`not a signature: the CMS content type is ${contentType}, not SignedData`, contentType.startsWith('1.2.840.113549.1.') ? 'unsupported' : 'malformed');
  }
  if (!isCtx(wrapped, 0)) return bad('ContentInfo without [0] content');
  const sd = kidsOf(buf, wrapped)[0];
  if (!isUniv(sd, 16)) return bad('SignedData is not a SEQUENCE');
  const f = kidsOf(buf, sd);
  let i = 0;
  if (!isUniv(f[i++], 2)) bad('SignedData version missing');
  if (!isUniv(f[i++], 17)) bad('digestAlgorithms is not a SET');
  const encap = f[i++];
  if (!isUniv(encap, 16)) return bad('encapContentInfo is not a SEQUENCE');
  const [eType, eWrapped] = kidsOf(buf, encap);
  const eContentType = oidText(buf, eType, 'the encapsulated content type');
  let eContent: Buffer | undefined;
  if (eWrapped) {
    if (!isCtx(eWrapped, 0)) bad('eContent is not [0] EXPLICIT');
    eContent = Buffer.from(octetsOf(buf, kidsOf(buf, eWrapped)[0], 'eContent'));
  }
  const certificates: Buffer[] = [];
  if (isCtx(f[i], 0)) {
    // CertificateChoices: only plain certificates (SEQUENCE) matter; attribute certificates are skipped.
    for (const c of kidsOf(buf, f[i++]!)) if (isUniv(c, 16)) certificates.push(Buffer.from(slice(buf, c)));
  }
  if (isCtx(f[i], 1)) i++; // CRLs: revocation is checked elsewhere (VerifyOptions.revocation)
  const infos = f[i++];
  if (!isUniv(infos, 17)) return bad('signerInfos is not a SET');
  if (f[i]) bad('unexpected field after signerInfos');
  return { eContentType, ...(eContent ? { eContent } : {}), certificates, signerInfos: kidsOf(buf, infos).map((t) => signerInfo(buf, t)) };
}
