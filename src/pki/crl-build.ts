/**
 * The internal CA's own CRL (RFC 5280 §5): a signed v2 CRL with authorityKeyIdentifier,
 * cRLNumber and reason codes, built from the revocations `postern ca revoke` recorded. Input is
 * ours (the keystore), not untrusted; the issuer's private key is a secret the caller zeroes.
 */
import { webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CRL_EXT as EXT } from './crl.js';
import { pkijsCertificate } from './ocsp.js';
import { CRL_REASON_CODES, RevocationError } from './rev-types.js';
import type { CertInfo } from './types.js';
import { ensurePkijsEngine } from './x509.js';

ensurePkijsEngine();

const ab = (b: Uint8Array): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/** DER INTEGER content of a positive number given as hex (CertInfo.serial) or a bigint. */
function positiveInteger(v: string | bigint): asn1js.Integer {
  let hex = typeof v === 'bigint' ? v.toString(16) : v.toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) throw new RevocationError(`not a hex serial number: ${JSON.stringify(v)}`);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  return new asn1js.Integer({ valueHex: ab(Buffer.from(hex, 'hex')) });
}

export interface CrlBuildEntry {
  /** Lower-case hex, as CertInfo.serial. */
  serial: string;
  revokedAt: Date;
  /** A CRLReason name; 'unspecified' or undefined writes no reasonCode (RFC 5280 §5.3.1). */
  reason?: string;
}

export interface CrlBuildOptions {
  issuer: CertInfo;
  /** Unencrypted PKCS#8 of the issuer (a secret: the caller zeroes it). */
  issuerKey: Buffer;
  entries: CrlBuildEntry[];
  thisUpdate: Date;
  nextUpdate: Date;
  /** Must grow with every CRL issued (RFC 5280 §5.2.3). */
  crlNumber: bigint;
}

const time = (d: Date) => new pkijs.Time({ type: d.getUTCFullYear() >= 2050 ? 1 : 0, value: d });

/** A signed v2 CRL (DER) with authorityKeyIdentifier, cRLNumber and reason codes. */
export async function buildCrl(o: CrlBuildOptions): Promise<Buffer> {
  const issuer = pkijsCertificate(o.issuer);
  const crl = new pkijs.CertificateRevocationList();
  crl.version = 1;
  crl.issuer = issuer.subject;
  crl.thisUpdate = time(o.thisUpdate);
  crl.nextUpdate = time(o.nextUpdate);
  if (o.entries.length) {
    crl.revokedCertificates = o.entries.map((e) => {
      const code = e.reason ? CRL_REASON_CODES[e.reason] : undefined;
      if (e.reason && code === undefined) throw new RevocationError(`unknown revocation reason ${JSON.stringify(e.reason)}`);
      return new pkijs.RevokedCertificate({
        userCertificate: positiveInteger(e.serial),
        revocationDate: time(e.revokedAt),
        ...(code ? { crlEntryExtensions: new pkijs.Extensions({ extensions: [new pkijs.Extension({ extnID: EXT.reasonCode, critical: false, extnValue: new asn1js.Enumerated({ value: code }).toBER(false) })] }) } : {}),
      });
    });
  }
  const exts = [new pkijs.Extension({ extnID: EXT.crlNumber, critical: false, extnValue: positiveInteger(o.crlNumber).toBER(false) })];
  if (o.issuer.subjectKeyId) {
    const aki = new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: ab(Buffer.from(o.issuer.subjectKeyId, 'hex')) }) });
    exts.unshift(new pkijs.Extension({ extnID: EXT.aki, critical: false, extnValue: aki.toSchema().toBER(false) }));
  }
  crl.crlExtensions = new pkijs.Extensions({ extensions: exts });
  const { key, hash } = await signingKey(o.issuerKey, o.issuer);
  await crl.sign(key as unknown as Parameters<pkijs.CertificateRevocationList['sign']>[0], hash);
  return Buffer.from(crl.toSchema(true).toBER(false));
}

/** The same choice of algorithm as the internal CA's certificates (ca.ts): ECDSA with a hash of the curve's size, else RSA PKCS#1 v1.5 SHA-256. */
async function signingKey(pkcs8: Buffer, issuer: CertInfo): Promise<{ key: webcrypto.CryptoKey; hash: string }> {
  const curve = issuer.key.curve;
  if (issuer.key.algorithm === 'ec' && (curve === 'P-256' || curve === 'P-384')) {
    return { key: await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: curve }, false, ['sign']), hash: curve === 'P-256' ? 'SHA-256' : 'SHA-384' };
  }
  if (issuer.key.algorithm !== 'rsa') throw new RevocationError(`cannot sign a CRL with a ${issuer.key.algorithm} key`);
  return { key: await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']), hash: 'SHA-256' };
}
