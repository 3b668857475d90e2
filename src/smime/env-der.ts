/**
 * The ASN.1 plumbing of the CMS encryption half: a tiny DER writer and strict BER reading helpers.
 * Encryption builds its output by concatenating DER pieces (most of them cut once from the
 * recipient certificate) instead of building pkijs object trees: it is the hot path of the worker,
 * and byte concatenation is an order of magnitude cheaper. Reading goes through asn1js, but every
 * surprise becomes SmimeError('malformed') here, so callers never see an asn1js exception or a
 * silently missing field.
 */
import { LIMITS } from '../core/limits.js';
import * as asn1js from 'asn1js';
import { SmimeError } from './errors.js';

// ---------------------------------------------------------------- object identifiers

export const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  authEnvelopedData: '1.2.840.113549.1.9.16.1.23',
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsaesOaep: '1.2.840.113549.1.1.7',
  rsassaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  pSpecified: '1.2.840.113549.1.1.9',
  ecPublicKey: '1.2.840.10045.2.1',
  sha1: '1.3.14.3.2.26',
  sha224: '2.16.840.1.101.3.4.2.4',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  aes128Wrap: '2.16.840.1.101.3.4.1.5',
  aes192Wrap: '2.16.840.1.101.3.4.1.25',
  aes256Wrap: '2.16.840.1.101.3.4.1.45',
} as const;

/** Hash OIDs as Node names them. */
export const HASH_BY_OID: Record<string, string> = {
  [OID.sha1]: 'sha1', [OID.sha224]: 'sha224', [OID.sha256]: 'sha256', [OID.sha384]: 'sha384', [OID.sha512]: 'sha512',
};

// ---------------------------------------------------------------- DER writer

export function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One DER element: tag byte, definite length, the parts concatenated. */
export function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export const seq = (...parts: Buffer[]): Buffer => tlv(0x30, ...parts);
export const octets = (b: Uint8Array): Buffer => tlv(0x04, Buffer.from(b.buffer, b.byteOffset, b.byteLength));
export const NULL = Buffer.from([0x05, 0x00]);

/** DER SET OF: the elements sorted by their encodings (X.690 §11.6). */
export const setOf = (items: Buffer[]): Buffer => tlv(0x31, ...[...items].sort(Buffer.compare));

/** A small non-negative INTEGER (versions, ICV lengths). */
export function smallInt(n: number): Buffer {
  return n < 0x80 ? Buffer.from([0x02, 0x01, n]) : tlv(0x02, Buffer.from([0x00, n & 0xff]));
}

const oidCache = new Map<string, Buffer>();
export function oid(dotted: string): Buffer {
  const hit = oidCache.get(dotted);
  if (hit) return hit;
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [];
  const first = [arcs[0]! * 40 + arcs[1]!, ...arcs.slice(2)];
  for (const arc of first) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  const der = tlv(0x06, Buffer.from(out));
  oidCache.set(dotted, der);
  return der;
}

/** AlgorithmIdentifier; `params` undefined = absent (not NULL). */
export const algId = (dotted: string, params?: Buffer): Buffer => (params ? seq(oid(dotted), params) : seq(oid(dotted)));

// ---------------------------------------------------------------- BER reading

export const malformed = (what: string, cause?: unknown): SmimeError =>
  new SmimeError(`not a valid CMS structure: ${what}`, 'malformed', cause === undefined ? undefined : { cause });

/** Decode one BER element that must span all of `data`: trailing bytes would hide content from other parsers. */
export function decodeOne(data: Uint8Array, what: string): asn1js.AsnType {
  if (data.byteLength === 0) throw malformed(`${what} is empty`);
  let r: ReturnType<typeof asn1js.fromBER>;
  try {
    // asn1js 4's defaults refuse content over 16 MB and more than 10,000 nodes: a large message
    // (or Outlook's 4 KB BER chunks of one) would not decrypt. The length is bounded by the input
    // itself (ber-limits.ts checked it before), the nodes by one per 512 bytes beyond 10,000, the
    // depth as in ber-limits.ts.
    r = asn1js.fromBER(data, { maxContentLength: data.byteLength, maxNodes: 10_000 + Math.ceil(data.byteLength / 512), maxDepth: LIMITS.cmsDepth });
  } catch (err) {
    throw malformed(`${what} is not ASN.1`, err);
  }
  if (r.offset === -1 || r.result.error) throw malformed(`${what} is invalid or truncated ASN.1`);
  if (r.offset !== data.byteLength) throw malformed(`${data.byteLength - r.offset} bytes of trailing data after the ${what}`);
  return r.result;
}

