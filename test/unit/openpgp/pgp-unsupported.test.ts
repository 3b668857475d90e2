/**
 * Algorithms Postern does not do are said so ('unsupported'), never reported as a modified or
 * damaged message: gpg 2.2 makes every sample, and decrypts or checks it itself, which shows the
 * sample is sound. Ciphers: IDEA and Camellia (openpgp.js implements neither), Blowfish and Twofish
 * when the key does not advertise them (openpgp.js refuses a legacy cipher the key holder did not
 * ask for), CAST5 and 3DES decrypt (the fallbacks every OpenPGP implementation reads) — each to an
 * RSA key (Postern's own constant-time path, pgp-rsa.ts) and a Curve25519 key (openpgp.js' ECDH).
 * Signatures: an unknown public-key algorithm (gpg: ERRSIG with "unsupported algorithm") and an
 * unknown hash.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePgpKeys, pgpOpenMessage, pgpResultHeaders, preparePgpDecryptionKey, type PgpDecryptionKey, type PgpOpenResult } from '../../../src/openpgp/index.js';
import { gpgAvailable, gpgHome, type GpgHome } from '../../helpers/gpg-home.js';

const CORPUS = join(import.meta.dirname, '../../../../shared/corpora/gnupg-tests/openpgp/samplemsgs');
const inline = (armored: string) => Buffer.from(`From: sender@example.org\r\nTo: pat@example.com\r\nSubject: old cipher\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${armored}`, 'latin1');

describe('unsupported OpenPGP algorithms are reported as unsupported (gpg 2.2 makes and reads every sample)', () => {
  beforeAll(() => {
    if (!gpgAvailable()) throw new Error('gpg is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
  });
  let gpg: GpgHome;
  const keys: Record<'rsa' | 'ecc' | 'twofish', { fpr: string; key: PgpDecryptionKey }> = {} as never;
  beforeAll(async () => {
    gpg = gpgHome();
    const fprOf = (who: string) => gpg.run(['--with-colons', '--fingerprint', who]).stdout.toString().split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
    gpg.run(['--quick-gen-key', 'Ron <ron@example.org>', 'rsa2048', 'sign,encr', 'never']);
    const ecc = gpg.generate('Eve <eve@example.org>', 'ed25519');
    gpg.run(['--quick-gen-key', 'Tom <tom@example.org>', 'rsa2048', 'sign,encr', 'never']);
    // Tom's key advertises Twofish (gpg --edit-key setpref; the prompts answered on --command-fd).
    const r = spawnSync('gpg', ['--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', '--command-fd', '0', '--edit-key', fprOf('tom@example.org')], {
      env: { ...process.env, GNUPGHOME: gpg.home },
      input: 'setpref TWOFISH AES256 SHA256 Uncompressed\ny\nsave\n',
    });
    expect(r.status, r.stderr.toString()).toBe(0);
    for (const [name, who] of [['rsa', 'ron@example.org'], ['ecc', ecc], ['twofish', 'tom@example.org']] as const) {
      keys[name] = { fpr: fprOf(who), key: await preparePgpDecryptionKey(gpg.exportSecret(who)) };
    }
    expect(keys.twofish.key.ciphers).toEqual([10, 9]);
  }, 120_000);
  afterAll(() => gpg?.close());

  const open = (msg: Buffer, key: PgpDecryptionKey): Promise<PgpOpenResult> => pgpOpenMessage(msg, { keysFor: async () => [key], verificationKeysFor: async () => [] });
  const encrypt = (to: string, cipher: string) => {
    const e = gpg.run(['--cipher-algo', cipher, '--armor', '--encrypt', '--recipient', to], `secret with ${cipher}\n`);
    // gpg itself decrypts what it made: the sample is sound, whatever Postern says of it.
    expect(gpg.run(['--status-fd', '1', '--decrypt'], e.stdout).stdout.toString()).toMatch(/DECRYPTION_OKAY/);
    return e.stdout.toString();
  };

  const table: [string, 'rsa' | 'ecc' | 'twofish', string | null][] = [
    ['IDEA', 'rsa', 'IDEA'],
    ['IDEA', 'ecc', 'IDEA'],
    ['CAMELLIA256', 'rsa', 'Camellia-256'],
    ['CAMELLIA128', 'ecc', 'Camellia'],
    ['BLOWFISH', 'rsa', 'blowfish \\(a legacy cipher the key does not advertise\\)'],
    ['TWOFISH', 'ecc', 'a legacy cipher the key does not advertise'],
    ['TWOFISH', 'twofish', null],
    ['CAST5', 'rsa', null],
    ['CAST5', 'ecc', null],
    ['3DES', 'rsa', null],
  ];
  for (const [cipher, kind, unsupported] of table) {
    it(`${cipher} to ${kind === 'rsa' ? 'an RSA key' : kind === 'ecc' ? 'a Curve25519 key' : 'an RSA key that advertises Twofish'}: ${unsupported ? 'unsupported, named' : 'decrypted'}`, async () => {
      const { fpr, key } = keys[kind];
      const r = await open(inline(encrypt(fpr, cipher)), key);
      if (unsupported) {
        expect(r.encryption).toMatchObject({ status: 'unsupported', reason: expect.stringMatching(new RegExp(`encrypted with .*${unsupported}.*which Postern does not decrypt \\(unsupported algorithm, not damage\\)`)) });
        expect(pgpResultHeaders(r)[0]).toEqual(['X-Postern-Encryption', expect.stringMatching(/^unsupported; method=pgp; reason="the message is encrypted with /)]);
      } else {
        expect(r.encryption).toMatchObject({ status: 'decrypted' });
        expect(r.message.toString()).toContain(`secret with ${cipher}`);
      }
    });
  }

  it('an IDEA message whose RSA session-key block was changed is "failed" like any damage, not "unsupported" (no padding oracle)', async () => {
    const armored = encrypt(keys.rsa.fpr, 'IDEA');
    const bin = gpg.run(['--dearmor'], armored).stdout;
    // PKESK v3: header (3), version, key id (8), algorithm, MPI length (2), then the RSA value.
    const at = 3 + 1 + 8 + 1 + 2 + 40;
    bin[at] = bin[at]! ^ 0x55;
    const r = await open(inline(gpg.run(['--enarmor'], bin).stdout.toString().replace(/ARMORED FILE/g, 'MESSAGE')), keys.rsa.key);
    expect(r.encryption).toMatchObject({ status: 'failed', reason: expect.stringMatching(/modified, damaged, or not made for this key/) });
  });

  it('GnuPG\'s post-quantum samples (a public-key algorithm Postern does not know): unsupported', async () => {
    const file = readFileSync(join(CORPUS, 'pqc-sample-1.enc.asc'), 'latin1');
    // The file is gpg's debug output around the armor: the armored block alone is the message.
    const armored = file.slice(file.indexOf('-----BEGIN PGP MESSAGE-----'), file.indexOf('-----END PGP MESSAGE-----') + 25);
    const r = await open(inline(armored), keys.ecc.key);
    expect(r.encryption).toMatchObject({ status: 'unsupported', reason: expect.stringMatching(/no recipient key Postern can read/) });
  });

  it("keys of a version Postern cannot use are refused as unsupported, with the version: PGP 2.6's v3 key and gpg's v5 sample (GnuPG's corpus)", async () => {
    const G = join(CORPUS, '..');
    expect((await parsePgpKeys(readFileSync(join(G, 'pgp263-test.pub.asc')))).problems).toEqual(['unsupported: a version 3 key (PGP 2.x), which Postern cannot use (only v4 and v6 keys)']);
    expect((await parsePgpKeys(readFileSync(join(G, 'samplekeys/v5-sample-1-pub.asc')))).problems).toEqual([expect.stringMatching(/^unsupported: a version 5 key \(the LibrePGP draft/)]);
    // gpg reads neither as a usable key either.
    expect(gpg.run(['--import'], readFileSync(join(G, 'samplekeys/v5-sample-1-pub.asc')), true).stderr).toMatch(/packet\(6\) with unknown version 5/);
  });

  describe('signatures', () => {
    /** A PGP/MIME signed mail around gpg's detached signature, its packet changed by `mutate` (body offsets). */
    const signedMail = (mutate: (body: Buffer) => void) => {
      const content = 'Content-Type: text/plain\r\n\r\nsigned with an odd algorithm';
      const sig = gpg.run(['--local-user', 'ron@example.org', '--detach-sign'], content).stdout;
      // gpg writes an old-format signature packet with a two-octet length (ctb 0x89): the body starts at 3.
      expect(sig[0]).toBe(0x89);
      mutate(sig.subarray(3));
      const armored = gpg.run(['--enarmor'], sig).stdout.toString().replace(/ARMORED FILE/g, 'SIGNATURE');
      const mail = Buffer.from(
        `From: ron@example.org\r\nTo: pat@example.com\r\nSubject: odd\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha256; boundary="b"\r\n\r\n` +
          `--b\r\n${content}\r\n--b\r\nContent-Type: application/pgp-signature\r\n\r\n${armored}\r\n--b--\r\n`,
      );
      return { mail, sig, content };
    };
    const verify = (mail: Buffer) => pgpOpenMessage(mail, { keysFor: async () => [], verificationKeysFor: async () => [gpg.exportPublic('ron@example.org')] });

    it('an unknown public-key algorithm (100): unsupported, with the signer\'s key id, where openpgp.js alone would drop the signature unseen', async () => {
      const { mail, sig, content } = signedMail((b) => {
        b[2] = 100;
      });
      expect(gpg.run(['--status-fd', '1', '--verify', gpg.file('pk100.sig', sig), gpg.file('pk100.txt', content)], undefined, true).stdout.toString()).toMatch(/ERRSIG [0-9A-F]{16} 100 \d+ 00 \d+ 4 /);
      const r = await verify(mail);
      const ron = keys.rsa.fpr.slice(-16);
      expect(r.signatures).toEqual([expect.objectContaining({ status: 'unsupported', keyId: ron, reason: expect.stringMatching(/public-key algorithm 100, which Postern cannot check/) })]);
      expect(pgpResultHeaders(r)).toEqual([['X-Postern-Signature', expect.stringMatching(/^unsupported; method=pgp;/)]]);
    });

    it('an unknown hash algorithm (100): unsupported, not invalid (gpg skips such a signature without a word)', async () => {
      const { mail } = signedMail((b) => {
        b[3] = 100;
      });
      expect((await verify(mail)).signatures).toMatchObject([{ status: 'unsupported', reason: expect.stringMatching(/cannot check/) }]);
    });
  });
});
