/**
 * Indirect CRLs (RFC 5280 §5.3.3) for the tests: `openssl ca` cannot write the certificateIssuer
 * entry extension, so these are built here with pkijs/asn1js directly (not with Postern's
 * crl-build.ts, which would make the code under test its own oracle) and signed with a key
 * openssl made. Tests cross-check each one with `openssl crl -text -verify`.
 */
import { readFile } from 'node:fs/promises';
import { webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

const ab = (b: Uint8Array): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
const pemBody = (pem: string, label: string) => Buffer.from(new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`).exec(pem)![1]!.replace(/\s+/g, ''), 'base64');
const certFrom = async (file: string) => pkijs.Certificate.fromBER(pemBody(await readFile(file, 'latin1'), 'CERTIFICATE'));

export interface IndirectEntry {
  /** Hex serial (CertInfo.serial). */
  serial: string;
  /** PEM file of the CA that issued the listed certificate: its subject goes into certificateIssuer. */
  issuerCertFile: string;
  /** CRLReason code (1 = keyCompromise). */
  reason?: number;
}

export async function buildIndirectCrl(o: {
  signerCertFile: string;
  signerKeyFile: string;
  /** The issuingDistributionPoint full name (where it is published). */
  idpUrl: string;
  entries: IndirectEntry[];
  /** false: the IDP omits indirectCRL (a CRL that claims nothing about other issuers). */
  indirect?: boolean;
  thisUpdate?: Date;
  nextUpdate?: Date;
  crlNumber?: number;
}): Promise<Buffer> {
  pkijs.setEngine('node-webcrypto', new pkijs.CryptoEngine({ name: 'node-webcrypto', crypto: webcrypto as unknown as pkijs.CryptoEngineParameters['crypto'] }));
  const signer = await certFrom(o.signerCertFile);
  const now = o.thisUpdate ?? new Date(Date.now() - 60_000);
  const crl = new pkijs.CertificateRevocationList();
  crl.version = 1;
  crl.issuer = signer.subject;
  crl.thisUpdate = new pkijs.Time({ type: 0, value: now });
  crl.nextUpdate = new pkijs.Time({ type: 0, value: o.nextUpdate ?? new Date(now.getTime() + 86_400_000) });
  const entries: pkijs.RevokedCertificate[] = [];
  for (const e of o.entries) {
    const issuer = await certFrom(e.issuerCertFile);
    const exts = [
      new pkijs.Extension({ extnID: '2.5.29.21', critical: false, extnValue: new asn1js.Enumerated({ value: e.reason ?? 1 }).toBER(false) }),
      new pkijs.Extension({
        extnID: '2.5.29.29', critical: true,
        extnValue: new pkijs.GeneralNames({ names: [new pkijs.GeneralName({ type: 4, value: issuer.subject })] }).toSchema().toBER(false),
      }),
    ];
    let hex = e.serial.length % 2 ? `0${e.serial}` : e.serial;
    if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
    entries.push(new pkijs.RevokedCertificate({
      userCertificate: new asn1js.Integer({ valueHex: ab(Buffer.from(hex, 'hex')) }),
      revocationDate: new pkijs.Time({ type: 0, value: now }),
      crlEntryExtensions: new pkijs.Extensions({ extensions: exts }),
    }));
  }
  if (entries.length) crl.revokedCertificates = entries;
  const idp = new pkijs.IssuingDistributionPoint({ distributionPoint: [new pkijs.GeneralName({ type: 6, value: o.idpUrl })], indirectCRL: o.indirect !== false });
  crl.crlExtensions = new pkijs.Extensions({
    extensions: [
      new pkijs.Extension({ extnID: '2.5.29.20', critical: false, extnValue: new asn1js.Integer({ value: o.crlNumber ?? 1 }).toBER(false) }),
      new pkijs.Extension({ extnID: '2.5.29.28', critical: true, extnValue: idp.toSchema().toBER(false) }),
    ],
  });
  const keyDer = pemBody(await readFile(o.signerKeyFile, 'latin1'), 'PRIVATE KEY');
  const key = await webcrypto.subtle.importKey('pkcs8', keyDer, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
  await crl.sign(key as unknown as Parameters<pkijs.CertificateRevocationList['sign']>[0], 'SHA-256');
  return Buffer.from(crl.toSchema(true).toBER(false));
}
