/**
 * OpenPGP keys against GnuPG 2.2 as the independent peer (keys made by gpg read here, keys made
 * here used by gpg) and against Thunderbird's corpus of odd keys (revoked, expired, bad subkeys).
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armorPublicKey, exportSecretKey, generatePgpKey, parsePgpKeys } from '../../../src/openpgp/index.js';
import { tempDir } from '../../helpers/config.js';

const exec = promisify(execFile);
const KEYS = resolve(import.meta.dirname, '../../../../shared/corpora/thunderbird-comm-central/browser-openpgp-data/keys');
const corpus = (name: string) => readFile(join(KEYS, name));

describe('OpenPGP keys', () => {
  let home: string;
  let cleanup: () => Promise<void>;
  const gpg = async (args: string[], input?: string | Buffer) => {
    const child = exec('gpg', ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', 'sekrit', ...args], { encoding: 'buffer', maxBuffer: 16 << 20 });
    if (input !== undefined) child.child.stdin!.end(input);
    const { stdout } = await child;
    return stdout;
  };
  const fingerprints = async (addr: string) =>
    (await gpg(['--with-colons', '--fingerprint', addr])).toString().split('\n').filter((l) => l.startsWith('fpr:')).map((l) => l.split(':')[9]);

  beforeAll(async () => {
    ({ dir: home, cleanup } = await tempDir('postern-gpg-'));
    await gpg(['--quick-gen-key', 'Ed Wards <ed@example.org>', 'future-default', 'default', 'never']);
    await gpg(['--quick-gen-key', 'Rosa Sa <rosa@Example.ORG>', 'rsa3072', 'sign,cert', 'never']);
    // An explicit algorithm gives gpg 2.2 a primary key only: add the encryption subkey.
    const [rosa] = await fingerprints('rosa@Example.ORG');
    await gpg(['--quick-add-key', rosa!, 'rsa3072', 'encr', 'never']);
  }, 60_000);
  afterAll(() => cleanup());

  it.each([
    ['ed@example.org', 'ed25519', 'ed@example.org'],
    ['rosa@Example.ORG', 'rsa', 'rosa@example.org'],
  ])('reads a key gpg made (%s), armored and binary, with gpg\'s fingerprint', async (uid, alg, address) => {
    const [fpr] = await fingerprints(uid);
    for (const data of [await gpg(['--armor', '--export', uid]), await gpg(['--export', uid])]) {
      const { keys, problems } = await parsePgpKeys(data);
      expect(problems).toEqual([]);
      expect(keys).toHaveLength(1);
      expect(keys[0]!.info).toMatchObject({ fingerprint: fpr, version: 4, addresses: [address], canEncrypt: true, canSign: true, hasSecret: false, revoked: false });
      expect(keys[0]!.info.algorithm).toMatch(alg === 'rsa' ? /rsa/ : /eddsa|ed25519/i);
      expect(keys[0]!.secretKey).toBeUndefined();
    }
  });

  it('needs the passphrase of a protected secret key, and says which key', async () => {
    const [fpr] = await fingerprints('ed@example.org');
    const secret = await gpg(['--armor', '--export-secret-keys', 'ed@example.org']);
    expect((await parsePgpKeys(secret)).problems).toEqual([`secret key ${fpr} is passphrase-protected: give the passphrase with --passphrase-env VAR`]);
    expect((await parsePgpKeys(secret, { passphrase: 'wrong' })).problems).toEqual([`secret key ${fpr}: wrong passphrase`]);
    const { keys } = await parsePgpKeys(secret, { passphrase: 'sekrit' });
    expect(keys[0]!.info.hasSecret).toBe(true);
    expect(keys[0]!.secretKey!.length).toBeGreaterThan(keys[0]!.publicKey.length);
    // The public part never carries secret material.
    expect((await openpgp.readKey({ binaryKey: keys[0]!.publicKey })).isPrivate()).toBe(false);
  });

  it('reads every key of a keyring', async () => {
    const { keys } = await parsePgpKeys(await gpg(['--export']));
    expect(keys.map((k) => k.info.addresses[0]).sort()).toEqual(['ed@example.org', 'rosa@example.org']);
  });

  it('tells which corpus keys cannot be used to encrypt, and why', async () => {
    const alice = (await parsePgpKeys(await corpus('alice@openpgp.example-0xf231550c4f47e38e-pub.asc'))).keys[0]!;
    expect(alice.info).toMatchObject({ fingerprint: 'EB85BB5FA33A75E15E944E63F231550C4F47E38E', addresses: ['alice@openpgp.example'], canEncrypt: true });
    const signOnly = (await parsePgpKeys(await corpus('sign-subkey-only-pub.asc'))).keys[0]!;
    expect(signOnly.info.canEncrypt).toBe(false);
    expect(signOnly.info.encryptProblem).toMatch(/no encryption-capable subkey|no valid encryption subkey/);
    const expired = (await parsePgpKeys(await corpus('expired-enc-subkey.pub.asc'))).keys[0]!;
    expect(expired.info.canEncrypt).toBe(false);
    expect(expired.info.encryptProblem).toMatch(/expired/);
    const revoked = (await parsePgpKeys(await corpus('carol@pgp.icu-0xEF2FD01608AFD744-revoked-secret.asc'))).keys[0];
    expect(revoked?.info.revoked ?? true).toBe(true);
    expect(revoked?.info.canEncrypt ?? false).toBe(false);
    const garbage = await parsePgpKeys(Buffer.from('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64 at all\n-----END PGP PUBLIC KEY BLOCK-----\n'));
    expect(garbage.keys).toEqual([]);
    expect(garbage.problems[0]).toMatch(/^not an OpenPGP key/);
  });

  it("reads GnuPG's own sample keys, public and secret (passphrase-less and protected)", async () => {
    const dir = resolve(import.meta.dirname, '../../../../shared/corpora/gnupg-tests/openpgp/samplekeys');
    const ed = (await parsePgpKeys(await readFile(join(dir, 'ed25519-cv25519-sample-1.asc')))).keys;
    expect(ed.map((k) => [k.info.fingerprint, k.info.addresses, k.info.canEncrypt, k.info.hasSecret])).toEqual([
      ['B21DEAB4F875FB3DA42F1D1D139563682A020D0A', ['patrice.lumumba@example.net'], true, false],
    ]);
    const rsa = (await parsePgpKeys(await readFile(join(dir, 'rsa-rsa-sample-1.asc')))).keys;
    expect(rsa.map((k) => [k.info.fingerprint, k.info.algorithm, k.info.canEncrypt])).toEqual([['5B83120DB1E3A65AE5A8DCF6AA43F1DCC7FED1B7', expect.stringMatching(/^rsa/), true]]);
    // A NIST P-256 secret keyblock, protected: refused without its passphrase, read with it.
    const sec = await readFile(join(dir, 'ecc-sample-1-sec.asc'));
    expect((await parsePgpKeys(sec)).problems).toEqual(['secret key 502D1A5365D1C0CAA69945390BA52DF0BAA59D9C is passphrase-protected: give the passphrase with --passphrase-env VAR']);
    const ecc = (await parsePgpKeys(sec, { passphrase: 'ecc' })).keys;
    expect(ecc.map((k) => [k.info.addresses, k.info.hasSecret, k.secretKey !== undefined])).toEqual([[['openpgp@brainhub.org'], true, true]]);
  });

  it.each(['ecc', 'rsa'] as const)('generates a %s v4 key that gpg 2.2 imports, encrypts to, and whose exported secret gpg can use', async (type) => {
    const address = `gen-${type}@example.com`;
    const key = await generatePgpKey({ address, name: 'Generated User', type });
    expect(key.info).toMatchObject({ version: 4, addresses: [address], canEncrypt: true, canSign: true, hasSecret: true });
    await gpg(['--import'], await armorPublicKey(key.publicKey));
    const listed = (await gpg(['--with-colons', '--list-keys', address])).toString();
    expect(listed).toContain(address);
    expect(listed).toMatch(/^sub:u?:?[^\n]*:e?[^\n]*$/m);
    // gpg encrypts to the generated key; openpgp.js decrypts with the generated secret key.
    await gpg(['--trust-model', 'always', '--armor', '--recipient', address, '--output', join(home, `${type}.asc`), '--encrypt'], 'for the generated key\n');
    const msg = await openpgp.readMessage({ armoredMessage: await readFile(join(home, `${type}.asc`), 'utf8') });
    const { data } = await openpgp.decrypt({ message: msg, decryptionKeys: await openpgp.readPrivateKey({ binaryKey: key.secretKey! }) });
    expect(data).toBe('for the generated key\n');
    // The exported secret key needs its passphrase in gpg, and then decrypts.
    const exported = await exportSecretKey(key.secretKey!, 'sekrit');
    expect(exported).toMatch(/^-----BEGIN PGP PRIVATE KEY BLOCK-----/);
    await writeFile(join(home, `${type}-sec.asc`), exported);
    await gpg(['--import', join(home, `${type}-sec.asc`)]);
    expect((await gpg(['--decrypt', join(home, `${type}.asc`)])).toString()).toBe('for the generated key\n');
  }, 60_000);

  it('refuses to export a secret key without a passphrase', async () => {
    const key = await generatePgpKey({ address: 'nopass@example.com' });
    await expect(exportSecretKey(key.secretKey!, '')).rejects.toThrow(/without a passphrase/);
  });
});
