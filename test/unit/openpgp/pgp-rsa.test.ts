/**
 * RSA session keys through Node's RSA and our implicit-rejection unpadding (pgp-rsa.ts), with gpg
 * 2.2 as the peer: messages gpg encrypts to an RSA-3072 key — by key id and to a hidden recipient
 * (--throw-keyids) — decrypt, on the key's first use and when it is used again; a damaged
 * session-key packet fails exactly like a modified message (no padding oracle).
 *
 * That this path costs about one RSA-3072 private operation (openpgp.js' own constant-time RSA
 * took ~250 ms here) is a bench figure, not a test — timed assertions flake on a loaded CI
 * machine: `npm run bench -- --only micro`, pgp-rsa-decrypt beside Node's raw RSA-3072 private
 * operation in the same run (bench/micro.js).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rsaRaw } from '../../../src/pki/index.js';
import { pgpOpenMessage, preparePgpDecryptionKey, type PgpDecryptionKey } from '../../../src/openpgp/index.js';
import { gpgHome, type GpgHome } from '../../helpers/gpg-home.js';

// Node's raw RSA (RSA_NO_PADDING) watched: the session key must come from it, not from openpgp.js'
// JavaScript big-number RSA — the work done, where the old test timed it.
vi.mock(import('../../../src/pki/index.js'), async (importOriginal) => {
  const m = await importOriginal();
  return { ...m, rsaRaw: vi.fn(m.rsaRaw) };
});

const wrap = (armored: string) =>
  Buffer.from(
    `From: r@x.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n${armored}\r\n--b--\r\n`,
    'latin1',
  );

describe('OpenPGP RSA session keys without openpgp.js big-number RSA', () => {
  let gpg: GpgHome;
  let fpr: string;
  let key: PgpDecryptionKey;
  const open = (armored: string) => pgpOpenMessage(wrap(armored), { keysFor: async () => [key], verificationKeysFor: async () => [] });

  beforeAll(async () => {
    gpg = gpgHome();
    fpr = gpg.generate('R <r@x.example>', 'rsa3072');
    key = await preparePgpDecryptionKey(gpg.exportSecret(fpr));
  }, 60_000);
  afterAll(() => gpg?.close());

  it('decrypts what gpg encrypts to the key, by key id and to a hidden recipient, on first and later use', async () => {
    for (const extra of [[], ['--throw-keyids']]) {
      const armored = gpg.run(['--armor', '--encrypt', ...extra, '--recipient', fpr], 'Content-Type: text/plain\r\n\r\nsecret words\r\n').stdout.toString();
      // The first use builds the key object; the second reuses it.
      for (const use of ['first', 'again']) {
        vi.mocked(rsaRaw).mockClear();
        const r = await open(armored);
        // In Node: once by key id; for a hidden recipient once per RSA key of the secret key tried.
        expect(vi.mocked(rsaRaw), `${extra.join(' ')} ${use}: the session key through Node's RSA`).toHaveBeenCalled();
        expect(r.encryption?.status, `${extra.join(' ')} ${use}`).toBe('decrypted');
        expect(r.message.toString(), `${extra.join(' ')} ${use}`).toContain('secret words');
      }
    }
  });

  it('a damaged session-key packet fails exactly as a modified message does', async () => {
    const binary = gpg.run(['--encrypt', '--recipient', fpr], 'Content-Type: text/plain\r\n\r\nx\r\n').stdout;
    const armor = (b: Buffer) => `-----BEGIN PGP MESSAGE-----\n\n${b.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PGP MESSAGE-----\n`;
    const inKey = Buffer.from(binary);
    inKey[40]! ^= 0x01; // inside the RSA-encrypted session key (the PKESK comes first)
    const inData = Buffer.from(binary);
    inData[inData.length - 30]! ^= 0x01;
    const a = await open(armor(inKey));
    const b = await open(armor(inData));
    expect(a.encryption?.status).toBe('failed');
    expect(b.encryption?.status).toBe('failed');
    expect(a.encryption?.reason).toBe(b.encryption?.reason);
  });
});
