/**
 * Revocations as RFC 9580 §5.2.3.31 has them, with gpg 2.2 as the maker of every key, signature
 * and revocation (--faked-system-time puts each at its date): a soft revocation (key superseded,
 * key retired, user id no longer valid) voids only signatures made after it; a hard one (key
 * compromised, no reason, a reason code nobody knows) voids every signature, also the older ones.
 *
 * gpg 2.2 itself does not tell them apart when verifying: it calls every signature by a revoked
 * key "Good signature" with REVKEYSIG, before or after, soft or hard (checked below, so the
 * difference is stated, not assumed). The timeline of each case: key made 2024-01-01, a signature
 * on 2024-02-01, the revocation on 2024-03-01, a signature on 2024-04-01.
 */
import * as openpgp from 'openpgp';
import { describe, expect, it } from 'vitest';
import { pgpOpenMessage, preparePgpVerificationKey, type PgpSignatureReport, type PgpVerificationKey } from '../../../src/openpgp/index.js';
import { clearsignAt, clearsignedMail, genRevoke, gpgTime, revokeSubkey, revokeUid, useGpgHome, type KeyRevocationReason } from '../../helpers/gpg-revoke.js';

const MADE = new Date('2024-01-01T00:00:00Z');
const BEFORE = new Date('2024-02-01T00:00:00Z');
const REVOKED = new Date('2024-03-01T00:00:00Z');
const AFTER = new Date('2024-04-01T00:00:00Z');

