/**
 * CMS encryption against OpenSSL 3.0 `openssl cms`, the reference peer: what Postern encrypts,
 * openssl decrypts, and what openssl encrypts, Postern decrypts, byte for byte.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decrypt, envelopeRecipients } from '../../../src/smime/decrypt.js';
import { encrypt, type ContentCipher } from '../../../src/smime/encrypt.js';
import { prepareDecryptionKey, prepareRecipient, type SmimeDecryptionKey, type SmimeRecipient } from '../../../src/smime/recipient-keys.js';
import { makeEnvPki, opensslDecrypt, opensslEncrypt, run, type EnvIdentity, type EnvPki } from '../../helpers/smime-env-pki.js';

let pki: EnvPki;
const recipient = new Map<string, SmimeRecipient>();
const key = new Map<string, SmimeDecryptionKey>();
const R = (who: EnvIdentity) => recipient.get(who.name)!;
const K = (who: EnvIdentity) => key.get(who.name)!;
const CONTENT = Buffer.from('Content-Type: text/plain; charset=utf-8\r\n\r\nGr\u00fc\u00dfe aus Postern \u2014 ' + 'x'.repeat(300) + '\r\n', 'utf8');

beforeAll(() => {
  pki = makeEnvPki();
  for (const who of [pki.rsa, pki.rsa2, pki.p256, pki.p384, pki.p521]) {
    recipient.set(who.name, prepareRecipient(who.certDer));
    key.set(who.name, prepareDecryptionKey(who.certDer, who.pkcs8));
  }
});
afterAll(() => pki?.cleanup());

describe('Postern encrypts, openssl cms -decrypt reads it', () => {
  const cases: [string, () => EnvIdentity, ContentCipher, 'pkcs1' | 'oaep' | undefined][] = [
    ['RSA PKCS#1, AES-256-CBC (the defaults)', () => pki.rsa, 'aes-256-cbc', undefined],
    ['RSA PKCS#1, AES-128-CBC', () => pki.rsa, 'aes-128-cbc', 'pkcs1'],
    ['RSA PKCS#1, AES-192-CBC', () => pki.rsa, 'aes-192-cbc', 'pkcs1'],
    ['RSA-OAEP SHA-256, AES-256-CBC', () => pki.rsa, 'aes-256-cbc', 'oaep'],
    ['RSA PKCS#1, AES-128-GCM (AuthEnvelopedData)', () => pki.rsa, 'aes-128-gcm', 'pkcs1'],
    ['RSA-OAEP, AES-256-GCM (AuthEnvelopedData)', () => pki.rsa, 'aes-256-gcm', 'oaep'],
    ['ECDH P-256, AES-128-CBC', () => pki.p256, 'aes-128-cbc', undefined],
    ['ECDH P-256, AES-256-CBC', () => pki.p256, 'aes-256-cbc', undefined],
    ['ECDH P-384, AES-256-CBC', () => pki.p384, 'aes-256-cbc', undefined],
    ['ECDH P-521, AES-256-CBC', () => pki.p521, 'aes-256-cbc', undefined],
    ['ECDH P-256, AES-128-GCM', () => pki.p256, 'aes-128-gcm', undefined],
    ['ECDH P-521, AES-256-GCM', () => pki.p521, 'aes-256-gcm', undefined],
  ];
  it.each(cases)('%s', async (_name, who, cipher, rsaPadding) => {
    const der = await encrypt(CONTENT, [R(who())], { cipher, ...(rsaPadding ? { rsaPadding } : {}) });
    expect(opensslDecrypt(pki, der, who()).equals(CONTENT)).toBe(true);
    const back = await decrypt(der, [K(who())]);
    expect(back.content.equals(CONTENT)).toBe(true);
    expect(back.structure).toBe(cipher.endsWith('gcm') ? 'authEnveloped-data' : 'enveloped-data');
    expect(back.authenticated).toBe(cipher.endsWith('gcm'));
    expect(back.cipher).toBe(cipher.toUpperCase());
  });

  it('openssl cms -cmsout -print sees the structure Postern claims (version, OIDs, no UKM)', async () => {
    const der = await encrypt(CONTENT, [R(pki.rsa), R(pki.p384)], { cipher: 'aes-256-gcm', rsaPadding: 'oaep' });
    const dump = run('openssl', ['cms', '-cmsout', '-print', '-inform', 'DER'], { input: der }).toString();
    expect(dump).toContain('id-smime-ct-authEnvelopedData');
    expect(dump).toContain('rsaesOaep');
    expect(dump).toContain('dhSinglePass-stdDH-sha384kdf-scheme');
    expect(dump).toContain('id-aes256-wrap');
    expect(dump).toMatch(/ukm: <ABSENT>/);
  });

  it('one message, four recipients (RSA, RSA, P-256, P-521): each decrypts it with openssl', async () => {
    const all = [pki.rsa, pki.rsa2, pki.p256, pki.p521];
    const der = await encrypt(CONTENT, all.map(R));
    for (const who of all) {
      expect(opensslDecrypt(pki, der, who).equals(CONTENT), who.name).toBe(true);
      expect((await decrypt(der, [K(who)])).recipientFingerprint).toBe(R(who).fingerprint);
    }
    expect(envelopeRecipients(der).map((r) => r.serial).sort()).toEqual(all.map((w) => R(w).serial).sort());
  });

  it('an empty and a 1 MiB binary content round-trip through openssl', async () => {
    for (const content of [Buffer.alloc(0), randomBytes(1 << 20)]) {
      const der = await encrypt(content, [R(pki.rsa)], { cipher: 'aes-128-gcm' });
      expect(opensslDecrypt(pki, der, pki.rsa).equals(content)).toBe(true);
      expect((await decrypt(der, [K(pki.rsa)])).content.equals(content)).toBe(true);
    }
  });
});

describe('openssl cms -encrypt writes it, Postern decrypts it', () => {
  const cases: [string, () => EnvIdentity, string[], string, string][] = [
    ['-aes256, RSA', () => pki.rsa, ['-aes256'], 'AES-256-CBC', 'RSA PKCS#1 v1.5'],
    ['-aes128, RSA', () => pki.rsa, ['-aes128'], 'AES-128-CBC', 'RSA PKCS#1 v1.5'],
    ['-des3, RSA', () => pki.rsa, ['-des3'], '3DES-CBC', 'RSA PKCS#1 v1.5'],
    ['-aes-256-gcm, RSA', () => pki.rsa, ['-aes-256-gcm'], 'AES-256-GCM', 'RSA PKCS#1 v1.5'],
    ['-aes-128-gcm, RSA', () => pki.rsa, ['-aes-128-gcm'], 'AES-128-GCM', 'RSA PKCS#1 v1.5'],
    ['OAEP SHA-1 (defaults)', () => pki.rsa, ['-aes256', '-keyopt', 'rsa_padding_mode:oaep'], 'AES-256-CBC', 'RSA-OAEP (SHA-1)'],
    ['OAEP SHA-256, MGF1-SHA-256', () => pki.rsa, ['-aes256', '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256', '-keyopt', 'rsa_mgf1_md:sha256'], 'AES-256-CBC', 'RSA-OAEP (SHA-256)'],
    ['OAEP SHA-256, MGF1-SHA-1', () => pki.rsa, ['-aes128', '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256', '-keyopt', 'rsa_mgf1_md:sha1'], 'AES-128-CBC', 'RSA-OAEP (SHA-256, MGF1-SHA-1)'],
    ['OAEP SHA-512 with a label, GCM', () => pki.rsa, ['-aes-256-gcm', '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha512', '-keyopt', 'rsa_oaep_label:0011223344'], 'AES-256-GCM', 'RSA-OAEP (SHA-512, label)'],
    ['ECDH P-256, -aes128 (openssl: SHA-1 KDF)', () => pki.p256, ['-aes128'], 'AES-128-CBC', 'ECDH P-256'],
    ['ECDH P-384, -aes256, SHA-384 KDF', () => pki.p384, ['-aes256', '-keyopt', 'ecdh_kdf_md:sha384'], 'AES-256-CBC', 'ECDH P-384'],
    ['ECDH P-521, -aes-256-gcm, SHA-512 KDF', () => pki.p521, ['-aes-256-gcm', '-keyopt', 'ecdh_kdf_md:sha512'], 'AES-256-GCM', 'ECDH P-521'],
    ['ECDH P-256, -des3', () => pki.p256, ['-des3'], '3DES-CBC', 'ECDH P-256'],
    ['RSA by subjectKeyIdentifier (-keyid)', () => pki.rsa, ['-aes256', '-keyid'], 'AES-256-CBC', 'RSA PKCS#1 v1.5'],
    ['ECDH by subjectKeyIdentifier (-keyid)', () => pki.p384, ['-aes256', '-keyid'], 'AES-256-CBC', 'ECDH P-384'],
  ];
  it.each(cases)('%s', async (_name, who, args, cipher, keyTransport) => {
    const der = opensslEncrypt(pki, CONTENT, [who()], args);
    const back = await decrypt(der, [K(pki.rsa2), K(who())]);
    expect(back.content.equals(CONTENT)).toBe(true);
    expect(back.cipher).toBe(cipher);
    expect(back.keyTransport).toBe(keyTransport);
    expect(back.recipientFingerprint).toBe(R(who()).fingerprint);
    expect(back.authenticated).toBe(cipher.endsWith('GCM'));
  });

  it('openssl -stream (indefinite-length BER, chunked content) to two recipients', async () => {
    const content = randomBytes(200_000);
    const der = opensslEncrypt(pki, content, [pki.rsa, pki.p256], ['-aes256', '-stream']);
    expect((await decrypt(der, [K(pki.p256)])).content.equals(content)).toBe(true);
    expect((await decrypt(der, [K(pki.rsa)])).content.equals(content)).toBe(true);
  });

  it('envelopeRecipients names issuer and serial, or the key id', () => {
    const der = opensslEncrypt(pki, CONTENT, [pki.rsa, pki.p256], ['-aes256']);
    const [a, b] = envelopeRecipients(der);
    expect(a).toEqual({ issuer: 'CN=Envelope Test CA,O=Postern Test', serial: R(pki.rsa).serial });
    expect(b).toEqual({ issuer: 'CN=Envelope Test CA,O=Postern Test', serial: R(pki.p256).serial });
    const byKeyId = envelopeRecipients(opensslEncrypt(pki, CONTENT, [pki.rsa], ['-aes256', '-keyid']));
    expect(byKeyId).toEqual([{ subjectKeyId: K(pki.rsa).subjectKeyId }]);
  });
});
