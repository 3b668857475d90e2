/**
 * Reading a ContentInfo(SignedData) from untrusted mail into plain values (RFC 5652 §5). BER is
 * accepted (NSS and Outlook write indefinite lengths and chunked OCTET STRINGs); anything that is
 * not the structure it claims to be is SmimeError('malformed'), never an asn1js exception. The
 * signed attributes keep their exact received bytes: the signature covers them, so they are never
 * re-encoded. Certificates are returned as received; unparseable ones are the verifier's concern.
 */
import * as asn1js from 'asn1js';
import { SmimeError } from './errors.js';
import { OID } from './sig-der.js';

export type SignerId = { issuerDer: Buffer; issuer: string; serial: string } | { subjectKeyId: string };

export interface ParsedAttribute {
  type: string;
  values: asn1js.AsnType[];
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
const kids = (n: asn1js.AsnType | undefined): asn1js.AsnType[] => {
  const v = (n as asn1js.Constructed | undefined)?.valueBlock?.value;
  return Array.isArray(v) ? (v as asn1js.AsnType[]) : [];
};
const bytes = (n: asn1js.AsnType): Buffer => Buffer.from((n as asn1js.BaseBlock).valueBeforeDecodeView);
const isCtx = (n: asn1js.AsnType | undefined, tag: number): boolean => n?.idBlock.tagClass === 3 && n.idBlock.tagNumber === tag;
const isUniversal = (n: asn1js.AsnType | undefined, tag: number): boolean => n?.idBlock.tagClass === 1 && n.idBlock.tagNumber === tag;

function oidOf(n: asn1js.AsnType | undefined, what: string): string {
  if (!(n instanceof asn1js.ObjectIdentifier)) return bad(`${what} is not an OBJECT IDENTIFIER`);
  return n.valueBlock.toString();
}

/** The octets of an OCTET STRING, primitive or constructed (BER chunks, possibly nested). */
export function octets(n: asn1js.AsnType | undefined, what: string, depth = 0): Buffer {
  if (!n || n.idBlock.tagNumber !== 4 || depth > 8) return bad(`${what} is not an OCTET STRING`);
  if (!n.idBlock.isConstructed) return Buffer.from((n as asn1js.OctetString).valueBlock.valueHexView);
  return Buffer.concat(kids(n).map((c) => octets(c, what, depth + 1)));
}

function algorithm(n: asn1js.AsnType | undefined, what: string): { oid: string; params: asn1js.AsnType | undefined } {
  if (!(n instanceof asn1js.Sequence)) return bad(`${what} is not an AlgorithmIdentifier`);
  const [o, params] = kids(n);
  return { oid: oidOf(o, what), params };
}

const ATTR_NAMES: Record<string, string> = { '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.10': 'O', '2.5.4.11': 'OU', '1.2.840.113549.1.9.1': 'emailAddress' };

/** A readable Name for reasons ("CN=Mail CA,O=Example"); exact matching uses the bytes. */
export function nameText(name: asn1js.AsnType): string {
  return kids(name)
    .reverse()
    .map((rdn) =>
      kids(rdn)
        .map((atv) => {
          const [t, v] = kids(atv);
          const type = t instanceof asn1js.ObjectIdentifier ? t.valueBlock.toString() : '?';
          const value = (v as { valueBlock?: { value?: unknown } } | undefined)?.valueBlock?.value;
          const text = typeof value === 'string' ? value : '#';
          return `${ATTR_NAMES[type] ?? type}=${text}`;
        })
        .join('+'),
    )
    .join(',');
}

/** Serial INTEGER content as lower-case hex without leading zeros (CertInfo.serial's form). */
export const serialHex = (n: asn1js.AsnType): string => Buffer.from((n as asn1js.Integer).valueBlock.valueHexView).toString('hex').replace(/^0+(?=.)/, '') || '0';

/** IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER } */
export function issuerAndSerial(n: asn1js.AsnType | undefined, what: string): { issuerDer: Buffer; issuer: string; serial: string } {
  const [issuer, serial] = kids(n);
  if (!(issuer instanceof asn1js.Sequence) || !(serial instanceof asn1js.Integer)) return bad(`${what} is not an IssuerAndSerialNumber`);
  return { issuerDer: bytes(issuer), issuer: nameText(issuer), serial: serialHex(serial) };
}

function signerInfo(n: asn1js.AsnType): ParsedSignerInfo {
  if (!(n instanceof asn1js.Sequence)) return bad('a SignerInfo is not a SEQUENCE');
  const f = kids(n);
  let i = 0;
  if (!(f[i++] instanceof asn1js.Integer)) bad('SignerInfo version missing');
  const sidNode = f[i++];
  let sid: SignerId;
  if (sidNode instanceof asn1js.Sequence) sid = issuerAndSerial(sidNode, 'the signer identifier');
  else if (isCtx(sidNode, 0) && !sidNode!.idBlock.isConstructed) sid = { subjectKeyId: Buffer.from((sidNode as asn1js.Primitive).valueBlock.valueHexView).toString('hex') };
  else return bad('unknown signer identifier');
  const digest = algorithm(f[i++], 'the digest algorithm');
  let signedAttrs: ParsedSignerInfo['signedAttrs'];
  if (isCtx(f[i], 0)) {
    const node = f[i++]!;
    const der = bytes(node);
    der[0] = 0x31; // [0] IMPLICIT → SET OF: what the signer signed (RFC 5652 §5.4)
    const attrs = kids(node).map((a) => {
      const [t, vals] = kids(a);
      if (!(a instanceof asn1js.Sequence) || !(vals instanceof asn1js.Set)) return bad('a signed attribute is not an Attribute');
      return { type: oidOf(t, 'an attribute type'), values: kids(vals) };
    });
    signedAttrs = { der, attrs };
  }
  const sig = algorithm(f[i++], 'the signature algorithm');
  const signature = octets(f[i++], 'the signature');
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

function parse(der: Buffer): ParsedSignedData {
  const r = asn1js.fromBER(der);
  if (r.offset === -1 || r.result.error) bad(`invalid or truncated ASN.1 (${r.result.error || 'decode error'})`);
  if (r.offset !== der.length && der.subarray(r.offset).some((b) => b !== 0)) bad(`${der.length - r.offset} bytes of trailing data`);
  const [ct, wrapped] = kids(r.result);
  if (!(r.result instanceof asn1js.Sequence)) bad('not a ContentInfo');
  const contentType = oidOf(ct, 'the content type');
  if (contentType !== OID.signedData) {
    throw new SmimeError(`not a signature: the CMS content type is ${contentType}, not SignedData`, contentType.startsWith('1.2.840.113549.1.') ? 'unsupported' : 'malformed');
  }
  if (!isCtx(wrapped, 0)) bad('ContentInfo without [0] content');
  const sd = kids(wrapped)[0];
  if (!(sd instanceof asn1js.Sequence)) bad('SignedData is not a SEQUENCE');
  const f = kids(sd);
  let i = 0;
  if (!(f[i++] instanceof asn1js.Integer)) bad('SignedData version missing');
  if (!(f[i++] instanceof asn1js.Set)) bad('digestAlgorithms is not a SET');
  const encap = f[i++];
  if (!(encap instanceof asn1js.Sequence)) bad('encapContentInfo is not a SEQUENCE');
  const [eType, eWrapped] = kids(encap);
  const eContentType = oidOf(eType, 'the encapsulated content type');
  let eContent: Buffer | undefined;
  if (eWrapped) {
    if (!isCtx(eWrapped, 0)) bad('eContent is not [0] EXPLICIT');
    eContent = octets(kids(eWrapped)[0], 'eContent');
  }
  const certificates: Buffer[] = [];
  if (isCtx(f[i], 0)) {
    // CertificateChoices: only plain certificates (SEQUENCE) matter; attribute certificates are skipped.
    for (const c of kids(f[i++])) if (isUniversal(c, 16)) certificates.push(bytes(c));
  }
  if (isCtx(f[i], 1)) i++; // CRLs: revocation is checked elsewhere (VerifyOptions.revocation)
  const infos = f[i++];
  if (!(infos instanceof asn1js.Set)) bad('signerInfos is not a SET');
  if (f[i]) bad('unexpected field after signerInfos');
  return { eContentType, ...(eContent ? { eContent } : {}), certificates, signerInfos: kids(infos).map(signerInfo) };
}
