/**
 * AuthEnvelopedData (RFC 5083) with AES-GCM (RFC 5084), which pkijs lacks:
 *   AuthEnvelopedData ::= SEQUENCE { version CMSVersion (0), originatorInfo [0] IMPLICIT OPTIONAL,
 *     recipientInfos, authEncryptedContentInfo EncryptedContentInfo,
 *     authAttrs [1] IMPLICIT AuthAttributes OPTIONAL, mac MessageAuthenticationCode (the GCM tag),
 *     unauthAttrs [2] IMPLICIT UnauthAttributes OPTIONAL }
 * The recipient infos are those of EnvelopedData. The AAD is the DER of authAttrs with an explicit
 * SET OF tag (RFC 5083 §2.1), or empty. Postern writes no attributes.
 */
import * as asn1js from 'asn1js';
import { contextTag, expectSeq, expectSet, malformed, octetContent, OID, octets, raw, readSmallInt, seq, setOf, smallInt } from './env-der.js';
import { contentInfoDer, readEncryptedContentInfo, type Envelope } from './env-enveloped.js';
import { readRecipientInfos } from './env-recipient-info.js';

export function readAuthEnvelopedData(n: asn1js.AsnType): Envelope {
  const parts = expectSeq(n, 'AuthEnvelopedData');
  let i = 0;
  readSmallInt(parts[i++], 'AuthEnvelopedData version');
  if (contextTag(parts[i]) === 0) i++; // originatorInfo
  const recipientInfos = readRecipientInfos(expectSet(parts[i++], 'recipientInfos'));
  const eci = readEncryptedContentInfo(parts[i++]);
  let aad: Buffer | undefined;
  if (contextTag(parts[i]) === 1) {
    const attrs = parts[i++]!;
    if (!attrs.idBlock.isConstructed) throw malformed('authAttrs is not constructed');
    // [1] IMPLICIT → SET OF: the same encoding with the universal SET tag (0x31 instead of 0xA1).
    aad = Buffer.from(raw(attrs));
    aad[0] = 0x31;
  }
  const mac = octetContent(parts[i++], 'AuthEnvelopedData mac');
  if (contextTag(parts[i]) === 2) i++; // unauthAttrs
  if (parts[i]) throw malformed('AuthEnvelopedData has extra fields');
  return { structure: 'authEnveloped-data', recipientInfos, ...eci, ...(aad ? { aad } : {}), mac };
}

export function authEnvelopedDataDer(recipientInfos: Buffer[], eci: Buffer, mac: Buffer): Buffer {
  return contentInfoDer(OID.authEnvelopedData, seq(smallInt(0), setOf(recipientInfos), eci, octets(mac)));
}
