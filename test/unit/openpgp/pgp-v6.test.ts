/**
 * OpenPGP v6 (RFC 9580). Incoming: the RFC's own sample messages (Appendix A.6 cleartext-signed,
 * A.7 inline-signed, A.8 X25519 + AEAD-OCB encrypted), made by the RFC's authors for its sample
 * key (A.3/A.4, in Thunderbird's corpus as pgp-v6-*.asc) — a maker other than openpgp.js. Outgoing:
 * gpg 2.2 reads neither v6 keys nor SEIPDv2, so openpgp.js is the maker of v6 keys and the reader
 * of what Postern sends to them; gpg stays the reader for the v4 side.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { multipartLayout, readEntity } from '../../../src/mime/entity.js';
import {
  exportSecretKey, generatePgpKey, parsePgpKeys, pgpEncryptMessage, pgpOpenMessage, pgpSignMessage, preparePgpDecryptionKey, preparePgpRecipient, preparePgpSigner, type PgpDecryptionKey,
} from '../../../src/openpgp/index.js';
import { useGpgHome } from '../../helpers/gpg-revoke.js';

const KEYS = join(import.meta.dirname, '../../../../shared/corpora/thunderbird-comm-central/browser-openpgp-data/keys');
/** RFC 9580 A.3: the v6 sample certificate's fingerprint. */
const RFC_FPR = 'CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9';

/** RFC 9580 Appendix A.6, A.7 and A.8, verbatim. */
const A6 = `-----BEGIN PGP SIGNED MESSAGE-----

What we need from the grocery store:

- - tofu
- - vegetables
- - noodles

-----BEGIN PGP SIGNATURE-----

wpgGARsKAAAAKQWCY5ijYyIhBssYbE8GCaaX5NUt+mxyKwwfHifBilZwj2Ul7Ce6
2azJAAAAAGk2IHZJX1AhiJD39eLuPBgiUU9wUA9VHYblySHkBONKU/usJ9BvuAqo
/FvLFuGWMbKAdA+epq7V4HOtAPlBWmU8QOd6aud+aSunHQaaEJ+iTFjP2OMW0KBr
NK2ay45cX1IVAQ==
-----END PGP SIGNATURE-----
`;
const A7 = `-----BEGIN PGP MESSAGE-----

xEYGAQobIHZJX1AhiJD39eLuPBgiUU9wUA9VHYblySHkBONKU/usyxhsTwYJppfk
1S36bHIrDB8eJ8GKVnCPZSXsJ7rZrMkBy0p1AAAAAABXaGF0IHdlIG5lZWQgZnJv
bSB0aGUgZ3JvY2VyeSBzdG9yZToKCi0gdG9mdQotIHZlZ2V0YWJsZXMKLSBub29k
bGVzCsKYBgEbCgAAACkFgmOYo2MiIQbLGGxPBgmml+TVLfpscisMHx4nwYpWcI9l
JewnutmsyQAAAABpNiB2SV9QIYiQ9/Xi7jwYIlFPcFAPVR2G5ckh5ATjSlP7rCfQ
b7gKqPxbyxbhljGygHQPnqau1eBzrQD5QVplPEDnemrnfmkrpx0GmhCfokxYz9jj
FtCgazStmsuOXF9SFQE=
-----END PGP MESSAGE-----
`;
const A8 = `-----BEGIN PGP MESSAGE-----

wV0GIQYSyD8ecG9jCP4VGkF3Q6HwM3kOk+mXhIjR2zeNqZMIhRmHzxjV8bU/gXzO
WgBM85PMiVi93AZfJfhK9QmxfdNnZBjeo1VDeVZheQHgaVf7yopqR6W1FT6NOrfS
aQIHAgZhZBZTW+CwcW1g4FKlbExAf56zaw76/prQoN+bAzxpohup69LA7JW/Vp0l
yZnuSj3hcFj0DfqLTGgr4/u717J+sPWbtQBfgMfG9AOIwwrUBqsFE9zW+f1zdlYo
bhF30A+IitsxxA==
-----END PGP MESSAGE-----
`;

const textMail = (from: string, body: string, date?: Date) =>
  Buffer.from(`From: ${from}\r\nTo: pat@example.com\r\nSubject: v6\r\n${date ? `Date: ${date.toUTCString()}\r\n` : ''}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}`);
const armoredOf = (mail: Buffer) => {
  const e = readEntity(mail);
  return readEntity(multipartLayout(e.body, e.type.params.get('boundary')!).parts[1]!).body.toString('latin1');
};
/** The packet versions of an armored message, as openpgp.js reads them. */
const versions = async (armored: string) => {
  const m = await openpgp.readMessage({ armoredMessage: armored });
  return m.packets.map((p) => `${p.constructor.name}:${(p as unknown as { version?: number }).version ?? '-'}`);
};

