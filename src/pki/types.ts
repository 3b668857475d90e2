/** Value types of pki/: what a parsed certificate, key or import bundle looks like to callers. */

export type KeyUsage =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

/** Bit order of the KeyUsage BIT STRING (RFC 5280 §4.2.1.3). */
export const KEY_USAGE_BITS: readonly KeyUsage[] = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
];

export const EKU_EMAIL_PROTECTION = '1.3.6.1.5.5.7.3.4';
export const EKU_ANY = '2.5.29.37.0';

export interface PublicKeyDescription {
  algorithm: 'rsa' | 'rsa-pss' | 'ec' | 'ed25519' | 'ed448' | 'dsa' | 'other';
  /** RSA / RSA-PSS modulus or DSA prime size; EC field size. */
  bits?: number;
  /** 'P-256' | 'P-384' | 'P-521', or the curve's OID / OpenSSL name for any other curve. */
  curve?: 'P-256' | 'P-384' | 'P-521' | string;
  /** The SubjectPublicKeyInfo algorithm OID (useful when algorithm is 'other', e.g. X25519). */
  oid?: string;
}

export interface CertInfo {
  /** The certificate exactly as it was encoded in the input. */
  der: Buffer;
  /** SHA-256 of `der`, lower-case hex. */
  fingerprint: string;
  /** RFC 4514 string order (most specific RDN first: "CN=Alice,O=Example,C=US"), RFC 4514 escaping. */
  subject: string;
  issuer: string;
  /** Lower-case hex of the serial's content octets (two's complement), no leading zeros; "0" for zero. */
  serial: string;
  /** SAN rfc822Name + subject emailAddress, deduplicated; domain lower-cased, local part as written. */
  emails: string[];
  notBefore: Date;
  notAfter: Date;
  /** null = extension absent. */
  keyUsage: KeyUsage[] | null;
  /** OIDs; null = extension absent. */
  extKeyUsage: string[] | null;
  isCA: boolean;
  pathLength?: number;
  key: PublicKeyDescription;
  /** DER SubjectPublicKeyInfo, to match private keys. */
  spki: Buffer;
  subjectKeyId?: string;
  authorityKeyId?: string;
  /** subject == issuer (RFC 5280 name comparison as pkijs does it). */
  selfIssued: boolean;
  crlUrls: string[];
  ocspUrls: string[];
  caIssuerUrls: string[];
  /** Signature algorithm OID (e.g. to warn about SHA-1). */
  signatureAlgorithm: string;
  /** Certificate version: 1, 2 or 3. */
  version: number;
}

/** A private key. `pkcs8` is a secret: never log it, zero it when done if you can. */
export interface PrivateKeyInfo {
  /** Unencrypted PKCS#8 DER. */
  pkcs8: Buffer;
  /** DER SubjectPublicKeyInfo of the matching public key. */
  spki: Buffer;
  key: PublicKeyDescription;
}

export type ImportFormat = 'pem' | 'der' | 'pkcs7' | 'pkcs12' | 'key';

export interface ImportBundle {
  certificates: CertInfo[];
  keys: PrivateKeyInfo[];
  format: ImportFormat;
  /** PEM block labels that were skipped (e.g. "EC PARAMETERS", "X509 CRL"), for the admin to see. */
  ignored: string[];
}

export interface ImportCheck {
  ok: boolean;
  kind: 'end-entity' | 'ca';
  /** Reasons to refuse the import, one sentence each. */
  problems: string[];
  /** Stored anyway, but the admin should know (expired, signing-only …). */
  warnings: string[];
}
