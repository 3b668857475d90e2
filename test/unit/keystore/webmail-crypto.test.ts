/**
 * Webmail mail at rest: an account's X25519 private key opens only with its password, a damaged
 * row is an error rather than a "wrong password", a sealed message opens only with its account's
 * key and under its own AAD (account and message), and nothing sealed carries the plain text.
 * The peer is OpenSSL: the sealed format is checked by re-deriving it with `openssl pkeyutl -derive`.
 */
import { execFile } from 'node:child_process';
import { createDecipheriv, generateKeyPairSync, hkdfSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PDF_PASSWORD_ALPHABET } from '../../../src/pdfmail/password.js';
import {
  MAX_WEBMAIL_PASSWORD_BYTES, newAccountKeys, newWebmailPassword, openForAccount, rawPublicKey, rewrapAccountKey, sealForAccount, unwrapAccountKey, unwrapNothing,
  WEBMAIL_SCRYPT, WebmailCryptoError, webmailPasswordProblem,
} from '../../../src/keystore/webmail-crypto.js';
import { tempDir } from '../../helpers/config.js';

const exec = promisify(execFile);
const FAST = { N: 2 ** 10, r: 8, p: 1 };
const PASSWORD = 'Korrekt-Pferd-Batterie-Heftklammer';
const AAD = 'postern:webmail:7:message:42';

describe('webmail account keys', () => {
  it('unwraps with the right password only; NFKC makes composed and decomposed umlauts the same', async () => {
    const composed = 'Passwört-über-alles';
    const keys = await newAccountKeys(composed, FAST);
    expect(keys.publicKey).toHaveLength(32);
    expect(keys.wrapped.kdf).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}$/);
    const key = await unwrapAccountKey(composed.normalize('NFD'), keys.wrapped);
    expect(key?.asymmetricKeyType).toBe('x25519');
    expect(rawPublicKey(key!).equals(keys.publicKey)).toBe(true);
    expect(await unwrapAccountKey('Passwort-uber-alles', keys.wrapped)).toBeNull();
    expect(await unwrapAccountKey('', keys.wrapped)).toBeNull();
    // Too long to be a password of ours: refused before any scrypt, as "wrong".
    expect(await unwrapAccountKey('x'.repeat(MAX_WEBMAIL_PASSWORD_BYTES + 1), keys.wrapped)).toBeNull();
    expect(await unwrapAccountKey('x'.repeat(10_000_000), keys.wrapped)).toBeNull();
  });

  it('the default cost is the PDF passwords\' (2^15, r 8) and is what the stored string says', async () => {
    expect(WEBMAIL_SCRYPT).toEqual({ N: 2 ** 15, r: 8, p: 1 });
    expect(Object.isFrozen(WEBMAIL_SCRYPT)).toBe(true);
    const keys = await newAccountKeys(PASSWORD);
    expect(keys.wrapped.kdf).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$/);
    expect(await unwrapAccountKey(PASSWORD, keys.wrapped)).not.toBeNull();
  });

  it('a damaged or forged row throws WebmailCryptoError instead of passing for a wrong password', async () => {
    const { wrapped } = await newAccountKeys(PASSWORD, FAST);
    const bad = [
      { ...wrapped, kdf: wrapped.kdf.replace('ln=10', 'ln=30') }, // 2^30: would eat the machine
      { ...wrapped, kdf: wrapped.kdf.replace('ln=10', 'ln=4') }, // too cheap to be ours
      { ...wrapped, kdf: 'plain-text' },
      { ...wrapped, kdf: `${wrapped.kdf}$${'A'.repeat(43)}` }, // a hash where none belongs
      { ...wrapped, iv: wrapped.iv.subarray(0, 8) },
      { ...wrapped, ciphertext: wrapped.ciphertext.subarray(0, 10) },
    ];
    for (const w of bad) await expect(unwrapAccountKey(PASSWORD, w)).rejects.toThrow(WebmailCryptoError);
    // A lowered cost with its salt kept: the cost is bound as AAD, so it no longer opens.
    const cheaper = { ...wrapped, kdf: wrapped.kdf.replace('ln=10', 'ln=11') };
    expect(await unwrapAccountKey(PASSWORD, cheaper)).toBeNull();
    const flipped = Buffer.from(wrapped.ciphertext);
    flipped[3]! ^= 1;
    expect(await unwrapAccountKey(PASSWORD, { ...wrapped, ciphertext: flipped })).toBeNull();
  });

  it('rewrap keeps the key pair (mail stays readable) under the new password only', async () => {
    const keys = await newAccountKeys(PASSWORD, FAST);
    const sealed = sealForAccount(keys.publicKey, Buffer.from('before the change'), AAD);
    const key = (await unwrapAccountKey(PASSWORD, keys.wrapped))!;
    const rewrapped = await rewrapAccountKey(key, 'Ein-ganz-neues-Passwort', FAST);
    expect(rewrapped.kdf).not.toBe(keys.wrapped.kdf);
    expect(await unwrapAccountKey(PASSWORD, rewrapped)).toBeNull();
    const again = (await unwrapAccountKey('Ein-ganz-neues-Passwort', rewrapped))!;
    expect(openForAccount(again, sealed, AAD)?.toString()).toBe('before the change');
    await expect(rewrapAccountKey(generateKeyPairSync('ed25519').privateKey, PASSWORD, FAST)).rejects.toThrow(WebmailCryptoError);
  });

  it('unwrapNothing costs a real scrypt and answers null', async () => {
    expect(await unwrapNothing(PASSWORD)).toBeNull();
    expect(await unwrapNothing('')).toBeNull();
  });

  it('new passwords: the PDF alphabet, about 84 bits, never twice; the problems of a chosen one are named', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const p = newWebmailPassword();
      expect(p.replace(/-/g, '')).toMatch(new RegExp(`^[${PDF_PASSWORD_ALPHABET}]{17}$`));
      seen.add(p);
      expect(webmailPasswordProblem(p)).toBeNull();
    }
    expect(seen.size).toBe(200);
    expect(webmailPasswordProblem('short')).toMatch(/at least/);
    expect(webmailPasswordProblem('long enough but\u0000nul')).toMatch(/control/);
    expect(webmailPasswordProblem('zero\u200Bwidth-space-x')).toMatch(/invisible/);
    expect(webmailPasswordProblem('ü'.repeat(200))).toMatch(/at most/);
  });
});

