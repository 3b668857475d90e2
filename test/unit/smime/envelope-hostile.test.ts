/**
 * Hostile and broken input to the CMS encryption half: truncation, garbage, random mutation,
 * tampering, wrong keys and unusable certificates. Every outcome is a SmimeError with the right
 * code; padding failures (RSA PKCS#1 and CBC) are indistinguishable. Plus the implicit-rejection
 * unpad itself.
 */
import { constants, generateKeyPairSync, publicEncrypt, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmimeError } from '../../../src/smime/errors.js';
import { decrypt, envelopeRecipients } from '../../../src/smime/decrypt.js';
import { encrypt } from '../../../src/smime/encrypt.js';
import { prepareDecryptionKey, prepareRecipient, type SmimeDecryptionKey, type SmimeRecipient } from '../../../src/smime/recipient-keys.js';
import { decryptPkcs1, pkcs1Unpad, rejectionSecret, syntheticKey } from '../../../src/pki/rsa-pkcs1.js';
import { makeEnvPki, opensslDecrypt, type EnvPki } from '../../helpers/smime-env-pki.js';

let pki: EnvPki;
let rsa: SmimeRecipient;
let rsaKey: SmimeDecryptionKey;
let rsa2Key: SmimeDecryptionKey;
let p256Key: SmimeDecryptionKey;
let keys: SmimeDecryptionKey[];
const CONTENT = Buffer.from('Content-Type: text/plain\r\n\r\n' + 'A'.repeat(100) + '\r\n'); // 128 bytes: CBC pads a full block

beforeAll(() => {
  pki = makeEnvPki();
  rsa = prepareRecipient(pki.rsa.certDer);
  rsaKey = prepareDecryptionKey(pki.rsa.certDer, pki.rsa.pkcs8);
  rsa2Key = prepareDecryptionKey(pki.rsa2.certDer, pki.rsa2.pkcs8);
  p256Key = prepareDecryptionKey(pki.p256.certDer, pki.p256.pkcs8);
  keys = [rsaKey, p256Key];
});
afterAll(() => pki?.cleanup());

/** The SmimeError a decryption ends with; fails the test for a success or any other error type. */
async function failure(der: Buffer, with_: SmimeDecryptionKey[] = keys): Promise<SmimeError> {
  const outcome = await decrypt(der, with_).then(() => null, (e: unknown) => e);
  if (outcome === null) throw new Error('decrypted, but it should not have');
  expect(outcome).toBeInstanceOf(SmimeError);
  return outcome as SmimeError;
}

/** decrypt() and envelopeRecipients() on arbitrary bytes: a result or a SmimeError, nothing else. */
async function onlySmimeErrors(der: Buffer): Promise<void> {
  await decrypt(der, keys).catch((e: unknown) => expect(e).toBeInstanceOf(SmimeError));
  try {
    envelopeRecipients(der);
  } catch (e) {
    expect(e).toBeInstanceOf(SmimeError);
  }
}

/** Offset just after the ephemeral P-256 point of the (only) kari, so searches do not hit its random bytes. */
const afterPoint = (der: Buffer): number => der.indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04])) + 4 + 64;

const flip = (b: Buffer, at: number, bit = 1): Buffer => {
  const c = Buffer.from(b);
  c[at]! ^= bit;
  return c;
};

