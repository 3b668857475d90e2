/**
 * Format detection for what admins import: PEM (any mix of blocks), DER certificates, PKCS#7
 * certs-only bundles, PKCS#12, and private keys (PKCS#8 plain or encrypted, PKCS#1, SEC1, legacy
 * encrypted PEM). Detection is by structure, not by file name (names lie); the name only decides
 * which reading is tried first. Node's crypto loads the keys, so key parsing is OpenSSL's.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import { PkiError } from './errors.js';
import { looksLikePkcs12, pbeDecrypt, readPkcs12 } from './pkcs12.js';
import type { CertInfo, ImportBundle, ImportFormat, PrivateKeyInfo } from './types.js';
import { children, decodeStrict, describeKeyObject, parseCertificate, publicKeysEqual, rawBytes } from './x509.js';

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';

function keyInfo(k: KeyObject): PrivateKeyInfo {
  if (k.type !== 'private') throw new PkiError('not a private key', 'invalid');
  return {
    pkcs8: k.export({ type: 'pkcs8', format: 'der' }),
    spki: createPublicKey(k).export({ type: 'spki', format: 'der' }),
    key: describeKeyObject(k),
  };
}

function loadPkcs8(der: Buffer): PrivateKeyInfo {
  try {
    return keyInfo(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('the private key does not load (unsupported algorithm or damaged PKCS#8)', 'invalid', { cause: err });
  }
}

function needPassword(password: string | undefined, what: string): string {
  if (password === undefined) throw new PkiError(`${what} is encrypted: give its password`, 'password-required');
  return password;
}

/**
 * EncryptedPrivateKeyInfo (DER). Decrypted here (PBES2 and the PKCS#12 PBEs, RC2 included) so a
 * wrong password is reported as such; what pbeDecrypt does not know (e.g. scrypt) goes to OpenSSL.
 */
function decryptPkcs8(der: Buffer, password: string | undefined): PrivateKeyInfo {
  const pw = needPassword(password, 'the private key');
  const [alg, data] = children(decodeStrict(der, 'encrypted private key'));
  if (!alg || !(data instanceof asn1js.OctetString)) throw new PkiError('malformed encrypted private key');
  let plain: Buffer;
  try {
    plain = pbeDecrypt(alg, Buffer.from(data.valueBlock.valueHexView), pw);
  } catch (err) {
    if (err instanceof PkiError && err.code === 'wrong-password') throw new PkiError('wrong password for the encrypted private key', 'wrong-password');
    if (!(err instanceof PkiError) || err.code !== 'unsupported') throw err;
    try {
      return keyInfo(createPrivateKey({ key: der, format: 'der', type: 'pkcs8', passphrase: pw }));
    } catch {
      // OpenSSL cannot tell a wrong password from an unknown scheme either; say both.
      throw new PkiError(`wrong password for the encrypted private key, or its encryption is not supported (${err.message})`, 'wrong-password');
    }
  }
  try {
    return loadPkcs8(plain);
  } catch (err) {
    // CBC padding lets about one wrong password in 256 through as garbage with valid padding:
    // garbage that is no key is that password's fault, not the file's (the container parsed).
    if (err instanceof PkiError && err.code === 'invalid') throw new PkiError('wrong password for the encrypted private key (it decrypts to no key)', 'wrong-password', { cause: err });
    throw err;
  } finally {
    plain.fill(0);
  }
}

/** DER keys without a label: try each unencrypted encoding Node knows. */
function loadDerKey(der: Buffer): PrivateKeyInfo | null {
  for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
    try {
      return keyInfo(createPrivateKey({ key: der, format: 'der', type }));
    } catch {
      // next encoding
    }
  }
  return null;
}

/** The certificates of a PKCS#7/CMS SignedData (certs-only bundles and signed messages alike). */
function pkcs7Certificates(root: asn1js.AsnType): CertInfo[] {
  const [type, content] = children(root);
  const oid = type instanceof asn1js.ObjectIdentifier ? type.valueBlock.toString() : '';
  if (oid !== OID_SIGNED_DATA) throw new PkiError(`PKCS#7 content ${oid || '(none)'} holds no certificates (only signedData does)`, 'unsupported');
  const signedData = children(content)[0];
  const certSet = children(signedData).find((n, i) => i >= 3 && n.idBlock.tagClass === 3 && n.idBlock.tagNumber === 0);
  // Only the plain Certificate choice (a SEQUENCE); attribute certificates and others are skipped.
  return children(certSet)
    .filter((n) => n instanceof asn1js.Sequence)
    .map((n) => parseCertificate(rawBytes(n)));
}

