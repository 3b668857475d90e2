/**
 * pki: what admins import and export — X.509 certificates (PEM, DER, PKCS#7 bundles), private keys
 * (PKCS#8, PKCS#1, SEC1, encrypted PEM) and PKCS#12 files — parsed into plain values, and the
 * rules that decide whether a certificate may be imported. Pure: bytes in, values out; no I/O.
 *
 * Untrusted input: every byte handed to parseImport/parseCertificate (admin files, LDAP, signed
 * mail). Malformed input is a PkiError with a one-line reason, never a crash.
 * Secrets: passwords of PKCS#12 files and encrypted keys, and the unencrypted PKCS#8 of private
 * keys (PrivateKeyInfo.pkcs8), which callers must seal (keystore/) and never log; neither ever
 * appears in an error message.
 */
export { PkiError, type PkiErrorCode } from './errors.js';
export {
  EKU_ANY,
  EKU_EMAIL_PROTECTION,
  type CertInfo,
  type ImportBundle,
  type ImportCheck,
  type ImportFormat,
  type KeyUsage,
  type PrivateKeyInfo,
  type PublicKeyDescription,
} from './types.js';
export { parseCertificate } from './x509.js';
export { certificateToPem, keyMatchesCertificate, parseImport, parsePrivateKey } from './formats.js';
export { exportPkcs12 } from './pkcs12.js';
export { checkForImport } from './validate.js';
export { createCa, issueSmimeCertificate, CaError, KEY_TYPES, type KeyType, type IssuedMaterial, type CaInit, type IssueOptions } from './ca.js';
export { certsOnlyBundle } from './certs-only.js';
export { chainOf, issuerAmong, usableForEmail, MAX_CHAIN, type Chain, type ChainCertificate } from './chain.js';
export {
  CRL_REASONS,
  CRL_REASON_CODES,
  RevocationError,
  type CrlRecord,
  type HttpFetcher,
  type HttpRequest,
  type HttpResponse,
  type LdapFetcher,
  type LdapRequest,
  type RevocationResult,
  type RevocationSource,
  type RevocationStatus,
  type RevocationStoreView,
  RevocationStoreUnavailableError,
} from './rev-types.js';
export { RevocationChecker, type RevocationCheckerOptions } from './revocation.js';
export { checkPath, pathUsable, revocationSeam, revocationSummary, type PathRevocation, type PathRevocationCheck, type RevocationMode } from './rev-seam.js';
export { crlToDer, parseCrl, verifyCrlSignature, crlTimeProblem, crlEntryCount, type ParsedCrl, type DistributionPoint } from './crl.js';
export { buildCrl, type CrlBuildEntry } from './crl-build.js';
export { buildOcspRequest, checkOcspResponse, type OcspVerdict } from './ocsp.js';
export { nodeHttpFetcher, FetchError } from './rev-http.js';
export { rsaRaw, rejectionSecret, syntheticKey, pkcs1Unpad, decryptPkcs1, encryptOaep, oaepEncode, oaepDecode, type OaepParams } from './rsa-pkcs1.js';
