/**
 * X.509 certificate parsing into CertInfo: the facts Postern's policy and keystore need, read once.
 * Input is untrusted (admin files, LDAP, signed mail): every structural surprise is a PkiError,
 * never an exception from deep inside asn1js/pkijs, and a malformed extension we rely on is an
 * error rather than "absent" (pkijs alone would silently return an empty object).
 */
import { createHash, createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { PkiError } from './errors.js';
import { KEY_USAGE_BITS, type CertInfo, type KeyUsage, type PublicKeyDescription } from './types.js';

let engineSet = false;
/** pkijs needs a crypto engine for anything that signs or verifies; use Node's WebCrypto, set once. */
export function ensurePkijsEngine(): void {
  if (engineSet) return;
  pkijs.setEngine('node-webcrypto', new pkijs.CryptoEngine({ name: 'node-webcrypto', crypto: webcrypto as unknown as pkijs.CryptoEngineParameters['crypto'] }));
  engineSet = true;
}
ensurePkijsEngine();

export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
/** A Buffer that shares no memory with asn1js' internal views. */
export const copyBytes = (b: Uint8Array): Buffer => Buffer.from(b);

/**
 * Decode one BER element that must span all of `data` (trailing bytes are refused: they hide
 * content from other parsers). `what` names the thing for the error message.
 */
export function decodeStrict(data: Uint8Array, what: string): asn1js.AsnType {
  if (data.byteLength === 0) throw new PkiError(`${what}: empty input`);
  const r = asn1js.fromBER(data);
  if (r.offset === -1 || r.result.error) throw new PkiError(`${what}: invalid or truncated ASN.1 (${r.result.error || 'decode error'})`);
  if (r.offset !== data.byteLength) throw new PkiError(`${what}: ${data.byteLength - r.offset} bytes of trailing data after the ASN.1 structure`);
  return r.result;
}

/** Children of a constructed element, or [] for anything else. */
export function children(node: asn1js.AsnType | undefined): asn1js.AsnType[] {
  const v = (node as asn1js.Constructed | undefined)?.valueBlock?.value;
  return Array.isArray(v) ? (v as asn1js.AsnType[]) : [];
}

/** The exact bytes an element was decoded from. */
export const rawBytes = (node: asn1js.AsnType): Buffer => copyBytes((node as asn1js.BaseBlock).valueBeforeDecodeView);

// ---------------------------------------------------------------- distinguished names

const ATTR_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN', '2.5.4.4': 'SN', '2.5.4.5': 'serialNumber', '2.5.4.6': 'C', '2.5.4.7': 'L',
  '2.5.4.8': 'ST', '2.5.4.9': 'STREET', '2.5.4.10': 'O', '2.5.4.11': 'OU', '2.5.4.12': 'title',
  '2.5.4.42': 'GN', '2.5.4.43': 'initials', '2.5.4.44': 'generationQualifier', '2.5.4.46': 'dnQualifier',
  '2.5.4.65': 'pseudonym', '2.5.4.97': 'organizationIdentifier', '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID', '1.2.840.113549.1.9.1': 'emailAddress',
};
export const OID_EMAIL_ADDRESS = '1.2.840.113549.1.9.1';

/** The text of a directory string, or null when the value is not a string type. */
function stringValue(v: asn1js.AsnType): string | null {
  if (v instanceof asn1js.Utf8String || v instanceof asn1js.BmpString || v instanceof asn1js.UniversalString) return v.valueBlock.value;
  if (
    v instanceof asn1js.PrintableString || v instanceof asn1js.IA5String || v instanceof asn1js.TeletexString ||
    v instanceof asn1js.VisibleString || v instanceof asn1js.NumericString || v instanceof asn1js.VideotexString ||
    v instanceof asn1js.GraphicString || v instanceof asn1js.GeneralString
  ) {
    // Single-byte strings; Teletex is read as Latin-1, which is what it holds in practice.
    return Buffer.from((v as asn1js.BaseStringBlock).valueBlock.valueHexView).toString('latin1');
  }
  return null;
}