const isOid = (n: asn1js.AsnType | undefined, oid: string) => n instanceof asn1js.ObjectIdentifier && n.valueBlock.toString() === oid;

function looksLikeCertificate(root: asn1js.AsnType): boolean {
  const c = children(root);
  return root instanceof asn1js.Sequence && c.length === 3 && c[0] instanceof asn1js.Sequence && c[1] instanceof asn1js.Sequence && c[2] instanceof asn1js.BitString;
}

function looksLikeEncryptedPkcs8(root: asn1js.AsnType): boolean {
  const c = children(root);
  return root instanceof asn1js.Sequence && c.length === 2 && children(c[0])[0] instanceof asn1js.ObjectIdentifier && c[1] instanceof asn1js.OctetString;
}

function fromPkcs12(data: Buffer, password: string | undefined): ImportBundle {
  const { certificates, keys } = readPkcs12(data, password);
  try {
    return { certificates: certificates.map(parseCertificate), keys: keys.map(loadPkcs8), format: 'pkcs12', ignored: [] };
  } finally {
    keys.forEach((k) => k.fill(0));
  }
}

function parseDer(data: Buffer, opts: { password?: string; filename?: string }): ImportBundle {
  const bundle = (format: ImportFormat, certificates: CertInfo[], keys: PrivateKeyInfo[] = []): ImportBundle => ({ certificates, keys, format, ignored: [] });
  if (/\.(p12|pfx)$/i.test(opts.filename ?? '')) return fromPkcs12(data, opts.password);
  let root: asn1js.AsnType;
  try {
    root = decodeStrict(data, 'DER');
  } catch (err) {
    throw new PkiError(`unrecognised input: not PEM, and not a DER certificate, PKCS#7, PKCS#12 or key (${(err as Error).message})`, 'malformed', { cause: err });
  }
  if (looksLikePkcs12(root)) return fromPkcs12(data, opts.password);
  if (isOid(children(root)[0], OID_SIGNED_DATA) || isOid(children(root)[0], '1.2.840.113549.1.7.3')) return bundle('pkcs7', pkcs7Certificates(root));
  if (looksLikeCertificate(root)) return bundle('der', [parseCertificate(data)]);
  if (looksLikeEncryptedPkcs8(root)) return bundle('key', [], [decryptPkcs8(data, opts.password)]);
  const key = loadDerKey(data);
  if (key) return bundle('key', [], [key]);
  throw new PkiError('unrecognised input: DER, but not a certificate, PKCS#7, PKCS#12 or private key Postern can read');
}

// ---------------------------------------------------------------- PEM

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 #]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 #]+)-----/g;

function pemBody(label: string, body: string): Buffer {
  // RFC 1421 headers (Proc-Type, DEK-Info) end at the first blank line; only the rest is base64.
  const text = /^[A-Za-z-]+:/.test(body) ? body.slice(body.search(/\r?\n\r?\n/) + 1) : body;
  const b64 = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new PkiError(`PEM block "${label}" is not valid base64`);
  const der = Buffer.from(b64, 'base64');
  if (!der.length) throw new PkiError(`PEM block "${label}" is empty`);
  return der;
}

