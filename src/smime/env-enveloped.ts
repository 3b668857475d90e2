/**
 * ContentInfo and EnvelopedData (RFC 5652 §3, §6.1) as Postern reads and writes them. Reading
 * accepts BER (indefinite lengths, chunked content, as openssl -stream and gpgsm write); writing
 * is DER. The shared EncryptedContentInfo is also the authEncryptedContentInfo of RFC 5083.
 */
import * as asn1js from 'asn1js';
import { SmimeError } from './errors.js';
import {
  contextTag, decodeOne, expectSeq, expectSet, kids, malformed, oid, OID, octetContent, readAlgId,
  readOid, readSmallInt, seq, setOf, smallInt, tlv,
} from './env-der.js';
import { readRecipientInfos, type RecipientInfo } from './env-recipient-info.js';

/** An enveloped message of either kind, as read: what decrypt() needs, nothing else. */
export interface Envelope {
  structure: 'enveloped-data' | 'authEnveloped-data';
  recipientInfos: RecipientInfo[];
  contentType: string;
  contentAlg: { oid: string; params?: asn1js.AsnType };
  encryptedContent: Buffer;
  /** AuthEnvelopedData: the AAD (DER of authAttrs with the SET OF tag) and the tag. */
  aad?: Buffer;
  mac?: Buffer;
}

const CONTENT_TYPE_NAMES: Record<string, string> = {
  [OID.data]: 'data', [OID.signedData]: 'SignedData', '1.2.840.113549.1.7.5': 'DigestedData',
  '1.2.840.113549.1.7.6': 'EncryptedData', '1.2.840.113549.1.9.16.1.2': 'AuthenticatedData',
  '1.2.840.113549.1.9.16.1.9': 'CompressedData',
};

/** ContentInfo ::= SEQUENCE { contentType, content [0] EXPLICIT ANY } */
export function readContentInfo(der: Uint8Array): { contentType: string; content: asn1js.AsnType } {
  const [ct, wrapped, extra] = expectSeq(decodeOne(der, 'ContentInfo'), 'ContentInfo');
  const contentType = readOid(ct, 'ContentInfo contentType');
  const content = kids(wrapped)[0];
  if (contextTag(wrapped) !== 0 || !content || extra) throw malformed('ContentInfo has no [0] content');
  return { contentType, content };
}

export function unsupportedContentType(contentType: string): SmimeError {
  const name = CONTENT_TYPE_NAMES[contentType] ?? contentType;
  return new SmimeError(`the CMS object is ${name}, not EnvelopedData or AuthEnvelopedData`, 'unsupported');
}

/** EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm, encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL } */
export function readEncryptedContentInfo(n: asn1js.AsnType | undefined): Pick<Envelope, 'contentType' | 'contentAlg' | 'encryptedContent'> {
  const [ct, alg, content, extra] = expectSeq(n, 'EncryptedContentInfo');
  const contentType = readOid(ct, 'encrypted content type');
  const contentAlg = readAlgId(alg, 'contentEncryptionAlgorithm');
  if (content === undefined) throw new SmimeError('the encrypted content is detached (not in the message)', 'no-content');
  if (contextTag(content) !== 0 || extra) throw malformed('encryptedContent is not [0]');
  return { contentType, contentAlg, encryptedContent: octetContent(content, 'encryptedContent') };
}

/** EnvelopedData ::= SEQUENCE { version, originatorInfo [0] OPTIONAL, recipientInfos SET, encryptedContentInfo, unprotectedAttrs [1] OPTIONAL } */
export function readEnvelopedData(n: asn1js.AsnType): Envelope {
  const parts = expectSeq(n, 'EnvelopedData');
  let i = 0;
  readSmallInt(parts[i++], 'EnvelopedData version');
  if (contextTag(parts[i]) === 0) i++; // originatorInfo: certificates for the recipient's use; not needed
  const recipientInfos = readRecipientInfos(expectSet(parts[i++], 'recipientInfos'));
  const eci = readEncryptedContentInfo(parts[i++]);
  if (contextTag(parts[i]) === 1) i++; // unprotectedAttrs
  if (parts[i]) throw malformed('EnvelopedData has extra fields');
  return { structure: 'enveloped-data', recipientInfos, ...eci };
}

/** EncryptedContentInfo for id-data content, the ciphertext as a primitive [0]. */
export const encryptedContentInfoDer = (algorithm: Buffer, ciphertext: Buffer): Buffer => seq(oid(OID.data), algorithm, tlv(0x80, ciphertext));

export const contentInfoDer = (contentType: string, content: Buffer): Buffer => seq(oid(contentType), tlv(0xa0, content));

/**
 * EnvelopedData, version per RFC 5652 §6.1: 0 when every RecipientInfo is version 0 (ktri by
 * issuerAndSerialNumber), else 2 (kari is version 3). No originatorInfo, no unprotectedAttrs.
 */
export function envelopedDataDer(recipientInfos: Buffer[], allVersion0: boolean, eci: Buffer): Buffer {
  return contentInfoDer(OID.envelopedData, seq(smallInt(allVersion0 ? 0 : 2), setOf(recipientInfos), eci));
}