describe('broken structure', () => {
  it('every tenth prefix of a message is malformed (CBC, GCM, ECDH, two recipients)', async () => {
    const p256 = prepareRecipient(pki.p256.certDer);
    for (const der of [await encrypt(CONTENT, [rsa]), await encrypt(CONTENT, [rsa, p256], { cipher: 'aes-128-gcm' })]) {
      for (let i = 0; i < 10; i++) {
        const err = await failure(der.subarray(0, Math.floor((der.length * i) / 10)));
        expect(err.code).toBe('malformed');
        expect(() => envelopeRecipients(der.subarray(0, Math.floor((der.length * i) / 10)))).toThrowError(SmimeError);
      }
      expect((await failure(Buffer.concat([der, Buffer.from([0])]))).code).toBe('malformed'); // trailing data
    }
  });

  it('random garbage and ASN.1-shaped garbage are malformed', async () => {
    const samples = [
      Buffer.alloc(0), Buffer.from([0x30]), Buffer.from([0x30, 0x80]), Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from('-----BEGIN PKCS7-----\nMIIB\n-----END PKCS7-----\n'), Buffer.from([0x30, 0x03, 0x06, 0x01, 0x00]),
      ...Array.from({ length: 50 }, (_, i) => randomBytes(1 + i * 13)),
      ...Array.from({ length: 50 }, (_, i) => Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), randomBytes(i * 5)])),
    ];
    for (const s of samples) expect((await failure(s)).code).toBe('malformed');
  });

  it('a thousand random mutations of real messages give a result or a SmimeError, never another exception', async () => {
    const p256 = prepareRecipient(pki.p256.certDer);
    const messages = [await encrypt(CONTENT, [rsa], { rsaPadding: 'oaep' }), await encrypt(CONTENT, [p256], { cipher: 'aes-256-gcm' })];
    for (let n = 0; n < 1000; n++) {
      const m = Buffer.from(messages[n % 2]!);
      for (let j = 0; j < 1 + (n % 4); j++) m[Math.floor(Math.random() * m.length)] = Math.floor(Math.random() * 256);
      await onlySmimeErrors(n % 7 === 0 ? m.subarray(0, Math.floor(Math.random() * m.length)) : m);
    }
  });

  it('a ContentInfo that is not enveloped is unsupported', async () => {
    const signed = Buffer.from('300f06092a864886f70d010702a0023000', 'hex');
    expect((await failure(signed)).code).toBe('unsupported');
    expect((await failure(signed)).message).toContain('SignedData');
    const data = Buffer.from('300f06092a864886f70d010701a0020400', 'hex');
    expect((await failure(data)).code).toBe('unsupported');
  });
});