function parsePem(text: string, opts: { password?: string }): ImportBundle {
  const out: ImportBundle = { certificates: [], keys: [], format: 'pem', ignored: [] };
  let blocks = 0;
  let pkcs7Only = true;
  for (const m of text.matchAll(PEM_BLOCK)) {
    const [whole, label = '', body = '', endLabel] = m;
    if (label !== endLabel) throw new PkiError(`PEM block "${label}" ends with "END ${endLabel}"`);
    blocks++;
    if (label !== 'PKCS7' && label !== 'CMS') pkcs7Only = false;
    switch (label) {
      case 'CERTIFICATE':
      case 'X509 CERTIFICATE':
        out.certificates.push(parseCertificate(pemBody(label, body)));
        break;
      case 'TRUSTED CERTIFICATE': {
        // OpenSSL's trusted form: the certificate, then its trust settings; keep the certificate.
        const r = asn1js.fromBER(pemBody(label, body));
        if (r.offset === -1) throw new PkiError('not an X.509 certificate: invalid TRUSTED CERTIFICATE block');
        out.certificates.push(parseCertificate(rawBytes(r.result)));
        break;
      }
      case 'PKCS7':
      case 'CMS':
        out.certificates.push(...pkcs7Certificates(decodeStrict(pemBody(label, body), 'PKCS#7')));
        break;
      case 'PRIVATE KEY':
        out.keys.push(loadPkcs8(pemBody(label, body)));
        break;
      case 'ENCRYPTED PRIVATE KEY':
        out.keys.push(decryptPkcs8(pemBody(label, body), opts.password));
        break;
      case 'RSA PRIVATE KEY':
      case 'EC PRIVATE KEY':
      case 'DSA PRIVATE KEY': {
        // Traditional OpenSSL keys, possibly encrypted with RFC 1421 headers: OpenSSL reads them.
        const encrypted = /^Proc-Type:\s*4,\s*ENCRYPTED/m.test(body);
        const passphrase = encrypted ? needPassword(opts.password, `the ${label.toLowerCase()}`) : undefined;
        pemBody(label, body); // validates the base64
        try {
          out.keys.push(keyInfo(createPrivateKey({ key: whole, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) })));
        } catch (err) {
          throw encrypted
            ? new PkiError(`wrong password for the ${label.toLowerCase()} (or an unsupported cipher)`, 'wrong-password', { cause: err })
            : new PkiError(`the ${label.toLowerCase()} does not load (damaged or unsupported)`, 'invalid', { cause: err });
        }
        break;
      }
      default:
        out.ignored.push(label); // EC PARAMETERS, PUBLIC KEY, X509 CRL, …: nothing to import
    }
  }
  if (!blocks) throw new PkiError('PEM input without a complete BEGIN/END block');
  if (pkcs7Only) out.format = 'pkcs7';
  return out;
}

// ---------------------------------------------------------------- API

/**
 * Detect and parse an import: PEM (any number of CERTIFICATE, PKCS7, PRIVATE KEY, ENCRYPTED PRIVATE
 * KEY, RSA/EC PRIVATE KEY blocks incl. legacy Proc-Type encryption; text around them ignored), DER
 * certificate, DER or PEM PKCS#7 certs-only, PKCS#12, DER PKCS#8 / PKCS#1 / SEC1 keys. `password`
 * opens PKCS#12 files and encrypted keys; missing or wrong, it is a PkiError saying so.
 */
export async function parseImport(data: Buffer, opts: { password?: string; filename?: string } = {}): Promise<ImportBundle> {
  try {
    if (data.includes('-----BEGIN ')) return parsePem(data.toString('latin1'), opts);
    return parseDer(data, opts);
  } catch (err) {
    if (err instanceof PkiError) throw err;
    // Anything else is a bug on hostile input; report it as unreadable input, not a crash.
    throw new PkiError(`unreadable input (${(err as Error)?.message ?? String(err)})`, 'malformed', { cause: err });
  }
}

/** A certificate as one PEM block (64 columns), as openssl writes it. */
export function certificateToPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
}

/** Parse one private key (any encoding parseImport reads), or throw PkiError. */
export async function parsePrivateKey(data: Buffer, opts: { password?: string } = {}): Promise<PrivateKeyInfo> {
  const b = await parseImport(data, opts);
  if (b.keys.length !== 1) throw new PkiError(`expected one private key, found ${b.keys.length}`, 'invalid');
  return b.keys[0]!;
}

/** Whether the private key belongs to the certificate (same public key; RSA by modulus and exponent). */
export function keyMatchesCertificate(key: PrivateKeyInfo, cert: CertInfo): boolean {
  return publicKeysEqual(key.spki, cert.spki);
}