describe('OpenPGP v6 (RFC 9580)', () => {
  let rfcKey: Buffer;
  let rfcSecret: PgpDecryptionKey;
  beforeAll(async () => {
    rfcKey = readFileSync(join(KEYS, 'pgp-v6-pub.asc'));
    rfcSecret = await preparePgpDecryptionKey(readFileSync(join(KEYS, 'pgp-v6-sec.asc')));
  });
  const opener = (extra: Partial<Parameters<typeof pgpOpenMessage>[1]> = {}) => ({ keysFor: async () => [rfcSecret], verificationKeysFor: async () => [rfcKey], ...extra });

  describe("the RFC's sample messages (Appendix A)", () => {
    it('the sample key reads as v6, Ed25519 with an X25519 subkey, usable (no user id: it names no address)', async () => {
      const { keys } = await parsePgpKeys(rfcKey);
      expect(keys[0]!.info).toMatchObject({ fingerprint: RFC_FPR, version: 6, algorithm: 'ed25519', canSign: true, canEncrypt: true, addresses: [] });
      expect(keys[0]!.info.subkeys).toMatchObject([{ algorithm: 'x25519', canEncrypt: true }]);
    });

    it('A.6, the cleartext-signed text: a good v6 signature by the sample key (mismatch only for want of a user id)', async () => {
      const r = await pgpOpenMessage(textMail('someone@example.org', A6), opener());
      expect(r.signatures).toMatchObject([{ status: 'mismatch', scope: 'whole', fingerprint: RFC_FPR, hash: 'sha512', signedAt: new Date('2022-12-13T16:08:03Z') }]);
      // One changed word: the same signature no longer matches.
      const bad = await pgpOpenMessage(textMail('someone@example.org', A6.replace('tofu', 'tempeh')), opener());
      expect(bad.signatures).toMatchObject([{ status: 'invalid', fingerprint: RFC_FPR }]);
    });

    it('A.7, the inline-signed message: verified and unwrapped', async () => {
      const r = await pgpOpenMessage(textMail('someone@example.org', A7), opener());
      expect(r.signatures).toMatchObject([{ status: 'mismatch', scope: 'whole', fingerprint: RFC_FPR }]);
      expect(r.message.toString()).toContain('What we need from the grocery store:\r\n\r\n- tofu');
    });

    it('A.8, X25519 and AEAD-OCB (a v6 PKESK and SEIPDv2): decrypted to "Hello, world!"', async () => {
      expect(await versions(A8)).toEqual(['PublicKeyEncryptedSessionKeyPacket:6', 'SymEncryptedIntegrityProtectedDataPacket:2']);
      const r = await pgpOpenMessage(textMail('someone@example.org', A8), opener());
      expect(r.encryption).toMatchObject({ status: 'decrypted', packet: 'seipdv2', cipher: 'aes128-ocb', key: RFC_FPR, authenticated: true });
      expect(r.message.toString()).toMatch(/\r\n\r\nHello, world!$/);
    });

    it('A.8 with one bit flipped in the AEAD data: failed, nothing released', async () => {
      const bin = Buffer.from((await openpgp.unarmor(A8)).data as Uint8Array);
      bin[bin.length - 20] = bin[bin.length - 20]! ^ 1;
      const armored = openpgp.armor(openpgp.enums.armor.message, bin);
      const r = await pgpOpenMessage(textMail('someone@example.org', armored), opener());
      expect(r.encryption).toMatchObject({ status: 'failed' });
      expect(r.message.toString()).not.toContain('Hello, world!');
    });
  });

  describe('v6 keys Postern makes, and mail to them', () => {
    const gpg = useGpgHome();

    it('generatePgpKey({ v6: true }): a v6 Ed25519/X25519 key whose features say SEIPDv2; its secret leaves the store AEAD-locked (S2K usage 253)', async () => {
      const v6 = await generatePgpKey({ address: 'vera@example.com', name: 'Vera', v6: true });
      expect(v6.info).toMatchObject({ version: 6, algorithm: 'ed25519', canSign: true, canEncrypt: true, addresses: ['vera@example.com'] });
      expect(v6.info.subkeys).toMatchObject([{ algorithm: 'x25519' }]);
      const key = await openpgp.readKey({ binaryKey: new Uint8Array(v6.publicKey) });
      const self = await (key as unknown as { getPrimarySelfSignature(): Promise<openpgp.SignaturePacket> }).getPrimarySelfSignature();
      expect(self.features![0]! & 0x08).toBe(0x08);
      const exported = await exportSecretKey(v6.secretKey!, 'pass phrase');
      const locked = await openpgp.readPrivateKey({ armoredKey: exported });
      expect((locked.keyPacket as unknown as { s2kUsage: number }).s2kUsage).toBe(253);
      expect((await parsePgpKeys(exported, { passphrase: 'pass phrase' })).keys[0]!.info.fingerprint).toBe(v6.info.fingerprint);
      await expect(generatePgpKey({ address: 'r@example.com', type: 'rsa', rsaBits: 2048, v6: true })).rejects.toThrow(/at least 3072 bits/);
      // The v4 default is unchanged: gpg 2.2 imports it.
      const v4 = await generatePgpKey({ address: 'old@example.com' });
      expect(v4.info.version).toBe(4);
      gpg().import(v4.publicKey);
    });

    it('to a v6 key: a v6 PKESK and SEIPDv2 (AEAD); openpgp.js decrypts it and checks the v6 signature inside; gpg 2.2 cannot read it', async () => {
      const vera = await generatePgpKey({ address: 'vera@example.com', v6: true });
      const pat = await generatePgpKey({ address: 'pat@example.com', v6: true });
      const to = await preparePgpRecipient(vera.publicKey);
      expect(to.aead).toBe(true);
      const out = await pgpEncryptMessage(textMail('pat@example.com', 'for a v6 key\r\n'), [to], { signer: await preparePgpSigner(pat.secretKey!) });
      const armored = armoredOf(out);
      expect(await versions(armored)).toEqual(['PublicKeyEncryptedSessionKeyPacket:6', 'SymEncryptedIntegrityProtectedDataPacket:2']);
      const d = await openpgp.decrypt({
        message: await openpgp.readMessage({ armoredMessage: armored }),
        decryptionKeys: await openpgp.readPrivateKey({ binaryKey: new Uint8Array(vera.secretKey!) }),
        verificationKeys: await openpgp.readKey({ binaryKey: new Uint8Array(pat.publicKey) }),
        expectSigned: true,
      });
      expect(String(d.data)).toContain('for a v6 key');
      expect(await d.signatures[0]!.verified).toBe(true);
      expect((await d.signatures[0]!.signature).packets[0]!.version).toBe(6);
      expect(gpg().run(['--decrypt'], armored, true).status).not.toBe(0);
      // And Postern, as the receiving gateway, opens it.
      const r = await pgpOpenMessage(out, { keysFor: async () => [await preparePgpDecryptionKey(vera.secretKey!)], verificationKeysFor: async () => [pat.publicKey] });
      expect(r.encryption).toMatchObject({ status: 'decrypted', packet: 'seipdv2' });
      expect(r.signatures).toMatchObject([{ status: 'valid', address: 'pat@example.com' }]);
    });

    it('to a v6 and a gpg v4 key together: SEIPDv1 for both, which gpg decrypts', async () => {
      const vera = await generatePgpKey({ address: 'vera@example.com', v6: true });
      const gina = gpg().generate('Gina <gina@example.org>', 'ed25519');
      const out = await pgpEncryptMessage(textMail('pat@example.com', 'for both\r\n'), [await preparePgpRecipient(vera.publicKey), await preparePgpRecipient(gpg().exportPublic(gina))]);
      const armored = armoredOf(out);
      expect((await versions(armored)).at(-1)).toBe('SymEncryptedIntegrityProtectedDataPacket:1');
      const r = gpg().run(['--status-fd', '1', '--decrypt'], armored);
      expect(r.stdout.toString()).toMatch(/DECRYPTION_OKAY/);
      expect(r.stdout.toString()).toContain('for both');
    });

    it('a v6 signature Postern makes (PGP/MIME) verifies with openpgp.js and with Postern', async () => {
      const pat = await generatePgpKey({ address: 'pat@example.com', v6: true });
      const signed = await pgpSignMessage(textMail('pat@example.com', 'signed by v6\r\n', new Date()), await preparePgpSigner(pat.secretKey!));
      const e = readEntity(signed);
      const [content, sig] = multipartLayout(e.body, e.type.params.get('boundary')!).parts;
      const v = await openpgp.verify({
        message: await openpgp.createMessage({ binary: new Uint8Array(content!) }),
        signature: await openpgp.readSignature({ armoredSignature: readEntity(sig!).body.toString('latin1') }),
        verificationKeys: await openpgp.readKey({ binaryKey: new Uint8Array(pat.publicKey) }),
      });
      expect(await v.signatures[0]!.verified).toBe(true);
      const r = await pgpOpenMessage(signed, { keysFor: async () => [], verificationKeysFor: async () => [pat.publicKey] });
      expect(r.signatures).toMatchObject([{ status: 'valid', address: 'pat@example.com' }]);
    });
  });
});