describe('not ours, wrong key, tampering', () => {
  it('a message to someone else is no-recipient, and says how many recipients it has', async () => {
    const err = await failure(await encrypt(CONTENT, [rsa]), [rsa2Key, p256Key]);
    expect(err.code).toBe('no-recipient');
    expect(err.message).toContain('1 recipient');
  });

  it('issuer+serial of our certificate but encrypted to another key: decrypt-failed (implicit rejection, then CBC)', async () => {
    const der = await encrypt(CONTENT, [rsa]);
    // rsa and rsa2 differ only in the serial (0x1000 / 0x1001, same CA): re-address the message to rsa2.
    const at = der.indexOf(Buffer.from([0x02, 0x02, 0x10, 0x00]));
    expect(at).toBeGreaterThan(0);
    const readdressed = Buffer.from(der);
    readdressed[at + 3] = 0x01;
    expect((await failure(readdressed, [rsa2Key])).code).toBe('decrypt-failed');
  });

  it('a flipped bit in the RSA PKCS#1 key and in the CBC content fail the same way, with the same text', async () => {
    const texts = new Set<string>();
    let failures = 0;
    for (let round = 0; round < 10; round++) {
      const der = await encrypt(CONTENT, [rsa]);
      const ek = der.indexOf(Buffer.from([0x04, 0x82, 0x01, 0x00])) + 4; // the 256-byte encrypted key
      expect(ek).toBeGreaterThan(4);
      // Last byte of the second-to-last ciphertext block: flips the padding byte 0x10 → 0x11 (always bad).
      for (const bad of [flip(der, ek + 17 + round, 0x40), flip(der, der.length - 17)]) {
        const outcome = await decrypt(bad, [rsaKey]).then((r) => r.content, (e: unknown) => e);
        if (Buffer.isBuffer(outcome)) {
          // A random key passes CBC's unauthenticated padding check about once in 256 tries; it must not be our text.
          expect(outcome.equals(CONTENT)).toBe(false);
          continue;
        }
        expect(outcome).toBeInstanceOf(SmimeError);
        expect((outcome as SmimeError).code).toBe('decrypt-failed');
        expect((outcome as SmimeError).cause).toBeUndefined();
        texts.add((outcome as SmimeError).message);
        failures++;
      }
    }
    expect(texts.size).toBe(1);
    expect(failures).toBeGreaterThanOrEqual(17);
  });

  it('a flipped bit in the GCM ciphertext or tag is an integrity failure; nothing is returned', async () => {
    for (const cipher of ['aes-128-gcm', 'aes-256-gcm'] as const) {
      const der = await encrypt(CONTENT, [rsa], { cipher });
      expect((await failure(flip(der, der.length - 1))).code).toBe('integrity'); // the tag is the last field
      expect((await failure(flip(der, der.length - 16 - 2 - 5))).code).toBe('integrity'); // the last ciphertext bytes
      expect((await failure(flip(der, der.length - 16 - 2 - CONTENT.length + 3))).code).toBe('integrity');
    }
  });

  it('a GCM message whose wrapped key was tampered (ECDH) is decrypt-failed; PKCS#1 tampering shows as integrity', async () => {
    const p256 = prepareRecipient(pki.p256.certDer);
    const ec = await encrypt(CONTENT, [p256], { cipher: 'aes-128-gcm' });
    const wrapped = ec.indexOf(Buffer.from([0x04, 0x18]), afterPoint(ec)) + 2; // 24-byte AES-wrapped content key
    expect((await failure(flip(ec, wrapped + 5))).code).toBe('decrypt-failed');
    const rsaGcm = await encrypt(CONTENT, [rsa], { cipher: 'aes-128-gcm' });
    const ek = rsaGcm.indexOf(Buffer.from([0x04, 0x82, 0x01, 0x00])) + 4;
    expect((await failure(flip(rsaGcm, ek + 100))).code).toBe('integrity');
  });

  it('every matching key is tried: a recipient info that fails does not stop the next one', async () => {
    const rsa2 = prepareRecipient(pki.rsa2.certDer);
    const p256 = prepareRecipient(pki.p256.certDer);
    // GCM: the tag tells a synthetic (implicitly rejected) key from the right one, so this is deterministic.
    const gcm = await encrypt(CONTENT, [rsa, rsa2], { cipher: 'aes-256-gcm' });
    const serialAt = gcm.indexOf(Buffer.from([0x02, 0x02, 0x10, 0x00]));
    const ek = gcm.indexOf(Buffer.from([0x04, 0x82, 0x01, 0x00]), serialAt) + 4;
    const out = await decrypt(flip(gcm, ek + 30), [rsaKey, rsa2Key]);
    expect(out.content.equals(CONTENT)).toBe(true);
    expect(out.recipientFingerprint).toBe(rsa2.fingerprint);
    // ECDH: the key unwrap's integrity check fails, then the RSA recipient info is used.
    const cbc = await encrypt(CONTENT, [p256, rsa]);
    const wrapped = cbc.indexOf(Buffer.from([0x04, 0x28]), afterPoint(cbc)) + 2; // 40-byte AES-wrapped 32-byte key
    const out2 = await decrypt(flip(cbc, wrapped + 3), [p256Key, rsaKey]);
    expect(out2.recipientFingerprint).toBe(rsa.fingerprint);
  });

  it('an ECDH originator point that is not on the curve is decrypt-failed, not a crash', async () => {
    const p256 = prepareRecipient(pki.p256.certDer);
    const der = await encrypt(CONTENT, [p256]);
    const point = der.indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04])) + 4;
    expect((await failure(flip(der, point + 10))).code).toBe('decrypt-failed');
  });
});

describe('keys and certificates that cannot be used', () => {
  it('a certificate with a private key that is not its own is bad-key', () => {
    for (const [cert, key] of [[pki.rsa, pki.rsa2], [pki.p256, pki.p384], [pki.rsa, pki.p256], [pki.p256, pki.rsa]] as const) {
      expect(() => prepareDecryptionKey(cert.certDer, key.pkcs8)).toThrowError(expect.objectContaining({ code: 'bad-key', message: expect.stringContaining('does not belong') }) as Error);
    }
    expect(() => prepareDecryptionKey(pki.rsa.certDer, Buffer.from('not a key'))).toThrowError(expect.objectContaining({ code: 'bad-key' }) as Error);
  });

  it('signing-only RSA and EC certificates, Ed25519 and garbage are refused as recipients with a sentence', () => {
    const reason = (der: Buffer) => {
      try {
        prepareRecipient(der);
      } catch (e) {
        expect(e).toBeInstanceOf(SmimeError);
        expect((e as SmimeError).code).toBe('bad-key');
        return (e as SmimeError).message;
      }
      throw new Error('accepted');
    };
    expect(reason(pki.rsaSignOnly.certDer)).toMatch(/rsasign@example\.org .*keyEncipherment/);
    expect(reason(pki.ecSignOnly.certDer)).toMatch(/keyAgreement/);
    expect(reason(pki.ed25519.certDer)).toMatch(/Ed25519 key, which cannot be used for encryption/);
    expect(reason(randomBytes(300))).toMatch(/certificate cannot be used/);
  });

  it('a certificate whose key is id-RSAES-OAEP always gets OAEP (openssl decrypts with the plain certificate)', async () => {
    // Same key, SPKI algorithm rsaEncryption (…1.1.1) relabelled id-RSAES-OAEP (…1.1.7); the signature no longer matters here.
    const der = Buffer.from(pki.rsa.certDer);
    const oidAt = der.indexOf(Buffer.from('06092a864886f70d0101010500', 'hex'));
    der[oidAt + 10] = 0x07;
    const r = prepareRecipient(der);
    expect(r.oaepOnly).toBe(true);
    const msg = await encrypt(CONTENT, [r]);
    expect(opensslDecrypt(pki, msg, pki.rsa).equals(CONTENT)).toBe(true);
    expect((await decrypt(msg, [rsaKey])).keyTransport).toBe('RSA-OAEP (SHA-256)');
  });

  it('key objects carry no key material that a logger could print', () => {
    const text = JSON.stringify(rsaKey) + JSON.stringify(rsa);
    expect(text).not.toMatch(/BEGIN|privateKey|scalar/);
    expect(Object.keys(rsaKey).sort()).toEqual(['fingerprint', 'issuer', 'keyKind', 'serial', 'subject', 'subjectKeyId']);
  });
});

