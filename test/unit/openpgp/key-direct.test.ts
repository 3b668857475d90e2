/**
 * Key flags, expiry and preferences that only a v4 key's direct-key self-signature (type 0x1F)
 * carries, its user-id certification lacking them: RFC 4880 §5.2.3.3 / RFC 9580 §5.2.3.10 say they
 * apply to the whole key, gpg reads them so, openpgp.js 6 alone does not (it reads the primary user
 * id's certification and then finds no key flags at all).
 *
 * No tool at hand writes such a key (gpg 2.2 puts everything on the user id), so openpgp.js' packet
 * API builds it, packet by packet; gpg is the oracle that reads it. `gpg --list-packets` of the
 * signing key below (abridged):
 *
 *   :public key packet:  version 4, algo 22 …
 *   :signature packet: algo 22 …  version 4, created …, sigclass 0x1f
 *       hashed subpkt 2 len 4 (sig created …)
 *       hashed subpkt 27 len 1 (key flags: 03)
 *       hashed subpkt 11 len 2 (pref-sym-algos: 9 7)
 *       hashed subpkt 30 len 1 (features: 01)
 *   :user ID packet: "Dee <dee@example.org>"
 *   :signature packet: algo 22 …  sigclass 0x13
 *       hashed subpkt 2 len 4 (sig created …)                 ← no key flags, no preferences
 *   :public sub key packet: version 4, algo 18 …
 *   :signature packet: algo 22 …  sigclass 0x18
 *       hashed subpkt 27 len 1 (key flags: 0C)
 */
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipartLayout, readEntity } from '../../../src/mime/entity.js';
import { parsePgpKeys, pgpEncryptMessage, pgpOpenMessage, pgpSignMessage, preparePgpRecipient, preparePgpSigner } from '../../../src/openpgp/index.js';
import { gpgAvailable, gpgHome, type GpgHome } from '../../helpers/gpg-home.js';
import { directKeyOnly, E, KEY_FLAGS, signPacket } from '../../helpers/pgp-direct-key.js';

const MAIL = (from: string, date = new Date()) =>
  Buffer.from(`From: ${from}\r\nTo: pat@example.com\r\nSubject: direct\r\nDate: ${date.toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nflags on the direct-key signature\r\n`);