describe('mail sealed to an account', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir('postern-webmail-crypto-')));
  afterEach(async () => cleanup());

  it('opens with the account key and its own AAD only; the sealed bytes hold no plain text', async () => {
    const alice = await newAccountKeys(PASSWORD, FAST);
    const mallory = await newAccountKeys(PASSWORD, FAST);
    const aliceKey = (await unwrapAccountKey(PASSWORD, alice.wrapped))!;
    const malloryKey = (await unwrapAccountKey(PASSWORD, mallory.wrapped))!;
    const plain = Buffer.from('Subject: Quartalszahlen Ω\r\n\r\nStreng vertraulich: 4,2 Mio.\r\n');
    const sealed = sealForAccount(alice.publicKey, plain, AAD);
    expect(sealed.includes(Buffer.from('vertraulich'))).toBe(false);
    expect(sealed.includes(Buffer.from('Quartal'))).toBe(false);
    // Fresh ephemeral key and IV each time.
    expect(sealForAccount(alice.publicKey, plain, AAD).equals(sealed)).toBe(false);
    expect(openForAccount(aliceKey, sealed, AAD)?.equals(plain)).toBe(true);
    expect(openForAccount(malloryKey, sealed, AAD)).toBeNull();
    expect(openForAccount(aliceKey, sealed, 'postern:webmail:7:message:43')).toBeNull();
    expect(openForAccount(aliceKey, sealed, 'postern:webmail:8:message:42')).toBeNull();
    for (let i = 0; i < sealed.length; i += 7) {
      const altered = Buffer.from(sealed);
      altered[i]! ^= 0x40;
      expect(openForAccount(aliceKey, altered, AAD)).toBeNull();
    }
    for (const junk of [Buffer.alloc(0), sealed.subarray(0, 40), Buffer.alloc(200)]) expect(openForAccount(aliceKey, junk, AAD)).toBeNull();
    expect(openForAccount(aliceKey, sealForAccount(alice.publicKey, Buffer.alloc(0), AAD), AAD)?.length).toBe(0);
  });

  it('refuses a public key that is not 32 bytes, or one of low order (an all-zero shared secret)', async () => {
    expect(() => sealForAccount(Buffer.alloc(31, 1), Buffer.from('x'), AAD)).toThrow(WebmailCryptoError);
    // u = 0 and u = 1 are points of small order on Curve25519.
    for (const low of [Buffer.alloc(32), Buffer.concat([Buffer.of(1), Buffer.alloc(31)])]) {
      expect(() => sealForAccount(low, Buffer.from('x'), AAD)).toThrow(WebmailCryptoError);
    }
  });

  it('the format is ECIES as documented: OpenSSL derives the same X25519 secret from the ephemeral key', async () => {
    const keys = await newAccountKeys(PASSWORD, FAST);
    const key = (await unwrapAccountKey(PASSWORD, keys.wrapped))!;
    const plain = Buffer.from('interop check');
    const sealed = sealForAccount(keys.publicKey, plain, AAD);
    expect(sealed[0]).toBe(1);
    const eph = sealed.subarray(1, 33);
    const iv = sealed.subarray(33, 45);
    // The ephemeral public key as SPKI PEM for openssl: the fixed X25519 prefix, then the raw key.
    const spki = Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), eph]);
    await writeFile(join(dir, 'eph.pem'), `-----BEGIN PUBLIC KEY-----\n${spki.toString('base64')}\n-----END PUBLIC KEY-----\n`);
    await writeFile(join(dir, 'me.pem'), key.export({ format: 'pem', type: 'pkcs8' }));
    await exec('openssl', ['pkeyutl', '-derive', '-inkey', join(dir, 'me.pem'), '-peerkey', join(dir, 'eph.pem'), '-out', join(dir, 'shared.bin')]);
    const shared = await readFile(join(dir, 'shared.bin'));
    expect(shared).toHaveLength(32);
    const k = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([eph, keys.publicKey]), 'postern webmail message v1', 32));
    const d = createDecipheriv('aes-256-gcm', k, iv);
    d.setAAD(Buffer.from(AAD));
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    const out = Buffer.concat([d.update(sealed.subarray(45, sealed.length - 16)), d.final()]);
    expect(out.equals(plain)).toBe(true);
  });
});