/** RFC 4514 §2.4 escaping, as OpenSSL does it (non-ASCII stays UTF-8, like `-nameopt RFC2253,-esc_msb`). */
function escapeDnValue(s: string): string {
  let out = s.replace(/[\\,+"<>;]/g, (c) => `\\${c}`).replace(/[\u0000-\u001f\u007f]/g, (c) => `\\${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  if (out.startsWith('#') || out.startsWith(' ')) out = `\\${out}`;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}

interface Attribute { oid: string; value: asn1js.AsnType }

function nameAttributes(name: asn1js.AsnType): Attribute[][] {
  return children(name).map((rdn) =>
    children(rdn).map((atv) => {
      const [type, value] = children(atv);
      if (!(type instanceof asn1js.ObjectIdentifier) || !value) throw new PkiError('malformed distinguished name');
      return { oid: type.valueBlock.toString(), value };
    }),
  );
}

/**
 * RFC 4514 string: last RDN first, multi-valued RDNs joined with '+', unknown types as OID=#hex.
 * Entries of a multi-valued RDN are reversed too, so the result is exactly what
 * `openssl x509 -noout -subject -nameopt RFC2253` prints (the order inside an RDN carries no meaning).
 */
export function dnToString(name: asn1js.AsnType): string {
  return nameAttributes(name)
    .reverse()
    .map((rdn) =>
      [...rdn]
        .reverse()
        .map(({ oid, value }) => {
          const text = stringValue(value);
          const label = ATTR_NAMES[oid] ?? oid;
          return text === null ? `${label}=#${toHex(new Uint8Array(value.toBER(false)))}` : `${label}=${escapeDnValue(text)}`;
        })
        .join('+'),
    )
    .join(',');
}

/** "Local@Example.COM" → "Local@example.com"; null for something that is not a mailbox. */
export function normalizeEmail(raw: string): string | null {
  const s = raw.trim();
  const at = s.lastIndexOf('@');
  if (at <= 0 || at === s.length - 1 || /[\s<>]/.test(s)) return null;
  return `${s.slice(0, at)}@${s.slice(at + 1).toLowerCase()}`;
}

// ---------------------------------------------------------------- public keys

const CURVES: Record<string, string> = {
  prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521',
  '1.2.840.10045.3.1.7': 'P-256', '1.3.132.0.34': 'P-384', '1.3.132.0.35': 'P-521',
};
const CURVE_BITS: Record<string, number> = { 'P-256': 256, 'P-384': 384, 'P-521': 521 };
const KEY_OIDS: Record<string, PublicKeyDescription['algorithm']> = {
  '1.2.840.113549.1.1.1': 'rsa', '1.2.840.113549.1.1.10': 'rsa-pss', '1.2.840.10045.2.1': 'ec',
  '1.3.101.112': 'ed25519', '1.3.101.113': 'ed448', '1.2.840.10040.4.1': 'dsa',
};

/** Describe a Node KeyObject (public or private). */
export function describeKeyObject(k: KeyObject, oid?: string): PublicKeyDescription {
  const type = k.asymmetricKeyType;
  const d = k.asymmetricKeyDetails ?? {};
  const base = oid ? { oid } : {};
  switch (type) {
    case 'rsa':
    case 'rsa-pss':
    case 'dsa':
      return { algorithm: type, bits: d.modulusLength, ...base };
    case 'ec': {
      const curve = CURVES[d.namedCurve ?? ''] ?? d.namedCurve ?? 'unknown';
      return { algorithm: 'ec', curve, ...(CURVE_BITS[curve] ? { bits: CURVE_BITS[curve] } : {}), ...base };
    }
    case 'ed25519':
    case 'ed448':
      return { algorithm: type, ...base };
    default:
      return { algorithm: 'other', ...base };
  }
}

/**
 * Describe a DER SubjectPublicKeyInfo. Node does the work when it can load the key; keys it cannot
 * load (e.g. DSA whose parameters are inherited from the issuer, RFC 4134's Diane) are described
 * from the algorithm OID alone.
 */
export function describeSpki(spki: Buffer): PublicKeyDescription {
  const [alg] = children(decodeStrict(spki, 'public key'));
  const oidNode = children(alg)[0];
  const oid = oidNode instanceof asn1js.ObjectIdentifier ? oidNode.valueBlock.toString() : 'unknown';
  try {
    return describeKeyObject(createPublicKey({ key: spki, format: 'der', type: 'spki' }), oid);
  } catch {
    const params = children(alg)[1];
    const curve = params instanceof asn1js.ObjectIdentifier ? params.valueBlock.toString() : undefined;
    const algorithm = KEY_OIDS[oid] ?? 'other';
    return { algorithm, oid, ...(algorithm === 'ec' && curve ? { curve: CURVES[curve] ?? curve } : {}) };
  }
}

// ---------------------------------------------------------------- certificates

function extValue<T>(ext: pkijs.Extension, name: string): T {
  const v = ext.parsedValue as (T & { parsingError?: string }) | undefined;
  if (v === undefined || v === null || (v as { parsingError?: string }).parsingError) {
    throw new PkiError(`malformed ${name} extension${ext.critical ? ' (critical)' : ''}`);
  }
  return v;
}

function keyUsageBits(bits: asn1js.BitString): KeyUsage[] {
  const bytes = bits.valueBlock.valueHexView;
  return KEY_USAGE_BITS.filter((_, i) => ((bytes[i >> 3] ?? 0) >> (7 - (i & 7))) & 1);
}

function uris(names: pkijs.GeneralName[] | undefined): string[] {
  return (names ?? []).filter((n) => n.type === 6 && typeof n.value === 'string').map((n) => n.value as string);
}

/** Parse one DER (or BER) certificate. Throws PkiError('not an X.509 certificate: …'). */
export function parseCertificate(der: Buffer): CertInfo {
  try {
    return parse(der);
  } catch (err) {
    const reason = err instanceof PkiError ? err.message : 'structure does not match RFC 5280';
    throw new PkiError(`not an X.509 certificate: ${reason}`, 'malformed', { cause: err });
  }
}

function parse(der: Buffer): CertInfo {
  const root = decodeStrict(der, 'certificate');
  const [tbs] = children(root);
  const tbsParts = children(tbs);
  const off = tbsParts[0]?.idBlock.tagClass === 3 ? 1 : 0; // [0] EXPLICIT version present
  const [issuerNode, , subjectNode, spkiNode] = [tbsParts[off + 2], tbsParts[off + 3], tbsParts[off + 4], tbsParts[off + 5]];
  if (children(root).length !== 3 || !issuerNode || !subjectNode || !spkiNode) throw new PkiError('not a certificate structure');

  let cert: pkijs.Certificate;
  try {
    cert = new pkijs.Certificate({ schema: root });
  } catch (err) {
    throw new PkiError(`structure does not match RFC 5280 (${(err as Error).message})`);
  }

  const spki = rawBytes(spkiNode);
  const serialBytes = cert.serialNumber.valueBlock.valueHexView;
  const info: CertInfo = {
    der: copyBytes(der),
    fingerprint: sha256Hex(der),
    subject: dnToString(subjectNode),
    issuer: dnToString(issuerNode),
    serial: toHex(serialBytes).replace(/^0+(?=.)/, ''),
    emails: [],
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
    keyUsage: null,
    extKeyUsage: null,
    isCA: false,
    key: describeSpki(spki),
    spki,
    selfIssued: cert.subject.isEqual(cert.issuer),
    crlUrls: [],
    ocspUrls: [],
    caIssuerUrls: [],
    signatureAlgorithm: cert.signatureAlgorithm.algorithmId,
    version: cert.version + 1,
  };
  if (Number.isNaN(info.notBefore.getTime()) || Number.isNaN(info.notAfter.getTime())) throw new PkiError('invalid validity dates');

  const emails: string[] = [];
  for (const rdn of nameAttributes(subjectNode)) {
    for (const a of rdn) if (a.oid === OID_EMAIL_ADDRESS) emails.push(stringValue(a.value) ?? '');
  }
  for (const ext of cert.extensions ?? []) {
    switch (ext.extnID) {
      case '2.5.29.17': // subjectAltName
        for (const n of extValue<pkijs.AltName>(ext, 'subjectAltName').altNames) if (n.type === 1 && typeof n.value === 'string') emails.push(n.value);
        break;
      case '2.5.29.15': // keyUsage
        if (!(ext.parsedValue instanceof asn1js.BitString)) throw new PkiError('malformed keyUsage extension');
        info.keyUsage = keyUsageBits(ext.parsedValue);
        break;
      case '2.5.29.37': // extKeyUsage
        info.extKeyUsage = [...extValue<pkijs.ExtKeyUsage>(ext, 'extKeyUsage').keyPurposes];
        break;
      case '2.5.29.19': { // basicConstraints
        const bc = extValue<pkijs.BasicConstraints>(ext, 'basicConstraints');
        info.isCA = bc.cA === true;
        const pl = bc.pathLenConstraint;
        if (info.isCA && pl !== undefined) info.pathLength = typeof pl === 'number' ? pl : pl.valueBlock.valueDec;
        break;
      }
      case '2.5.29.14': // subjectKeyIdentifier
        if (!(ext.parsedValue instanceof asn1js.OctetString)) throw new PkiError('malformed subjectKeyIdentifier extension');
        info.subjectKeyId = toHex(ext.parsedValue.valueBlock.valueHexView);
        break;
      case '2.5.29.35': { // authorityKeyIdentifier
        const kid = extValue<pkijs.AuthorityKeyIdentifier>(ext, 'authorityKeyIdentifier').keyIdentifier;
        if (kid) info.authorityKeyId = toHex(kid.valueBlock.valueHexView);
        break;
      }
      case '2.5.29.31': // cRLDistributionPoints
        for (const dp of extValue<pkijs.CRLDistributionPoints>(ext, 'cRLDistributionPoints').distributionPoints) {
          if (Array.isArray(dp.distributionPoint)) info.crlUrls.push(...uris(dp.distributionPoint));
        }
        break;
      case '1.3.6.1.5.5.7.1.1': // authorityInfoAccess
        for (const ad of extValue<pkijs.InfoAccess>(ext, 'authorityInfoAccess').accessDescriptions) {
          if (ad.accessMethod === '1.3.6.1.5.5.7.48.1') info.ocspUrls.push(...uris([ad.accessLocation]));
          if (ad.accessMethod === '1.3.6.1.5.5.7.48.2') info.caIssuerUrls.push(...uris([ad.accessLocation]));
        }
        break;
    }
  }
  const seen = new Set<string>();
  for (const raw of emails) {
    const e = normalizeEmail(raw);
    if (e && !seen.has(e)) {
      seen.add(e);
      info.emails.push(e);
    }
  }
  return info;
}

/** The RSA modulus and exponent of an rsa or rsa-pss SPKI, or null for other keys. */
function rsaNumbers(spki: Buffer): [Buffer, Buffer] | null {
  const [alg, bits] = children(decodeStrict(spki, 'public key'));
  const oid = children(alg)[0];
  const algorithm = oid instanceof asn1js.ObjectIdentifier ? KEY_OIDS[oid.valueBlock.toString()] : undefined;
  if ((algorithm !== 'rsa' && algorithm !== 'rsa-pss') || !(bits instanceof asn1js.BitString)) return null;
  const [n, e] = children(decodeStrict(bits.valueBlock.valueHexView, 'RSA public key'));
  if (!(n instanceof asn1js.Integer) || !(e instanceof asn1js.Integer)) return null;
  return [copyBytes(n.valueBlock.valueHexView), copyBytes(e.valueBlock.valueHexView)];
}

/**
 * Whether two DER SubjectPublicKeyInfos hold the same public key: byte equality, else the same key
 * material (Node's KeyObject.equals), and for RSA the same modulus and exponent even when one side
 * says rsaEncryption and the other RSASSA-PSS, or the NULL parameters differ.
 */
export function publicKeysEqual(a: Buffer, b: Buffer): boolean {
  if (a.equals(b)) return true;
  try {
    const ra = rsaNumbers(a);
    const rb = rsaNumbers(b);
    if (ra || rb) return !!ra && !!rb && ra[0].equals(rb[0]) && ra[1].equals(rb[1]);
    return createPublicKey({ key: a, format: 'der', type: 'spki' }).equals(createPublicKey({ key: b, format: 'der', type: 'spki' }));
  } catch {
    return false;
  }
}
