/**
 * Issue 17: the S/MIME certificate file the supervisor publishes for the portal's key server
 * (keystore/public.ts) and the portal's reader of it (portal/cert-file.ts): what is published
 * (our users' usable certificates with the chain the store can prove), how the file is checked
 * when read back, and that a replaced file is read again.
 */
import { stat, writeFile } from 'node:fs/promises';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  decodePublicCertificates, encodePublicCertificates, publicCertificates, publicCertificatesFile, publishPublicCertificates, PublicFileError,
  type PublicCertificateSource,
} from '../../../src/keystore/public.js';
import { createCa, EKU_EMAIL_PROTECTION, issueSmimeCertificate, parseCertificate, type CertInfo } from '../../../src/pki/index.js';
import { PublicCertificateFile } from '../../../src/portal/cert-file.js';
import { tempDir } from '../../helpers/config.js';

const DAY = 86_400_000;
type Stored = Awaited<ReturnType<PublicCertificateSource['listCertificates']>>[number];

const stored = (c: CertInfo, over: Partial<Stored> = {}): Stored => ({
  fingerprint: c.fingerprint, der: c.der, subject: c.subject, issuer: c.issuer, serial: c.serial, emails: c.emails,
  notBefore: c.notBefore, notAfter: c.notAfter, isCA: c.isCA, trusted: false, extKeyUsage: c.extKeyUsage ?? null, hasPrivateKey: true, ...over,
});

let ca: CertInfo;
let decoy: CertInfo;
let alice: CertInfo;
let aliceOld: CertInfo;
let expired: CertInfo;
let bob: CertInfo;

beforeAll(async () => {
  const caMaterial = await createCa({ commonName: 'Example CA', keyType: 'ec-p256', now: new Date(Date.now() - 30 * DAY) });
  ca = parseCertificate(caMaterial.certDer);
  // Same name, another key: must never stand in the chain.
  decoy = parseCertificate((await createCa({ commonName: 'Example CA', keyType: 'ec-p256' })).certDer);
  const issue = async (address: string, daysAgo: number, validityDays = 365) =>
    parseCertificate((await issueSmimeCertificate({ ca: caMaterial, address, keyType: 'ec-p256', now: new Date(Date.now() - daysAgo * DAY), validityDays })).certDer);
  alice = await issue('alice@example.com', 1);
  aliceOld = await issue('Alice@example.com', 20);
  expired = await issue('carol@example.com', 25, 10);
  bob = await issue('bob@example.com', 1);
}, 30_000);

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('postern-certfile-')));
afterEach(() => cleanup());

describe('the published certificate file', () => {
  it('holds our users\' usable certificates, each with its proven chain, and nothing else', async () => {
    expect(alice.extKeyUsage).toContain(EKU_EMAIL_PROTECTION);
    const source: PublicCertificateSource = {
      listCertificates: async () => [
        stored(decoy, { trusted: true }),
        stored(ca, { trusted: true }),
        stored(alice),
        stored(aliceOld),
        stored(expired),
        stored(bob, { hasPrivateKey: false }), // a correspondent's: we cannot decrypt for it
        stored(parseCertificate(alice.der), { fingerprint: 'f'.repeat(64), emails: [] }), // names no address
      ],
      revocationOf: async (issuer, serial) => (issuer === ca.fingerprint && serial === aliceOld.serial ? { revokedAt: new Date() } : undefined),
    };
    const doc = decodePublicCertificates(await publicCertificates(source));
    expect(doc.certificates.map((c) => c.fingerprint)).toEqual([alice.fingerprint]);
    expect(doc.certificates[0]!.chain).toEqual([ca.fingerprint]);
    expect(doc.authorities.map((a) => a.fingerprint)).toEqual([ca.fingerprint]);
    // Not revoked: both of Alice's, newest first when read by address (any spelling).
    const unrevoked = { ...source, revocationOf: async () => undefined };
    await publishPublicCertificates(unrevoked, { data_dir: dir });
    const file = new PublicCertificateFile(publicCertificatesFile({ data_dir: dir }));
    expect((await file.certificatesFor('ALICE@Example.com')).map((c) => c.fingerprint)).toEqual([alice.fingerprint, aliceOld.fingerprint]);
    expect((await file.authority(ca.fingerprint))?.der.equals(ca.der)).toBe(true);
    expect(await file.authority(decoy.fingerprint)).toBeUndefined();
    expect(await file.certificatesFor('bob@example.com')).toEqual([]);
  });

  it('owner-only without a group, the same bytes left alone, a replaced file read again', async () => {
    const file = publicCertificatesFile({ data_dir: dir });
    const reader = new PublicCertificateFile(file);
    expect(await reader.certificatesFor('alice@example.com')).toEqual([]);
    const one = { listCertificates: async () => [stored(ca), stored(alice)] };
    const bytes = await publishPublicCertificates(one, { data_dir: dir });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const ino = (await stat(file)).ino;
    expect(await publishPublicCertificates(one, { data_dir: dir }, { previous: bytes })).toBe(bytes);
    expect((await stat(file)).ino).toBe(ino);
    expect((await reader.certificatesFor('alice@example.com')).length).toBe(1);
    await publishPublicCertificates({ listCertificates: async () => [stored(ca), stored(alice), stored(bob)] }, { data_dir: dir });
    expect((await reader.certificatesFor('bob@example.com')).map((c) => c.fingerprint)).toEqual([bob.fingerprint]);
  });

  it('refuses a damaged file, naming it: a DER that is not its fingerprint\'s, a chain naming no authority', async () => {
    const good = JSON.parse(encodePublicCertificates({
      certificates: [{ fingerprint: alice.fingerprint, addresses: ['alice@example.com'], subject: alice.subject, issuer: alice.issuer, serial: alice.serial, notBefore: alice.notBefore, notAfter: alice.notAfter, der: alice.der, chain: [ca.fingerprint] }],
      authorities: [{ fingerprint: ca.fingerprint, subject: ca.subject, der: ca.der }],
    }).toString());
    const bad = (doc: unknown) => () => decodePublicCertificates(Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc)), 'F');
    expect(bad(good)).not.toThrow();
    expect(bad('[')).toThrow(PublicFileError);
    expect(bad({ ...good, version: 2 })).toThrow(/^F: not a postern-smime-certificates file, version 1$/);
    expect(bad({ ...good, certificates: [{ ...good.certificates[0], der: bob.der.toString('base64') }] })).toThrow(/^F: certificate 0 is malformed$/);
    expect(bad({ ...good, certificates: [{ ...good.certificates[0], chain: [decoy.fingerprint] }] })).toThrow(/certificate 0 is malformed/);
    expect(bad({ ...good, certificates: [{ ...good.certificates[0], serial: '../x' }] })).toThrow(/certificate 0 is malformed/);
    expect(bad({ ...good, authorities: [{ ...good.authorities[0], der: 'not base64!' }] })).toThrow(/^F: authority 0 is malformed$/);
    const file = publicCertificatesFile({ data_dir: dir });
    await publishPublicCertificates({ listCertificates: async () => [] }, { data_dir: dir });
    await writeFile(file, '{"format":"something else"}');
    await expect(new PublicCertificateFile(file).certificatesFor('alice@example.com')).rejects.toThrow(PublicFileError);
  });
});
