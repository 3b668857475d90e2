/**
 * CMS encryption against gpgsm 2.2 (GnuPG's S/MIME), a second independent peer: it reads only RSA
 * PKCS#1 v1.5 with AES-CBC or 3DES, which is exactly Postern's default output.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decrypt } from '../../../src/smime/decrypt.js';
import { encrypt } from '../../../src/smime/encrypt.js';
import { prepareDecryptionKey, prepareRecipient, type SmimeDecryptionKey, type SmimeRecipient } from '../../../src/smime/recipient-keys.js';
import { gpgsmAvailable, gpgsmHome, type GpgsmHome } from '../../helpers/smime-env-gpgsm.js';
import { makeEnvPki, type EnvPki } from '../../helpers/smime-env-pki.js';

const version = gpgsmAvailable();
const CONTENT = Buffer.from('Content-Type: text/plain\r\n\r\nto gpgsm and back \u00e9\r\n', 'utf8');

describe(`Postern and ${version ?? 'gpgsm (not installed)'}`, () => {
  // An interop peer missing is a failure, not a skip: npm test installs it (scripts/setup-test-deps.sh).
  beforeAll(() => {
    if (!version) throw new Error('gpgsm is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
  });
  let pki: EnvPki;
  let gpg: GpgsmHome;
  let rsa: SmimeRecipient;
  let rsa2: SmimeRecipient;
  let rsaKey: SmimeDecryptionKey;

  beforeAll(() => {
    pki = makeEnvPki();
    gpg = gpgsmHome();
    gpg.import(pki.rsa, pki.ca.certPath);
    gpg.trust(pki.ca.certPath);
    rsa = prepareRecipient(pki.rsa.certDer);
    rsa2 = prepareRecipient(pki.rsa2.certDer);
    rsaKey = prepareDecryptionKey(pki.rsa.certDer, pki.rsa.pkcs8);
  }, 60_000);
  afterAll(() => {
    gpg?.close();
    pki?.cleanup();
  });

  it.each(['aes-256-cbc', 'aes-128-cbc'] as const)('Postern encrypts (RSA PKCS#1, %s), gpgsm --decrypt reads it', async (cipher) => {
    const der = await encrypt(CONTENT, [rsa], { cipher });
    expect(gpg.decrypt(der).equals(CONTENT)).toBe(true);
  });

  it('gpgsm decrypts a message Postern addressed to two recipients (its key is the second)', async () => {
    const content = randomBytes(70_000);
    expect(gpg.decrypt(await encrypt(content, [rsa2, rsa])).equals(content)).toBe(true);
  });

  it.each([
    ['default (AES-128)', [], 'AES-128-CBC'],
    ['--cipher-algo AES256', ['--cipher-algo', 'AES256'], 'AES-256-CBC'],
    ['--cipher-algo 3DES', ['--cipher-algo', '3DES'], '3DES-CBC'],
  ] as const)('gpgsm --encrypt %s, Postern decrypts to the exact bytes', async (_n, extra, cipher) => {
    const content = randomBytes(5000);
    const der = gpg.encrypt(content, ['rsa@example.org'], [...extra]);
    const out = await decrypt(der, [rsaKey]);
    expect(out.content.equals(content)).toBe(true);
    expect(out.cipher).toBe(cipher);
    expect(out.keyTransport).toBe('RSA PKCS#1 v1.5');
  });
});