describe('PKCS#1 v1.5 unpad with implicit rejection', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const secret = rejectionSecret(d, 256);

  it('a good block gives the key; bad padding gives a deterministic synthetic key of the expected length', () => {
    const cek = randomBytes(32);
    const good = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, cek);
    expect(decryptPkcs1(privateKey, secret, 256, good, 32).equals(cek)).toBe(true);

    const bad = randomBytes(256);
    bad[0] = 0;
    const k1 = decryptPkcs1(privateKey, secret, 256, bad, 32);
    expect(k1).toHaveLength(32);
    expect(decryptPkcs1(privateKey, secret, 256, bad, 32).equals(k1)).toBe(true); // same every call
    expect(k1.equals(syntheticKey(secret, bad, 256, 32))).toBe(true);
    const other = Buffer.from(bad);
    other[200]! ^= 1;
    expect(decryptPkcs1(privateKey, secret, 256, other, 32).equals(k1)).toBe(false); // differs per ciphertext
    for (const len of [16, 24, 32]) expect(decryptPkcs1(privateKey, secret, 256, bad, len)).toHaveLength(len);
  });

  it('a well-padded key of the wrong length, a short ciphertext and a value above the modulus are rejected silently too', () => {
    const c16 = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, randomBytes(16));
    expect(decryptPkcs1(privateKey, secret, 256, c16, 32).equals(syntheticKey(secret, c16, 256, 32))).toBe(true);
    const short = c16.subarray(1);
    expect(decryptPkcs1(privateKey, secret, 256, short, 32).equals(syntheticKey(secret, short, 256, 32))).toBe(true);
    const huge = Buffer.alloc(256, 0xff);
    expect(decryptPkcs1(privateKey, secret, 256, huge, 32).equals(syntheticKey(secret, huge, 256, 32))).toBe(true);
    const long = Buffer.alloc(300, 1);
    expect(decryptPkcs1(privateKey, secret, 256, long, 32)).toHaveLength(32);
  });

  it('pkcs1Unpad checks every rule of EME-PKCS1-v1_5', () => {
    const syn = Buffer.alloc(16, 0xee);
    const block = (mutate: (b: Buffer) => void) => {
      const b = Buffer.alloc(256, 0x5a);
      b[0] = 0x00;
      b[1] = 0x02;
      b[256 - 17] = 0x00;
      b.fill(0x11, 256 - 16);
      mutate(b);
      return pkcs1Unpad(b, 256, 16, syn);
    };
    expect(block(() => {})).toEqual(Buffer.alloc(16, 0x11));
    expect(block((b) => (b[0] = 1))).toEqual(syn);
    expect(block((b) => (b[1] = 1))).toEqual(syn);
    expect(block((b) => (b[50] = 0))).toEqual(syn); // a zero inside PS: the message would be longer
    expect(block((b) => (b[256 - 17] = 1))).toEqual(syn); // no separator where the key must start
    expect(pkcs1Unpad(null, 256, 16, syn)).toEqual(syn);
    expect(pkcs1Unpad(Buffer.alloc(255), 256, 16, syn)).toEqual(syn);
  });
});
