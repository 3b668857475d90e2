/**
 * PKCS#7 / CMS "certs-only" bundles (RFC 8551 3.7, application/pkcs7-mime; smime-type=certs-only,
 * .p7c): a SignedData with no content and no signers, only certificates. What `{send_keys}` attaches
 * so a partner's client (or gpgsm, or openssl) imports the sender's certificate and its chain.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { PkiError } from './errors.js';
import { ensurePkijsEngine } from './x509.js';

ensurePkijsEngine();

export function certsOnlyBundle(certificates: readonly Buffer[]): Buffer {
  if (!certificates.length) throw new PkiError('a certs-only bundle needs at least one certificate');
  const certs = certificates.map((der) => {
    const parsed = asn1js.fromBER(der);
    if (parsed.offset === -1) throw new PkiError('not an X.509 certificate (invalid DER)');
    return new pkijs.Certificate({ schema: parsed.result });
  });
  const signed = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: pkijs.ContentInfo.DATA }),
    certificates: certs,
    signerInfos: [],
  });
  const info = new pkijs.ContentInfo({ contentType: pkijs.ContentInfo.SIGNED_DATA, content: signed.toSchema(true) });
  return Buffer.from(info.toSchema().toBER(false));
}