/** Children of a constructed element, or [] for anything else. */
export function kids(node: asn1js.AsnType | undefined): asn1js.AsnType[] {
  const v = (node as asn1js.Constructed | undefined)?.valueBlock?.value;
  return Array.isArray(v) ? (v as asn1js.AsnType[]) : [];
}

/** Universal tag number (16 SEQUENCE, 17 SET, 4 OCTET STRING …) or -1 for non-universal. */
const universal = (n: asn1js.AsnType | undefined): number => (n && n.idBlock.tagClass === 1 ? n.idBlock.tagNumber : -1);
/** Context tag number of [n] or -1. */
export const contextTag = (n: asn1js.AsnType | undefined): number => (n && n.idBlock.tagClass === 3 ? n.idBlock.tagNumber : -1);

export function expectSeq(n: asn1js.AsnType | undefined, what: string): asn1js.AsnType[] {
  if (universal(n) !== 16 || !n!.idBlock.isConstructed) throw malformed(`${what} is not a SEQUENCE`);
  return kids(n);
}

export function expectSet(n: asn1js.AsnType | undefined, what: string): asn1js.AsnType[] {
  if (universal(n) !== 17 || !n!.idBlock.isConstructed) throw malformed(`${what} is not a SET`);
  return kids(n);
}

export function readOid(n: asn1js.AsnType | undefined, what: string): string {
  if (!(n instanceof asn1js.ObjectIdentifier)) throw malformed(`${what} is not an OBJECT IDENTIFIER`);
  return n.valueBlock.toString();
}

export function readSmallInt(n: asn1js.AsnType | undefined, what: string): number {
  if (!(n instanceof asn1js.Integer) || n.valueBlock.valueHexView.byteLength > 4) throw malformed(`${what} is not a small INTEGER`);
  return n.valueBlock.valueDec;
}

/** The exact bytes an element was decoded from. */
export const raw = (n: asn1js.AsnType): Buffer => {
  const v = (n as asn1js.BaseBlock).valueBeforeDecodeView;
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
};

/**
 * The content of an OCTET STRING, or of an IMPLICIT-tagged one ([0] encryptedContent), whether
 * primitive or BER-constructed from chunks (openssl -stream and gpgsm write chunked content).
 */
export function octetContent(n: asn1js.AsnType | undefined, what: string, depth = 0): Buffer {
  if (!n || depth > 8) throw malformed(`${what} is missing`);
  const tagOk = universal(n) === 4 || n.idBlock.tagClass === 3;
  if (!tagOk) throw malformed(`${what} is not an OCTET STRING`);
  if (!n.idBlock.isConstructed) {
    const v = (n as asn1js.Primitive).valueBlock?.valueHexView;
    if (!(v instanceof Uint8Array)) throw malformed(`${what} has no value`);
    return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }
  const parts = kids(n).map((c) => {
    if (universal(c) !== 4) throw malformed(`${what} has a chunk that is not an OCTET STRING`);
    return octetContent(c, what, depth + 1);
  });
  return Buffer.concat(parts);
}

/** AlgorithmIdentifier → OID and the parameters element (undefined when absent). */
export function readAlgId(n: asn1js.AsnType | undefined, what: string): { oid: string; params?: asn1js.AsnType } {
  const [o, params, extra] = expectSeq(n, what);
  if (extra) throw malformed(`${what} has extra fields`);
  return params ? { oid: readOid(o, `${what} algorithm`), params } : { oid: readOid(o, `${what} algorithm`) };
}

export const isNullOrAbsent = (n: asn1js.AsnType | undefined): boolean => n === undefined || n instanceof asn1js.Null;

/** Integer content bytes without leading zero octets, as lower-case hex ("0" for zero): the form CertInfo.serial uses. */
export function serialHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex').replace(/^0+(?=.)/, '') || '0';
}
