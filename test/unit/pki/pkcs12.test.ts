/**
 * PKCS#12 reading (Thunderbird's NSS files: PBES2/AES; openssl -legacy files: 3DES keys and RC2-40
 * certificate bags) and writing, with openssl as the independent reader of what we export.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportPkcs12, keyMatchesCertificate, parseImport, PkiError } from '../../../src/pki/index.js';
import { rejection } from '../../helpers/rejection.js';

const run = promisify(execFile);
const CORPORA = resolve(import.meta.dirname, '../../../../shared/corpora');
const SMIME = join(CORPORA, 'thunderbird-comm-central/mailnews-test-data-smime');
const TB_PEM = join(CORPORA, 'thunderbird-comm-central/derived-pem');
const openssl = async (...args: string[]) => (await run('openssl', args)).stdout;
const pemToDer = (pem: string) => Buffer.from(pem.split('-----')[2]!.replace(/\s+/g, ''), 'base64');


describe('PKCS#12 import', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-p12-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads Thunderbird Alice.p12 (PBES2, AES, HMAC-SHA256) with password nss', async () => {
    const b = await parseImport(await readFile(join(SMIME, 'Alice.p12')), { password: 'nss', filename: 'Alice.p12' });
    expect(b.format).toBe('pkcs12');
    expect(b.keys).toHaveLength(1);
    expect(b.certificates.map((c) => c.emails[0] ?? c.subject)).toContain('Alice@example.com');
    const alice = b.certificates.find((c) => c.emails.includes('Alice@example.com'))!;
    expect(keyMatchesCertificate(b.keys[0]!, alice)).toBe(true);
    // The same key as openssl's export of it.
    const ref = createPrivateKey(await readFile(join(TB_PEM, 'Alice.key.pem'), 'utf8')).export({ type: 'pkcs8', format: 'der' });
    expect(b.keys[0]!.pkcs8.equals(ref)).toBe(true);
    expect(alice.der.equals(pemToDer(await readFile(join(TB_PEM, 'Alice.cert.pem'), 'utf8')))).toBe(true);
  });

  it('reads Alice-ec.p12 (EC P-384), detected without a file name', async () => {
    const b = await parseImport(await readFile(join(SMIME, 'Alice-ec.p12')), { password: 'nss' });
    expect(b.format).toBe('pkcs12');
    expect(b.keys[0]!.key).toMatchObject({ algorithm: 'ec', curve: 'P-384' });
    expect(b.certificates.some((c) => keyMatchesCertificate(b.keys[0]!, c))).toBe(true);
  });

  it('says so when the password is wrong or missing', async () => {
    const data = await readFile(join(SMIME, 'Alice.p12'));
    const wrong = await rejection(parseImport(data, { password: 'wrong', filename: 'Alice.p12' }), PkiError);
    expect(wrong.code).toBe('wrong-password');
    expect(wrong.message).toMatch(/wrong password/);
    expect(wrong.message).not.toContain('wrong"');
    const missing = await rejection(parseImport(data), PkiError);
    expect(missing.code).toBe('password-required');
    expect(missing.message).toMatch(/password-protected: give its password/);
  });

  it('reads legacy files: -legacy (3DES key, RC2-40 certificate bag) and PBE-SHA1-3DES with a SHA-1 MAC', async () => {
    const key = join(TB_PEM, 'Bob.key.pem');
    const cert = join(TB_PEM, 'Bob.cert.pem');
    const legacy = join(dir, 'legacy.p12');
    await openssl('pkcs12', '-export', '-legacy', '-inkey', key, '-in', cert, '-passout', 'pass:l3gacy', '-out', legacy);
    expect(await openssl('pkcs12', '-info', '-noout', '-legacy', '-in', legacy, '-passin', 'pass:l3gacy').catch((e) => String(e.stderr))).toBe('');
    const info = (await run('openssl', ['pkcs12', '-info', '-noout', '-legacy', '-in', legacy, '-passin', 'pass:l3gacy'])).stderr;
    expect(info).toMatch(/pbeWithSHA1And40BitRC2-CBC/);
    expect(info).toMatch(/Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC/);
    const tdes = join(dir, '3des.p12');
    await openssl('pkcs12', '-export', '-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1', '-inkey', key, '-in', cert, '-passout', 'pass:tr1ple', '-out', tdes);
    const ref = createPrivateKey(await readFile(key, 'utf8')).export({ type: 'pkcs8', format: 'der' });
    for (const [file, password] of [[legacy, 'l3gacy'], [tdes, 'tr1ple']] as const) {
      const b = await parseImport(await readFile(file), { password });
      expect(b.keys).toHaveLength(1);
      expect(b.keys[0]!.pkcs8.equals(ref)).toBe(true);
      expect(b.certificates).toHaveLength(1);
      expect(b.certificates[0]!.emails).toEqual(['Bob@example.com']);
      expect((await rejection(parseImport(await readFile(file), { password: 'nope' }), PkiError)).code).toBe('wrong-password');
    }
  });

  it('reads a PKCS#12 without a password (empty password) and a non-ASCII password', async () => {
    const key = join(TB_PEM, 'Fran.key.pem');
    const cert = join(TB_PEM, 'Fran.cert.pem');
    await openssl('pkcs12', '-export', '-inkey', key, '-in', cert, '-passout', 'pass:', '-out', join(dir, 'empty.p12'));
    const b = await parseImport(await readFile(join(dir, 'empty.p12')));
    expect(b.keys).toHaveLength(1);
    await openssl('pkcs12', '-export', '-legacy', '-inkey', key, '-in', cert, '-passout', 'pass:Grüße€', '-out', join(dir, 'utf8.p12'));
    expect((await parseImport(await readFile(join(dir, 'utf8.p12')), { password: 'Grüße€' })).keys).toHaveLength(1);
    await openssl('pkcs12', '-export', '-inkey', key, '-in', cert, '-passout', 'pass:Grüße€', '-out', join(dir, 'utf8-aes.p12'));
    expect((await parseImport(await readFile(join(dir, 'utf8-aes.p12')), { password: 'Grüße€' })).keys).toHaveLength(1);
  });

  it('refuses truncated and damaged PKCS#12 files with a PkiError', async () => {
    const data = await readFile(join(SMIME, 'Alice.p12'));
    for (const bad of [data.subarray(0, data.length - 1), data.subarray(0, 100), Buffer.concat([data, Buffer.from('x')])]) {
      expect((await rejection(parseImport(bad, { password: 'nss', filename: 'a.p12' }), PkiError)).code).toBe('malformed');
    }
    // A flipped byte inside the authenticated content fails the MAC, which reads as a wrong password.
    const flipped = Buffer.from(data);
    flipped[200] = flipped[200]! ^ 1;
    await rejection(parseImport(flipped, { password: 'nss' }), PkiError);
  });
});

describe('exportPkcs12', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-p12x-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a file openssl reads with the password (right key, all certificates) and refuses without it', async () => {
    const bundle = await parseImport(await readFile(join(SMIME, 'Alice.p12')), { password: 'nss' });
    const ca = await parseImport(await readFile(join(SMIME, 'TestCA.pem')));
    const alice = bundle.certificates.find((c) => keyMatchesCertificate(bundle.keys[0]!, c))!;
    const certificates = [alice, ...ca.certificates];
    const p12 = await exportPkcs12({ key: bundle.keys[0]!, certificates, password: 'exp0rt pass', friendlyName: 'Alice@example.com' });
    const file = join(dir, 'out.p12');
    await writeFile(file, p12);

    const info = (await run('openssl', ['pkcs12', '-info', '-noout', '-in', file, '-passin', 'pass:exp0rt pass'])).stderr;
    expect(info).toMatch(/MAC: sha256, Iteration 100000/);
    expect(info).toMatch(/Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 100000, PRF hmacWithSHA256/);

    const out = await openssl('pkcs12', '-in', file, '-passin', 'pass:exp0rt pass', '-nodes');
    const keyPem = out.match(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/)![0];
    expect(createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' }).equals(bundle.keys[0]!.pkcs8)).toBe(true);
    const certs = [...out.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => pemToDer(m[0]));
    expect(certs.map((c) => c.toString('hex')).sort()).toEqual(certificates.map((c) => c.der.toString('hex')).sort());
    expect(out).toMatch(/friendlyName: Alice@example.com/);

    await expect(run('openssl', ['pkcs12', '-in', file, '-passin', 'pass:wrong', '-nodes'])).rejects.toThrow(/mac verify failure|invalid password/i);

    // And we read our own output back.
    const back = await parseImport(p12, { password: 'exp0rt pass' });
    expect(back.keys[0]!.pkcs8.equals(bundle.keys[0]!.pkcs8)).toBe(true);
    expect(back.certificates).toHaveLength(certificates.length);
  });

  it('refuses an empty password and a key that belongs to none of the certificates', async () => {
    const bundle = await parseImport(await readFile(join(SMIME, 'Alice.p12')), { password: 'nss' });
    const bob = await parseImport(await readFile(join(TB_PEM, 'Bob.cert.pem')));
    await expect(exportPkcs12({ key: bundle.keys[0]!, certificates: bundle.certificates, password: '' })).rejects.toThrow(/non-empty password/);
    await expect(exportPkcs12({ key: bundle.keys[0]!, certificates: bob.certificates, password: 'x' })).rejects.toThrow(/none of the certificates/);
  });
});