describe('a v4 key whose key flags, expiry and preferences are on its direct-key signature only', () => {
  beforeAll(() => {
    if (!gpgAvailable()) throw new Error('gpg is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
  });
  let gpg: GpgHome;
  let dee: Buffer; // certify + sign on the direct-key signature
  let cal: Buffer; // certify only on the direct-key signature
  beforeAll(async () => {
    gpg = gpgHome();
    dee = await directKeyOnly('dee@example.org', { flags: KEY_FLAGS.certify | KEY_FLAGS.sign, features: 0x01, ciphers: [E.symmetric.aes256, E.symmetric.aes128] });
    cal = await directKeyOnly('cal@example.org', { flags: KEY_FLAGS.certify });
    gpg.import(dee);
    gpg.import(cal);
  }, 60_000);
  afterAll(() => gpg?.close());
  const pub = async (secret: Buffer) => Buffer.from((await openpgp.readPrivateKey({ binaryKey: new Uint8Array(secret) })).toPublic().write());

  it('is built as stated: the flags and preferences on the 0x1F signature, none on the user id certification (gpg --list-packets)', () => {
    const dump = gpg.run(['--list-packets'], dee).stdout.toString();
    const sigs = dump.split(/(?=:signature packet:)/).slice(1);
    const direct = sigs.find((s) => /sigclass 0x1f/.test(s))!;
    const onUid = sigs.find((s) => /sigclass 0x13/.test(s))!;
    expect(direct).toMatch(/hashed subpkt 27 len 1 \(key flags: 03\)/);
    expect(direct).toMatch(/hashed subpkt 11 len 2 \(pref-sym-algos: 9 7\)/);
    expect(onUid).not.toMatch(/subpkt (27|11|30) /);
  });

  it('gpg reads the capabilities from the direct-key signature: sign+certify for one, certify only for the other', () => {
    const caps = (who: string) => gpg.run(['--with-colons', '--list-keys', who]).stdout.toString().split('\n').find((l) => l.startsWith('pub:'))!.split(':')[11];
    expect(caps('dee@example.org')).toMatch(/^scE/);
    expect(caps('cal@example.org')).toMatch(/^cE/);
  });

  it('Postern agrees: the key can sign (or not) and encrypt, as gpg says', async () => {
    const { keys } = await parsePgpKeys(await pub(dee));
    expect(keys[0]!.info).toMatchObject({ canSign: true, canEncrypt: true, addresses: ['dee@example.org'] });
    const other = await parsePgpKeys(await pub(cal));
    expect(other.keys[0]!.info).toMatchObject({ canSign: false, canEncrypt: true });
  });

  it("a signature gpg makes with it is valid; Postern's own signature with it is a Good signature to gpg", async () => {
    const clear = gpg.run(['--local-user', 'dee@example.org', '--clearsign'], 'signed by the primary key\n').stdout.toString();
    const mail = Buffer.from(`${MAIL('dee@example.org').toString().split('\r\n\r\n')[0]}\r\n\r\n${clear.replace(/\r?\n/g, '\r\n')}`);
    const r = await pgpOpenMessage(mail, { keysFor: async () => [], verificationKeysFor: async () => [await pub(dee)] });
    expect(r.signatures).toMatchObject([{ status: 'valid', address: 'dee@example.org' }]);

    const signed = await pgpSignMessage(MAIL('dee@example.org'), await preparePgpSigner(dee));
    const e = readEntity(signed);
    const [content, sig] = multipartLayout(e.body, e.type.params.get('boundary')!).parts;
    const v = gpg.run(['--status-fd', '1', '--verify', gpg.file('dee.sig', readEntity(sig!).body), gpg.file('dee.txt', content!)]);
    expect(v.stdout.toString()).toMatch(/GOODSIG [0-9A-F]+ Dee <dee@example\.org>/);
  });

  it('a key whose direct-key signature gives certify only cannot sign: gpg refuses to, its signatures are invalid, Postern refuses to sign with it', async () => {
    expect(gpg.run(['--local-user', 'cal@example.org!', '--clearsign'], 'signed against the flags\n', true).status).not.toBe(0);
    // A signature made against the flags anyway (openpgp.js' packet API checks none); the same
    // signature by the key that may sign is the control.
    const signedBy = async (secret: Buffer, from: string) => {
      const key = await openpgp.readPrivateKey({ binaryKey: new Uint8Array(secret) });
      const content = 'Content-Type: text/plain\r\n\r\nsigned by the primary key';
      const sig = new openpgp.SignaturePacket();
      Object.assign(sig, { signatureType: E.signature.binary, publicKeyAlgorithm: key.keyPacket.algorithm, hashAlgorithm: E.hash.sha256 });
      const literal = new openpgp.LiteralDataPacket();
      (literal as unknown as { setBytes(b: Uint8Array, f: openpgp.enums.literal): void }).setBytes(new TextEncoder().encode(content), E.literal.binary);
      await signPacket(sig, key.keyPacket, literal, new Date(), true);
      const armored = openpgp.armor(E.armor.signature, new openpgp.PacketList<openpgp.AnyPacket>(sig).write());
      const mail = Buffer.from(
        `From: ${from}\r\nTo: pat@example.com\r\nSubject: flags\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha256; boundary="b"\r\n\r\n` +
          `--b\r\n${content}\r\n--b\r\nContent-Type: application/pgp-signature\r\n\r\n${armored}\r\n--b--\r\n`,
      );
      return (await pgpOpenMessage(mail, { keysFor: async () => [], verificationKeysFor: async () => [await pub(secret)] })).signatures;
    };
    expect(await signedBy(dee, 'dee@example.org')).toMatchObject([{ status: 'valid' }]);
    expect(await signedBy(cal, 'cal@example.org')).toMatchObject([{ status: 'invalid', reason: expect.stringMatching(/no key allowed to sign/) }]);
    await expect(preparePgpSigner(cal)).rejects.toThrow(/cannot sign now/);
  });

  it('the preferred ciphers on the direct-key signature are used: AES-256, which gpg reports decrypting (without them openpgp.js falls back to AES-128)', async () => {
    const out = await pgpEncryptMessage(MAIL('pat@example.com'), [await preparePgpRecipient(await pub(dee))]);
    const e = readEntity(out);
    const armored = readEntity(multipartLayout(e.body, e.type.params.get('boundary')!).parts[1]!).body;
    expect(gpg.run(['--status-fd', '1', '--decrypt'], armored).stdout.toString()).toMatch(/DECRYPTION_INFO 2 9/);
  });

  it('features on the direct-key signature count: SEIPDv2 advertised there makes the recipient an AEAD one', async () => {
    const eve = await directKeyOnly('eve@example.org', { flags: KEY_FLAGS.certify | KEY_FLAGS.sign, features: 0x09 });
    expect((await preparePgpRecipient(await pub(eve))).aead).toBe(true);
    expect((await preparePgpRecipient(await pub(dee))).aead).toBe(false);
  });

  it('an expiry on the direct-key signature only: the key expired, for gpg and for Postern', async () => {
    const old = await directKeyOnly('old@example.org', { flags: KEY_FLAGS.certify | KEY_FLAGS.sign, expiresIn: 86_400, created: new Date('2024-01-01T00:00:00Z') });
    gpg.import(old);
    expect(gpg.run(['--with-colons', '--list-keys', 'old@example.org']).stdout.toString()).toMatch(/^pub:e:/m);
    const { keys } = await parsePgpKeys(await pub(old));
    expect(keys[0]!.info).toMatchObject({ canEncrypt: false, canSign: false, encryptProblem: 'the key expired on 2024-01-02' });
    expect(keys[0]!.info.expires?.toISOString()).toBe('2024-01-02T00:00:00.000Z');
  });
});
