/**
 * Enveloped messages written by others (Thunderbird/NSS, OpenSSL, CryptoSys for RFC 9216's
 * examples, RFC 4134): Postern decrypts them to the bytes their authors (or openssl) say, and
 * refuses the ones it cannot do with 'unsupported' or 'no-recipient', never a crash. Read in
 * place from ../shared/corpora (see its README for sources and licences).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SmimeError } from '../../../src/smime/errors.js';
import { decrypt, envelopeRecipients } from '../../../src/smime/decrypt.js';
import { prepareDecryptionKey, prepareRecipient } from '../../../src/smime/recipient-keys.js';
import { rejection } from '../../helpers/rejection.js';
import { mimeBodyDer, pemCertDer, pemKeyPkcs8 } from '../../helpers/smime-env-pki.js';

const CORPORA = join(import.meta.dirname, '../../../../shared/corpora');
const TB = join(CORPORA, 'thunderbird-comm-central');
const LAMPS = join(CORPORA, 'rfc9216-smime-example-keys/keys-and-cms-from-davidi67-examples-cms');
const RFC4134 = join(CORPORA, 'rfc4134-examples-of-smime');
const pem = (name: string) => prepareDecryptionKey(pemCertDer(join(TB, 'derived-pem', `${name}.cert.pem`)), pemKeyPkcs8(join(TB, 'derived-pem', `${name}.key.pem`)));

describe('Thunderbird smime-interop: six OpenSSL-made messages to Fran', () => {
  const fran = pem('Fran');
  const franEc = pem('Fran-ec');
  const files = readdirSync(join(TB, 'smime-interop')).filter((f) => f.endsWith('.env'));
  it('has the six files', () => expect(files).toHaveLength(6));
  it.each(files)('%s decrypts to "This is a test message to Fran."', async (file) => {
    const der = mimeBodyDer(readFileSync(join(TB, 'smime-interop', file)));
    const out = await decrypt(der, [fran, franEc]);
    expect(out.content.toString('utf8')).toContain('This is a test message to Fran.');
    expect(out.recipientFingerprint).toBe(file.startsWith('fran-ec') ? franEc.fingerprint : fran.fingerprint);
    expect(out.keyTransport).toMatch(file.startsWith('fran-ec') ? /^ECDH P-/ : /^RSA-OAEP/);
  });
});

describe('Thunderbird mailnews-test-data-smime: every enveloped .eml, with Bob\'s key', () => {
  const bob = pem('Bob');
  const bobDer = pemCertDer(join(TB, 'derived-pem/Bob.cert.pem'));
  const dir = join(TB, 'mailnews-test-data-smime');
  const files = readdirSync(dir).filter((f) => f.endsWith('.eml') && /smime-type=enveloped-data/.test(readFileSync(join(dir, f), 'latin1').split(/\r?\n\r?\n/)[0]!));
  it('alice.env.eml decrypts to "This is a test message from Alice to Bob."', async () => {
    const out = await decrypt(mimeBodyDer(readFileSync(join(dir, 'alice.env.eml'))), [bob]);
    expect(out.content.toString()).toContain('This is a test message from Alice to Bob.');
    expect(out.keyTransport).toBe('RSA PKCS#1 v1.5');
  });
  it.each(files)('%s: the same bytes as openssl cms -decrypt', async (file) => {
    const der = mimeBodyDer(readFileSync(join(dir, file)));
    const expected = execFileSync('openssl', ['cms', '-decrypt', '-binary', '-inform', 'DER', '-inkey', join(TB, 'derived-pem/Bob.key.pem')], { input: der, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = await decrypt(der, [bob]);
    expect(out.content.equals(expected)).toBe(true);
    expect(out.recipientFingerprint).toBe(prepareRecipient(bobDer).fingerprint);
  });
});

describe('RFC 9216 examples (draft-ireland-examples-cms)', () => {
  const bob = prepareDecryptionKey(pemCertDer(join(LAMPS, 'certs-and-keys/lamps-bob.encrypt.crt')), pemKeyPkcs8(join(LAMPS, 'certs-and-keys/lamps-bob.decrypt.p8.pem')));
  const p7m = (name: string) => readFileSync(join(LAMPS, 'binary-files', `${name}.p7m`));
  it.each(['encryptedForBobRSAOaep', 'encryptedForBobAndDana'])('%s decrypts with Bob\'s key to "This is some sample content."', async (name) => {
    const out = await decrypt(p7m(name), [bob]);
    expect(out.content.toString()).toBe('This is some sample content.');
    expect(out.keyTransport).toMatch(/^RSA-OAEP/);
  });
  it('ChaCha20-Poly1305 AuthEnvelopedData to Bob is unsupported, not a crash', async () => {
    const err = await rejection(decrypt(p7m('authEnvelopedForBobChaCha20Poly1305'), [bob]), SmimeError);
    expect(err.code).toBe('unsupported');
    expect(err.message).toContain('ChaCha20-Poly1305');
  });
  it('X25519 (HKDF) AuthEnvelopedData to Dana: not for Bob, and Dana\'s certificate cannot be used', async () => {
    const der = p7m('authEnvelopedForDanaX25519HKDF');
    expect((await rejection(decrypt(der, [bob]), SmimeError)).code).toBe('no-recipient');
    expect(envelopeRecipients(der)).toHaveLength(1);
    const dana = pemCertDer(join(LAMPS, 'certs-and-keys/lamps-dana.encrypt.crt'));
    expect(() => prepareRecipient(dana)).toThrowError(expect.objectContaining({ code: 'bad-key' }) as Error);
    expect(() => prepareDecryptionKey(dana, pemKeyPkcs8(join(LAMPS, 'certs-and-keys/lamps-dana.decrypt.p8.pem')))).toThrowError(expect.objectContaining({ code: 'bad-key' }) as Error);
  });
  it('the KEK recipient example is not addressed to any key Postern holds', async () => {
    expect((await rejection(decrypt(p7m('encryptedKekri'), [bob]), SmimeError)).code).toBe('no-recipient');
  });
  it('a SignedData example is unsupported here (it is not encrypted)', async () => {
    expect((await rejection(decrypt(p7m('signedByAliceRSA'), [bob]), SmimeError)).code).toBe('unsupported');
  });
  it('Bob\'s certificate is a recipient Postern encrypts to', () => {
    expect(prepareRecipient(pemCertDer(join(LAMPS, 'certs-and-keys/lamps-bob.encrypt.crt'))).keyKind).toBe('rsa');
  });
});

describe('RFC 4134 §5 enveloped examples', () => {
  const bob = prepareDecryptionKey(readFileSync(join(RFC4134, 'BobRSASignByCarl.cer')), readFileSync(join(RFC4134, 'BobPrivRSAEncrypt.pri')));
  it('5.1 (3DES, RSA PKCS#1) and 5.3 (S/MIME message) decrypt to ExContent', async () => {
    const expected = readFileSync(join(RFC4134, 'ExContent.bin'));
    expect((await decrypt(readFileSync(join(RFC4134, '5.1.bin')), [bob])).content.equals(expected)).toBe(true);
    expect((await decrypt(mimeBodyDer(readFileSync(join(RFC4134, '5.3.eml'))), [bob])).content.equals(expected)).toBe(true);
  });
  it('5.2 (RC2) is unsupported', async () => {
    const err = await rejection(decrypt(readFileSync(join(RFC4134, '5.2.bin')), [bob]), SmimeError);
    expect(err.code).toBe('unsupported');
    expect(err.message).toContain('RC2');
  });
});