describe('OpenPGP revocations: soft ones void what came after, hard ones everything (gpg 2.2 makes them)', () => {
  const gpg = useGpgHome();

  /** A new gpg key at MADE: an ed25519 primary that signs (or only certifies, with a signing subkey), uids as given. */
  const makeKey = (uids: string[], opts: { signingSubkey?: boolean } = {}): string => {
    // "!" freezes gpg's clock at MADE: a running clock puts the primary key a second or two after
    // MADE under load, and a subkey or uid made later "at MADE" then predates it (Time conflict).
    const t = `${gpgTime(MADE)}!`;
    gpg().run(['--faked-system-time', t, '--quick-gen-key', uids[0]!, 'ed25519', opts.signingSubkey ? 'cert' : 'sign,cert', 'never']);
    const fpr = gpg().run(['--with-colons', '--fingerprint', uids[0]!]).stdout.toString().split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
    if (opts.signingSubkey) gpg().run(['--faked-system-time', t, '--quick-add-key', fpr, 'ed25519', 'sign', 'never']);
    for (const uid of uids.slice(1)) gpg().run(['--faked-system-time', t, '--quick-add-uid', fpr, uid]);
    return fpr;
  };
  /** The two signed mails, made before the revocation exists (gpg will not sign with a revoked key). */
  const signBoth = (fpr: string, from: string) => ({
    before: clearsignedMail(from, clearsignAt(gpg(), fpr, 'signed before the revocation\n', BEFORE), BEFORE),
    after: clearsignedMail(from, clearsignAt(gpg(), fpr, 'signed after the revocation\n', AFTER), AFTER),
  });
  const packets = (fpr: string) => gpg().run(['--list-packets'], gpg().run(['--export', fpr]).stdout).stdout.toString();
  const open = async (mail: Buffer, key: PgpVerificationKey): Promise<PgpSignatureReport> => {
    const r = await pgpOpenMessage(mail, { keysFor: async () => [], verificationKeysFor: async () => [key] });
    expect(r.signatures).toHaveLength(1);
    return r.signatures[0]!;
  };
  /** gpg's own verdict on the clear-signed text (its status lines). */
  const gpgSays = (mail: Buffer) => {
    const text = mail.toString('latin1');
    return gpg().run(['--status-fd', '1', '--verify'], text.slice(text.indexOf('-----BEGIN PGP SIGNED MESSAGE-----')), true).stdout.toString();
  };

  const cases: { reason: KeyRevocationReason; name: string; hard: boolean }[] = [
    { reason: 1, name: 'key superseded', hard: false },
    { reason: 3, name: 'key retired', hard: false },
    { reason: 2, name: 'key compromised', hard: true },
    { reason: 0, name: 'no reason given', hard: true },
  ];
  for (const c of cases) {
    it(`a key revocation "${c.name}" (code ${c.reason}) is ${c.hard ? 'hard: both signatures are invalid' : 'soft: the earlier signature stays valid, the later is invalid'}`, async () => {
      const addr = `rev${c.reason}@example.org`;
      const fpr = makeKey([`Rev ${c.reason} <${addr}>`]);
      const mails = signBoth(fpr, addr);
      gpg().import(genRevoke(gpg(), fpr, c.reason, REVOKED));
      expect(packets(fpr)).toMatch(new RegExp(`sigclass 0x20[\\s\\S]*?revocation reason 0x0${c.reason}`));
      // gpg: "Good signature" with REVKEYSIG for both, soft or hard.
      for (const m of [mails.before, mails.after]) expect(gpgSays(m)).toMatch(/REVKEYSIG/);

      const key = await preparePgpVerificationKey(gpg().exportPublic(fpr));
      // The later one first: what openpgp.js learns about "revoked" at one date must not leak to another.
      const after = await open(mails.after, key);
      const before = await open(mails.before, key);
      expect(after).toMatchObject({ status: 'invalid', reason: expect.stringMatching(/^the key was revoked on 2024-03-01/) });
      if (c.hard) {
        expect(before).toMatchObject({ status: 'invalid', reason: expect.stringMatching(/hard revocation voids every signature/) });
        expect(after.reason).toContain(c.name);
      } else {
        expect(before).toMatchObject({ status: 'valid', address: addr, fingerprint: fpr });
        expect(after.reason).toMatch(new RegExp(`\\(${c.name}: test\\), before this signature was made \\(2024-04-01\\)`));
      }
    }, 60_000);
  }

  it('a reason code nobody knows (99, made with openpgp.js: gpg offers only 0-3) is hard: the earlier signature is invalid too', async () => {
    const addr = 'rev99@example.org';
    const fpr = makeKey([`Rev 99 <${addr}>`]);
    const mails = signBoth(fpr, addr);
    const secret = await openpgp.readPrivateKey({ binaryKey: new Uint8Array(gpg().exportSecret(fpr)) });
    const rev = new openpgp.SignaturePacket();
    Object.assign(rev, { signatureType: openpgp.enums.signature.keyRevocation, publicKeyAlgorithm: secret.keyPacket.algorithm, hashAlgorithm: openpgp.enums.hash.sha256, reasonForRevocationFlag: 99, reasonForRevocationString: 'whatever' });
    // With the config openpgp.js reads at run time (its typings leave the argument out).
    await (rev.sign as unknown as (k: unknown, d: unknown, t: Date, det: boolean, c: openpgp.Config) => Promise<void>).call(rev, secret.keyPacket, { key: secret.keyPacket }, REVOKED, false, openpgp.config);
    gpg().import(Buffer.from(new openpgp.PacketList<openpgp.AnyPacket>(rev).write()));
    expect(packets(fpr)).toMatch(/sigclass 0x20[\s\S]*?revocation reason 0x63/);
    const key = await preparePgpVerificationKey(gpg().exportPublic(fpr));
    expect(await open(mails.before, key)).toMatchObject({ status: 'invalid', reason: expect.stringMatching(/\(unknown reason 99: whatever\): a hard revocation/) });
  }, 60_000);

  it('a signing subkey revoked as superseded: its earlier signature stays valid, the later one is invalid', async () => {
    const addr = 'sub@example.org';
    const fpr = makeKey([`Sub <${addr}>`], { signingSubkey: true });
    const mails = signBoth(fpr, addr);
    revokeSubkey(gpg(), fpr, 1, 1, REVOKED);
    expect(packets(fpr)).toMatch(/sigclass 0x28[\s\S]*?revocation reason 0x01/);
    const key = await preparePgpVerificationKey(gpg().exportPublic(fpr));
    expect(await open(mails.after, key)).toMatchObject({ status: 'invalid', reason: expect.stringMatching(/^subkey 0x[0-9A-F]{16} was revoked on 2024-03-01 \(key superseded: test\), before this signature/) });
    expect(await open(mails.before, key)).toMatchObject({ status: 'valid', address: addr });
  }, 60_000);

  it('a user id revoked as no longer valid (soft): it still binds the earlier signature to From:, not the later one', async () => {
    const fpr = makeKey(['Una <una@example.org>', 'Una Two <una2@example.org>']);
    const mails = signBoth(fpr, 'una@example.org');
    gpg().run(['--faked-system-time', gpgTime(REVOKED), '--quick-revoke-uid', fpr, 'Una <una@example.org>']);
    expect(packets(fpr)).toMatch(/sigclass 0x30[\s\S]*?revocation reason 0x20/);
    const key = await preparePgpVerificationKey(gpg().exportPublic(fpr));
    // Today the key names only the other address.
    expect(key.addresses).toEqual(['una2@example.org']);
    expect(await open(mails.after, key)).toMatchObject({ status: 'mismatch', reason: expect.stringContaining('una2@example.org') });
    expect(await open(mails.before, key)).toMatchObject({ status: 'valid', address: 'una@example.org' });
  }, 60_000);

  it('a user id revoked without a reason (hard): it binds neither signature', async () => {
    const fpr = makeKey(['Ida <ida@example.org>', 'Ida Two <ida2@example.org>']);
    const mails = signBoth(fpr, 'ida@example.org');
    revokeUid(gpg(), fpr, 'Ida <ida@example.org>', 0, REVOKED);
    expect(packets(fpr)).toMatch(/sigclass 0x30[\s\S]*?revocation reason 0x00/);
    const key = await preparePgpVerificationKey(gpg().exportPublic(fpr));
    expect(await open(mails.before, key)).toMatchObject({ status: 'mismatch' });
    expect(await open(mails.after, key)).toMatchObject({ status: 'mismatch' });
    // Retired later as a whole: the verdict names that revocation, not the user id's.
    gpg().import(genRevoke(gpg(), fpr, 3, new Date('2024-03-15T00:00:00Z')));
    const retired = await preparePgpVerificationKey(gpg().exportPublic(fpr));
    expect(await open(mails.after, retired)).toMatchObject({ status: 'invalid', reason: expect.stringMatching(/^the key was revoked on 2024-03-15 \(key retired: test\)/) });
  }, 60_000);
});
