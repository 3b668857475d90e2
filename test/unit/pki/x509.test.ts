/**
 * parseCertificate against real certificates (RFC 9216, RFC 4134, Thunderbird's NSS set) and
 * certificates made here with openssl, which is also the oracle for DNs, serials and fingerprints.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EKU_EMAIL_PROTECTION, parseCertificate, PkiError } from '../../../src/pki/index.js';

const run = promisify(execFile);
const CORPORA = resolve(import.meta.dirname, '../../../../shared/corpora');
const RFC9216 = join(CORPORA, 'rfc9216-smime-example-keys/certs-from-wbond-certvalidator');
const RFC4134 = join(CORPORA, 'rfc4134-examples-of-smime');
const TB = join(CORPORA, 'thunderbird-comm-central/derived-pem');

const pemToDer = (pem: string) => Buffer.from(pem.split('-----')[2]!.replace(/\s+/g, ''), 'base64');
const readPemCert = async (file: string) => pemToDer(await readFile(file, 'utf8'));
const openssl = async (...args: string[]) => (await run('openssl', args)).stdout;

describe('parseCertificate', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-x509-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the RFC 9216 Alice signing certificate', async () => {
    const file = join(RFC9216, 'alice@smime.example.sig.pem');
    const c = parseCertificate(await readPemCert(file));
    expect(c.subject).toBe('CN=Alice Lovelace,OU=LAMPS WG,O=IETF');
    expect(c.issuer).toBe('CN=Sample LAMPS RSA Certification Authority,OU=LAMPS WG,O=IETF');
    expect(c.serial).toBe('37410579ed757f42a9a25c3af4f86ace9aa9d7');
    expect(c.emails).toEqual(['alice@smime.example']);
    expect(c.keyUsage).toEqual(['digitalSignature', 'nonRepudiation']);
    expect(c.extKeyUsage).toEqual([EKU_EMAIL_PROTECTION]);
    expect(c.isCA).toBe(false);
    expect(c.selfIssued).toBe(false);
    expect(c.key).toMatchObject({ algorithm: 'rsa', bits: 2048 });
    expect(c.subjectKeyId).toBe('bbf6ccb22d1d06121c97ae296a9010d320666673');
    expect(c.authorityKeyId).toBe('91308e7c07170ca7f1092865361a671c6876f459');
    expect(c.notBefore.toISOString()).toBe('2019-11-20T06:54:18.000Z');
    expect(c.notAfter.toISOString()).toBe('2052-09-27T06:54:18.000Z');
    const fp = (await openssl('x509', '-in', file, '-noout', '-fingerprint', '-sha256')).split('=')[1]!.trim().replace(/:/g, '').toLowerCase();
    expect(c.fingerprint).toBe(fp);
    const spki = await run('sh', ['-c', `openssl x509 -in '${file}' -noout -pubkey | openssl pkey -pubin -outform DER | base64 -w0`]);
    expect(c.spki.toString('base64')).toBe(spki.stdout);
  });

  it('reads Ed25519 (RFC 9216 Carlos) and an RSA CA', async () => {
    const carlos = parseCertificate(await readPemCert(join(RFC9216, 'carlos@smime.example.sig.pem')));
    expect(carlos.key.algorithm).toBe('ed25519');
    expect(carlos.emails).toEqual(['carlos@smime.example']);
    const ca = parseCertificate(await readPemCert(join(RFC9216, 'Sample_LAMPS_RSA_Certification_Authority.selfsigned.pem')));
    expect(ca).toMatchObject({ isCA: true, selfIssued: true, keyUsage: ['keyCertSign', 'cRLSign'], extKeyUsage: null });
  });

  it('reads the subject emailAddress of the NSS certificates (EC P-384)', async () => {
    const c = parseCertificate(await readPemCert(join(TB, 'Alice-ec.cert.pem')));
    expect(c.emails).toEqual(['Alice-ec@example.com']);
    expect(c.key).toMatchObject({ algorithm: 'ec', curve: 'P-384', bits: 384 });
    expect(c.keyUsage).toBeNull();
    expect(c.subject).toBe((await openssl('x509', '-in', join(TB, 'Alice-ec.cert.pem'), '-noout', '-subject', '-nameopt', 'RFC2253')).replace(/^subject=/, '').trim());
  });

  it('reads the RFC 4134 DER certificates, DSA ones included', async () => {
    const carl = parseCertificate(await readFile(join(RFC4134, 'CarlRSASelf.cer')));
    expect(carl).toMatchObject({ subject: 'CN=CarlRSA', isCA: true, selfIssued: true, key: { algorithm: 'rsa', bits: 1024 } });
    const alice = parseCertificate(await readFile(join(RFC4134, 'AliceDSSSignByCarlNoInherit.cer')));
    expect(alice).toMatchObject({ emails: ['AliceDSS@example.com'], key: { algorithm: 'dsa', bits: 1024 } });
    // Diane's DSA key inherits its parameters from Carl: no size, but still recognised as DSA.
    const diane = parseCertificate(await readFile(join(RFC4134, 'DianeDSSSignByCarlInherit.cer')));
    expect(diane.key.algorithm).toBe('dsa');
    expect(diane.key.bits).toBeUndefined();
  });

  it('reads every field of an openssl-made certificate, and writes DNs as openssl RFC2253 does', async () => {
    const cnf = join(dir, 'full.cnf');
    await writeFile(
      cnf,
      [
        '[req]', 'distinguished_name=dn', '[dn]', '[ext]',
        'basicConstraints=critical,CA:TRUE,pathlen:2',
        'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
        'extendedKeyUsage=emailProtection,clientAuth',
        'subjectAltName=email:Bob.Smith@Example.COM,email:bob.smith@example.com,email:second@EXAMPLE.org,DNS:example.org',
        'crlDistributionPoints=URI:http://crl.example.com/ca.crl',
        'authorityInfoAccess=OCSP;URI:http://ocsp.example.com/,caIssuers;URI:http://ca.example.com/ca.cer',
        'subjectKeyIdentifier=hash',
      ].join('\n'),
    );
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'full.key'), '-out', join(dir, 'full.pem'),
      '-config', cnf, '-extensions', 'ext', '-days', '30', '-set_serial', '0x00ff01', '-multivalue-rdn',
      '-subj', '/C=DE/O=Example\\, Inc./OU=Mail+OU=Gateway/CN=Bob #1/emailAddress=Bob.Smith@Example.COM');
    const file = join(dir, 'full.pem');
    const c = parseCertificate(await readPemCert(file));
    const expected = (await openssl('x509', '-in', file, '-noout', '-subject', '-nameopt', 'RFC2253')).replace(/^subject=/, '').trim();
    expect(c.subject).toBe(expected);
    expect(c.subject).toBe('emailAddress=Bob.Smith@Example.COM,CN=Bob #1,OU=Gateway+OU=Mail,O=Example\\, Inc.,C=DE');
    expect(c.selfIssued).toBe(true);
    expect(c.serial).toBe('ff01');
    // Domain lower-cased, local part kept, duplicates (subject emailAddress = SAN) removed.
    expect(c.emails).toEqual(['Bob.Smith@example.com', 'bob.smith@example.com', 'second@example.org']);
    expect(c).toMatchObject({ isCA: true, pathLength: 2, keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'] });
    expect(c.extKeyUsage).toEqual([EKU_EMAIL_PROTECTION, '1.3.6.1.5.5.7.3.2']);
    expect(c.crlUrls).toEqual(['http://crl.example.com/ca.crl']);
    expect(c.ocspUrls).toEqual(['http://ocsp.example.com/']);
    expect(c.caIssuerUrls).toEqual(['http://ca.example.com/ca.cer']);
    expect(c.key).toMatchObject({ algorithm: 'ec', curve: 'P-256' });
    expect(c.subjectKeyId).toMatch(/^[0-9a-f]{40}$/);
  });

  it('keeps UTF-8 names readable and escapes like openssl -nameopt RFC2253,-esc_msb', async () => {
    const file = join(dir, 'utf8.pem');
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'utf8.key'), '-out', file,
      '-days', '1', '-utf8', '-subj', '/O=a;b<c>/CN=Jürgen = Ünïcode \\"x\\" ');
    const c = parseCertificate(await readPemCert(file));
    const expected = (await openssl('x509', '-in', file, '-noout', '-subject', '-nameopt', 'RFC2253,-esc_msb')).replace(/^subject=/, '').replace(/\n$/, '');
    expect(c.subject).toBe(expected);
    expect(c.subject.startsWith('CN=Jürgen = Ünïcode')).toBe(true);
  });

  it('refuses garbage, truncated DER and trailing data with a PkiError', async () => {
    const der = await readFile(join(RFC4134, 'CarlRSASelf.cer'));
    const bad = [Buffer.alloc(0), Buffer.from('hello world'), der.subarray(0, der.length - 10), der.subarray(0, 40), Buffer.concat([der, Buffer.from([0])]), Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01])];
    for (const b of bad) {
      expect(() => parseCertificate(b)).toThrow(PkiError);
      expect(() => parseCertificate(b)).toThrow(/^not an X\.509 certificate: /);
    }
    expect(() => parseCertificate(der.subarray(0, der.length - 10))).toThrow(/truncated/);
    expect(() => parseCertificate(Buffer.concat([der, Buffer.from([0])]))).toThrow(/trailing data/);
  });

  it('never crashes on random mutations of a certificate', async () => {
    const der = await readPemCert(join(RFC9216, 'alice@smime.example.sig.pem'));
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 500; i++) {
      const m = Buffer.from(der);
      for (let j = 0; j < 3; j++) m[rnd() % m.length] = rnd() & 0xff;
      try {
        parseCertificate(m);
      } catch (err) {
        expect(err).toBeInstanceOf(PkiError);
      }
    }
  });
});
