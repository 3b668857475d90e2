/**
 * The organisation's internal CA for S/MIME: a self-signed root and the mailbox certificates it
 * issues (the profile of RFC 8550/8551 and the CA/Browser Forum S/MIME Baseline Requirements,
 * "mailbox-validated strict": the address only in subjectAltName, emailProtection only).
 * Keys are made by Node's crypto; certificates are built with pkijs and signed through WebCrypto.
 * Pure: material in, material out; the keystore seals the keys.
 */
import { createHash, generateKeyPair, randomBytes, webcrypto } from 'node:crypto';
import { promisify } from 'node:util';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { EKU_EMAIL_PROTECTION } from './types.js';
import { ensurePkijsEngine, parseCertificate } from './x509.js';

/** The key types the internal CA makes, for its own key and the certificates it issues. */
export const KEY_TYPES = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** A certificate and its private key; keyPkcs8 is a secret (unencrypted PKCS#8 DER). */
export interface IssuedMaterial {
  certDer: Buffer;
  keyPkcs8: Buffer;
}

export interface CaInit {
  commonName: string;
  organization?: string;
  /** EC P-256 by default: small, fast, and every S/MIME client that verifies chains handles it. */
  keyType?: KeyType;
  /** Ten years by default. */
  validityDays?: number;
  now?: Date;
}

export interface IssueOptions {
  ca: IssuedMaterial;
  address: string;
  name?: string;
  /** RSA-2048 by default: the widest client support (Outlook and older clients lack ECDH). */
  keyType?: KeyType;
  validityDays?: number;
  crlUrl?: string;
  now?: Date;
}

export class CaError extends Error {
  override readonly name = 'CaError';
}

const generate = promisify(generateKeyPair);
const OID = {
  cn: '2.5.4.3',
  o: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  crlDistributionPoints: '2.5.29.31',
};
/** KeyUsage bits as the first byte of the BIT STRING (bit 0 = 0x80). */
const KU = { digitalSignature: 0x80, keyEncipherment: 0x20, keyAgreement: 0x08, keyCertSign: 0x04, cRLSign: 0x02 };

ensurePkijsEngine();

async function newKey(type: KeyType): Promise<{ pkcs8: Buffer; spki: Buffer }> {
  const pair =
    type === 'ec-p256' || type === 'ec-p384'
      ? await generate('ec', { namedCurve: type === 'ec-p256' ? 'P-256' : 'P-384' })
      : await generate('rsa', { modulusLength: Number(type.slice(4)), publicExponent: 0x10001 });
  return {
    pkcs8: pair.privateKey.export({ format: 'der', type: 'pkcs8' }),
    spki: pair.publicKey.export({ format: 'der', type: 'spki' }),
  };
}

/** The signing key of a CA as WebCrypto wants it, and the hash that goes with its size. */
async function signingKey(pkcs8: Buffer, spki: Buffer): Promise<{ key: webcrypto.CryptoKey; hash: string }> {
  const info = parseSpki(spki);
  if (info.curve) {
    const hash = info.curve === 'P-256' ? 'SHA-256' : 'SHA-384';
    return { key: await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: info.curve }, false, ['sign']), hash };
  }
  return { key: await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']), hash: 'SHA-256' };
}

function parseSpki(spki: Buffer): { info: pkijs.PublicKeyInfo; curve?: string } {
  const info = new pkijs.PublicKeyInfo({ schema: asn1js.fromBER(spki).result });
  if (info.algorithm.algorithmId !== '1.2.840.10045.2.1') return { info };
  const curveOid = (info.algorithm.algorithmParams as asn1js.ObjectIdentifier).valueBlock.toString();
  const curve = { '1.2.840.10045.3.1.7': 'P-256', '1.3.132.0.34': 'P-384', '1.3.132.0.35': 'P-521' }[curveOid];
  if (!curve) throw new CaError(`unsupported EC curve ${curveOid}`);
  return { info, curve };
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(spki: Buffer): ArrayBuffer {
  const bits = parseSpki(spki).info.subjectPublicKey.valueBlock.valueHexView;
  const h = createHash('sha1').update(bits).digest();
  return h.buffer.slice(h.byteOffset, h.byteOffset + h.byteLength) as ArrayBuffer;
}

/**
 * One attribute per RDN ("O=…, CN=…"). pkijs would put all of them into a single multi-valued RDN
 * ("O=… + CN=…"), which clients display oddly, so the DER is built here and parsed back.
 */
function name(cn: string, o?: string): pkijs.RelativeDistinguishedNames {
  const atv = (type: string, value: string) => new asn1js.Set({ value: [new pkijs.AttributeTypeAndValue({ type, value: new asn1js.Utf8String({ value }) }).toSchema()] });
  const der = new asn1js.Sequence({ value: [...(o ? [atv(OID.o, o)] : []), atv(OID.cn, cn)] }).toBER(false);
  return new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(der).result });
}

/** UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
const time = (d: Date) => new pkijs.Time({ type: d.getUTCFullYear() >= 2050 ? 1 : 0, value: d });

function ext(extnID: string, critical: boolean, value: { toSchema(): asn1js.AsnType } | asn1js.AsnType): pkijs.Extension {
  const schema = 'toSchema' in value && typeof value.toSchema === 'function' ? value.toSchema() : (value as asn1js.AsnType);
  return new pkijs.Extension({ extnID, critical, extnValue: schema.toBER(false) });
}

function keyUsage(bits: number): asn1js.BitString {
  let unused = 0;
  while (unused < 7 && !(bits & (1 << unused))) unused++;
  return new asn1js.BitString({ valueHex: new Uint8Array([bits]).buffer, unusedBits: unused });
}

function serial(): asn1js.Integer {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40; // positive, and always 16 bytes long
  return new asn1js.Integer({ valueHex: b.buffer.slice(b.byteOffset, b.byteOffset + 16) as ArrayBuffer });
}

async function build(opts: {
  subject: pkijs.RelativeDistinguishedNames;
  issuer: pkijs.RelativeDistinguishedNames;
  spki: Buffer;
  extensions: pkijs.Extension[];
  validityDays: number;
  now: Date;
  signer: { pkcs8: Buffer; spki: Buffer };
}): Promise<Buffer> {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = serial();
  cert.subject = opts.subject;
  cert.issuer = opts.issuer;
  // A minute in the past: a peer whose clock is a little behind must not see "not yet valid".
  cert.notBefore = time(new Date(opts.now.getTime() - 60_000));
  cert.notAfter = time(new Date(opts.now.getTime() + opts.validityDays * 86_400_000));
  cert.subjectPublicKeyInfo = parseSpki(opts.spki).info;
  cert.extensions = opts.extensions;
  const { key, hash } = await signingKey(opts.signer.pkcs8, opts.signer.spki);
  await cert.sign(key as unknown as Parameters<pkijs.Certificate['sign']>[0], hash);
  return Buffer.from(cert.toSchema(true).toBER(false));
}

export async function createCa(opts: CaInit): Promise<IssuedMaterial> {
  if (!opts.commonName.trim()) throw new CaError('the CA needs a name (--name)');
  const key = await newKey(opts.keyType ?? 'ec-p256');
  const subject = name(opts.commonName.trim(), opts.organization?.trim() || undefined);
  const ski = keyIdentifier(key.spki);
  const certDer = await build({
    subject,
    issuer: subject,
    spki: key.spki,
    validityDays: opts.validityDays ?? 3650,
    now: opts.now ?? new Date(),
    signer: key,
    extensions: [
      ext(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: true, pathLenConstraint: 0 })),
      ext(OID.keyUsage, true, keyUsage(KU.keyCertSign | KU.cRLSign | KU.digitalSignature)),
      ext(OID.subjectKeyId, false, new asn1js.OctetString({ valueHex: ski })),
    ],
  });
  return { certDer, keyPkcs8: key.pkcs8 };
}

/** A plain ASCII mailbox: what every S/MIME client can match against From:. */
function checkAddress(address: string): string {
  const a = address.trim();
  const at = a.lastIndexOf('@');
  if (at <= 0 || at === a.length - 1 || a.indexOf('@') !== at) throw new CaError(`${JSON.stringify(address)} is not an e-mail address (expected local@domain)`);
  if (/[\s\x00-\x1f\x7f<>()[\]\\,;:"]/.test(a)) throw new CaError(`${JSON.stringify(address)} contains characters not allowed in an address`);
  if (/[^\x00-\x7f]/.test(a.slice(0, at))) {
    throw new CaError(`${JSON.stringify(address)}: a non-ASCII local part needs an SmtpUTF8Mailbox name (RFC 9598), which the internal CA does not issue yet`);
  }
  const domain = a.slice(at + 1).toLowerCase();
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(domain)) throw new CaError(`${JSON.stringify(address)}: the domain must be an ASCII (A-label) host name`);
  return `${a.slice(0, at)}@${domain}`;
}

export async function issueSmimeCertificate(opts: IssueOptions): Promise<IssuedMaterial> {
  const address = checkAddress(opts.address);
  const ca = parseCertificate(opts.ca.certDer);
  if (!ca.isCA) throw new CaError('the issuing certificate is not a CA certificate');
  const keyType = opts.keyType ?? 'rsa-2048';
  const key = await newKey(keyType);
  const caCert = new pkijs.Certificate({ schema: asn1js.fromBER(opts.ca.certDer).result });
  const ec = keyType.startsWith('ec-');
  const extensions = [
    ext(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: false })),
    // RSA encrypts by key transport, EC by key agreement (ECDH, RFC 5753).
    ext(OID.keyUsage, true, keyUsage(KU.digitalSignature | (ec ? KU.keyAgreement : KU.keyEncipherment))),
    ext(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: [EKU_EMAIL_PROTECTION] })),
    ext(OID.subjectAltName, false, new pkijs.AltName({ altNames: [new pkijs.GeneralName({ type: 1, value: address })] })),
    ext(OID.subjectKeyId, false, new asn1js.OctetString({ valueHex: keyIdentifier(key.spki) })),
    ext(OID.authorityKeyId, false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: keyIdentifier(ca.spki) }) })),
  ];
  if (opts.crlUrl) {
    extensions.push(
      ext(OID.crlDistributionPoints, false, new pkijs.CRLDistributionPoints({ distributionPoints: [new pkijs.DistributionPoint({ distributionPoint: [new pkijs.GeneralName({ type: 6, value: opts.crlUrl })] })] })),
    );
  }
  const certDer = await build({
    subject: name(opts.name?.trim() || address),
    issuer: caCert.subject,
    spki: key.spki,
    validityDays: opts.validityDays ?? 730,
    now: opts.now ?? new Date(),
    signer: { pkcs8: opts.ca.keyPkcs8, spki: ca.spki },
    extensions,
  });
  return { certDer, keyPkcs8: key.pkcs8 };
}
