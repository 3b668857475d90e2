/**
 * parseImport on every format an admin may bring, each from a real file: the corpora (RFC 9216,
 * RFC 4134, Thunderbird) and files openssl makes here (bundles, p7b, encrypted and legacy keys).
 */
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyMatchesCertificate, parseImport, parsePrivateKey, PkiError } from '../../../src/pki/index.js';
import { rejection } from '../../helpers/rejection.js';

const run = promisify(execFile);
const CORPORA = resolve(import.meta.dirname, '../../../../shared/corpora');
const RFC9216 = join(CORPORA, 'rfc9216-smime-example-keys');
const RFC9216_CERTS = join(RFC9216, 'certs-from-wbond-certvalidator');
const RFC9216_KEYS = join(RFC9216, 'keys-and-cms-from-davidi67-examples-cms/certs-and-keys');
const RFC4134 = join(CORPORA, 'rfc4134-examples-of-smime');
const TB_PEM = join(CORPORA, 'thunderbird-comm-central/derived-pem');
const openssl = async (...args: string[]) => (await run('openssl', args)).stdout;


describe('parseImport', () => {
  let dir: string;
  const f = (name: string) => join(dir, name);
  const read = (name: string) => readFile(f(name));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-formats-'));
    await openssl('genrsa', '-out', f('rsa.pem'), '2048');
    await openssl('req', '-x509', '-new', '-key', f('rsa.pem'), '-subj', '/CN=Test/emailAddress=test@example.com', '-days', '2', '-out', f('rsa.crt'));
    await openssl('genrsa', '-aes256', '-passout', 'pass:s3cret', '-out', f('rsa-aes256.pem'), '2048');
    await openssl('rsa', '-in', f('rsa.pem'), '-aes128', '-traditional', '-passout', 'pass:s3cret', '-out', f('rsa-trad-enc.pem'));
    await openssl('rsa', '-in', f('rsa.pem'), '-traditional', '-outform', 'DER', '-out', f('rsa-pkcs1.der'));
    await openssl('pkcs8', '-topk8', '-in', f('rsa.pem'), '-v2', 'aes-256-cbc', '-passout', 'pass:s3cret', '-out', f('rsa-p8-enc.pem'));
    await openssl('pkcs8', '-topk8', '-in', f('rsa.pem'), '-v2', 'aes-128-cbc', '-passout', 'pass:s3cret', '-outform', 'DER', '-out', f('rsa-p8-enc.der'));
    await openssl('pkcs8', '-topk8', '-in', f('rsa.pem'), '-v1', 'PBE-SHA1-3DES', '-passout', 'pass:s3cret', '-out', f('rsa-p8-3des.pem'));
    await openssl('pkcs8', '-topk8', '-in', f('rsa.pem'), '-scrypt', '-passout', 'pass:s3cret', '-out', f('rsa-p8-scrypt.pem'));
    await openssl('ecparam', '-name', 'prime256v1', '-genkey', '-out', f('ec-sec1.pem'));
    await openssl('ec', '-in', f('ec-sec1.pem'), '-outform', 'DER', '-out', f('ec-sec1.der'));
    await openssl('crl2pkcs7', '-nocrl', '-certfile', join(TB_PEM, 'Alice.cert.pem'), '-certfile', join(TB_PEM, 'Bob.cert.pem'), '-out', f('bundle.p7b'));
    await openssl('crl2pkcs7', '-nocrl', '-certfile', join(TB_PEM, 'Alice.cert.pem'), '-certfile', join(TB_PEM, 'Bob.cert.pem'), '-outform', 'DER', '-out', f('bundle.p7c'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads PEM certificates with their keys (RFC 9216 Alice and Bob)', async () => {
    // RFC 9216's file holds the certificate and then its PKCS#8 key.
    const alice = await parseImport(await readFile(join(RFC9216_CERTS, 'alice@smime.example.sig.pem')));
    expect(alice.format).toBe('pem');
    expect(alice.certificates[0]!.emails).toEqual(['alice@smime.example']);
    expect(alice.keys).toHaveLength(1);
    const aliceKey = await parsePrivateKey(await readFile(join(RFC9216_KEYS, 'lamps-alice.p8.pem')));
    expect(aliceKey.key).toMatchObject({ algorithm: 'rsa', bits: 2048 });
    expect(aliceKey.pkcs8.equals(alice.keys[0]!.pkcs8)).toBe(true);
    expect(keyMatchesCertificate(aliceKey, alice.certificates[0]!)).toBe(true);

    const bob = Buffer.concat([await readFile(join(RFC9216_KEYS, 'lamps-bob.encrypt.crt')), await readFile(join(RFC9216_KEYS, 'lamps-bob.decrypt.p8.pem'))]);
    const b = await parseImport(bob);
    expect(b.certificates).toHaveLength(1);
    expect(b.keys).toHaveLength(1);
    expect(keyMatchesCertificate(b.keys[0]!, b.certificates[0]!)).toBe(true);
    expect(keyMatchesCertificate(b.keys[0]!, alice.certificates[0]!)).toBe(false);
    expect(keyMatchesCertificate(aliceKey, b.certificates[0]!)).toBe(false);
  });

  it('reads a PEM with several certificates and text around them, and skips other blocks', async () => {
    const text = Buffer.concat([
      Buffer.from('Bag Attributes\n    friendlyName: whatever\nsubject=...\n'),
      await readFile(join(RFC9216_CERTS, 'Sample_LAMPS_RSA_Certification_Authority.selfsigned.pem')),
      Buffer.from('\n# a comment between\n'),
      await readFile(join(RFC9216_CERTS, 'alice@smime.example.enc.pem')),
      await readFile(join(RFC9216_CERTS, 'bob@smime.example.sig.pem')),
      await read('ec-sec1.pem'), // EC PARAMETERS + EC PRIVATE KEY
      Buffer.from('trailing words\r\n'),
    ]);
    const b = await parseImport(text);
    expect(b.format).toBe('pem');
    expect(b.certificates.map((c) => c.subject)).toEqual([
      'CN=Sample LAMPS RSA Certification Authority,OU=LAMPS WG,O=IETF',
      'CN=Alice Lovelace,OU=LAMPS WG,O=IETF',
      'CN=Bob Babbage,OU=LAMPS WG,O=IETF',
    ]);
    expect(b.keys).toHaveLength(1);
    expect(b.ignored).toEqual(['EC PARAMETERS']);
  });

  it('reads DER certificates and DER PKCS#8 keys (RFC 4134, DSA included)', async () => {
    const cert = await parseImport(await readFile(join(RFC4134, 'AliceRSASignByCarl.cer')), { filename: 'AliceRSASignByCarl.cer' });
    expect(cert.format).toBe('der');
    expect(cert.certificates[0]!.emails).toEqual(['AliceRSA@example.com']);
    const key = await parseImport(await readFile(join(RFC4134, 'AlicePrivRSASign.pri')));
    expect(key.format).toBe('key');
    expect(keyMatchesCertificate(key.keys[0]!, cert.certificates[0]!)).toBe(true);
    const bobKey = await parsePrivateKey(await readFile(join(RFC4134, 'BobPrivRSAEncrypt.pri')));
    expect(keyMatchesCertificate(bobKey, cert.certificates[0]!)).toBe(false);

    const dsaCert = (await parseImport(await readFile(join(RFC4134, 'AliceDSSSignByCarlNoInherit.cer')))).certificates[0]!;
    const dsaKey = await parsePrivateKey(await readFile(join(RFC4134, 'AlicePrivDSSSign.pri')));
    expect(dsaKey.key.algorithm).toBe('dsa');
    expect(keyMatchesCertificate(dsaKey, dsaCert)).toBe(true);
  });

  it('reads the Thunderbird PEM exports (key with bag attributes before it)', async () => {
    const b = await parseImport(Buffer.concat([await readFile(join(TB_PEM, 'Fran-ec.cert.pem')), await readFile(join(TB_PEM, 'Fran-ec.key.pem'))]));
    expect(b.keys[0]!.key.algorithm).toBe('ec');
    expect(keyMatchesCertificate(b.keys[0]!, b.certificates[0]!)).toBe(true);
  });

  it('reads PKCS#7 certs-only bundles, PEM (.p7b) and DER (.p7c)', async () => {
    for (const name of ['bundle.p7b', 'bundle.p7c']) {
      const b = await parseImport(await read(name), { filename: name });
      expect(b.format).toBe('pkcs7');
      expect(b.certificates.map((c) => c.emails[0])).toEqual(['Alice@example.com', 'Bob@example.com']);
    }
    // A signed message is SignedData too: its certificates are importable (RFC 4134 4.2).
    const signed = await parseImport(await readFile(join(RFC4134, '4.2.bin')));
    expect(signed.certificates.length).toBeGreaterThan(0);
  });

  it('calls a wrong password wrong even when it decrypts to garbage with valid CBC padding (about 1 in 256)', async () => {
    // An EC key under PBES2/AES-256-CBC with the password "s3cret"; "wrong-336" was found to
    // unpad cleanly into bytes that are no PKCS#8 key (a random salt made the old test flaky).
    const pem = [
      '-----BEGIN ENCRYPTED PRIVATE KEY-----',
      'MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhTYbKIPMlUygICCAAw',
      'DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEENo7FTOh8CbaCx+xd7Uxlb0EgZAN',
      'mEKYEXBavalpwlA46ylJqlp9zWuuj1yJD04xIP0/O8zRB21ompNvSwc00GEYjTdC',
      'DqPDBI9/YrIJwdEYEffdZ2vtGKQBEVhWl1TWLKiZJeXqwwpxhWEXMqKv/Yyg/xE1',
      'gU/kfs8jIWUkzsuSaPWBTYzR9wqtrPloM8+BZY/e05WVVdUh2PFfdZ48YiQGgdg=',
      '-----END ENCRYPTED PRIVATE KEY-----',
      '',
    ].join('\n');
    expect((await parseImport(Buffer.from(pem), { password: 's3cret' })).keys).toHaveLength(1);
    const wrong = await rejection(parseImport(Buffer.from(pem), { password: 'wrong-336' }), PkiError);
    expect(wrong.code).toBe('wrong-password');
    expect(wrong.message).toMatch(/decrypts to no key/);
  });

  it('reads encrypted keys with the password, and says so without or with a wrong one', async () => {
    const cert = (await parseImport(await read('rsa.crt'))).certificates[0]!;
    for (const name of ['rsa-trad-enc.pem', 'rsa-p8-enc.pem', 'rsa-p8-enc.der', 'rsa-p8-3des.pem', 'rsa-p8-scrypt.pem']) {
      const data = await read(name);
      const b = await parseImport(data, { password: 's3cret' });
      expect(b.keys, name).toHaveLength(1);
      expect(keyMatchesCertificate(b.keys[0]!, cert), name).toBe(true);
      const missing = await rejection(parseImport(data), PkiError);
      expect(missing.code, name).toBe('password-required');
      expect(missing.message).toMatch(/encrypted: give its password/);
      const wrong = await rejection(parseImport(data, { password: 'wrong-one' }), PkiError);
      expect(wrong.code, name).toBe('wrong-password');
      expect(wrong.message).not.toContain('wrong-one');
    }
    const genrsa = await parseImport(await read('rsa-aes256.pem'), { password: 's3cret' });
    expect(genrsa.keys[0]!.key).toMatchObject({ algorithm: 'rsa', bits: 2048 });
    // The legacy "Proc-Type: 4,ENCRYPTED" header is what that file carries.
    expect((await read('rsa-trad-enc.pem')).toString()).toMatch(/Proc-Type: 4,ENCRYPTED/);
  });

  it('reads SEC1 EC keys (PEM and DER) and DER PKCS#1, exporting PKCS#8', async () => {
    const pem = await parseImport(await read('ec-sec1.pem'));
    expect(pem.keys[0]!.key).toMatchObject({ algorithm: 'ec', curve: 'P-256' });
    const der = await parseImport(await read('ec-sec1.der'));
    expect(der.format).toBe('key');
    expect(der.keys[0]!.pkcs8.equals(pem.keys[0]!.pkcs8)).toBe(true);
    expect(createPrivateKey({ key: der.keys[0]!.pkcs8, format: 'der', type: 'pkcs8' }).asymmetricKeyType).toBe('ec');

    const pkcs1 = await parseImport(await read('rsa-pkcs1.der'));
    expect(pkcs1.format).toBe('key');
    const ref = createPrivateKey(await read('rsa.pem')).export({ type: 'pkcs8', format: 'der' });
    expect(pkcs1.keys[0]!.pkcs8.equals(ref)).toBe(true);
  });

  it('turns garbage, truncated and hostile input into a PkiError, never a crash', async () => {
    const cert = await readFile(join(RFC4134, 'CarlRSASelf.cer'));
    const pem = await readFile(join(RFC9216_CERTS, 'alice@smime.example.sig.pem'), 'utf8');
    const inputs: Buffer[] = [
      Buffer.alloc(0),
      Buffer.from('just some text, no PEM'),
      Buffer.from([0xde, 0xad, 0xbe, 0xef]),
      cert.subarray(0, cert.length - 1),
      cert.subarray(0, 30),
      Buffer.from('-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n'),
      Buffer.from('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
      Buffer.from(pem.replace('-----END CERTIFICATE-----', '')),
      Buffer.from(pem.replace('-----END CERTIFICATE-----', '-----END PRIVATE KEY-----')),
      Buffer.from('-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n'),
      Buffer.from('-----BEGIN PKCS7-----\nMAMCAQA=\n-----END PKCS7-----\n'),
      Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), // claims a 4 GB SEQUENCE
      Buffer.from('3080308030800000000000', 'hex'),
    ];
    for (const input of inputs) await rejection(parseImport(input), PkiError);
    const truncated = await rejection(parseImport(cert.subarray(0, cert.length - 1), { filename: 'x.cer' }), PkiError);
    expect(truncated.message).toMatch(/^unrecognised input: .*truncated/);
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    const p7 = await read('bundle.p7c');
    for (let i = 0; i < 300; i++) {
      const m = Buffer.from(p7);
      m[rnd() % m.length] = rnd() & 0xff;
      await parseImport(m).catch((err) => expect(err).toBeInstanceOf(PkiError));
    }
  });
});
