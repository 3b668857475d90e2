/**
 * The key bundles `{send_keys}` attaches, imported by independent tools: a certs-only .p7c by
 * gpgsm and openssl, several OpenPGP keys in one armored block by gpg.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armorPublicKeys, generatePgpKey } from '../../../src/openpgp/index.js';
import { certsOnlyBundle, createCa, issueSmimeCertificate, parseCertificate, parseImport, PkiError } from '../../../src/pki/index.js';
import { tempDir } from '../../helpers/config.js';

const exec = promisify(execFile);

describe('key bundles for {send_keys}', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-bundle-'));
  });
  afterAll(() => cleanup());

  it('a certs-only .p7c of a certificate and its CA that openssl and gpgsm import', async () => {
    const ca = await createCa({ commonName: 'Bundle CA' });
    const alice = await issueSmimeCertificate({ ca, address: 'alice@example.com', keyType: 'rsa-2048' });
    const p7c = certsOnlyBundle([alice.certDer, ca.certDer]);
    const file = join(dir, 'keys.p7c');
    await writeFile(file, p7c);

    const printed = (await exec('openssl', ['pkcs7', '-inform', 'DER', '-in', file, '-print_certs', '-noout'])).stdout;
    expect(printed).toMatch(/subject=CN ?= ?alice@example\.com/);
    expect(printed).toMatch(/subject=CN ?= ?Bundle CA/);
    // Our own reader agrees (and sees exactly these two).
    expect((await parseImport(p7c)).certificates.map((c) => c.fingerprint)).toEqual([parseCertificate(alice.certDer).fingerprint, parseCertificate(ca.certDer).fingerprint]);

    const home = join(dir, 'gpgsm');
    await exec('mkdir', ['-m', '700', '-p', home]);
    await exec('gpgsm', ['--homedir', home, '--batch', '--import', file]);
    const listed = (await exec('gpgsm', ['--homedir', home, '--batch', '--with-colons', '--list-keys'])).stdout;
    expect(listed).toContain('alice@example.com');
    expect(listed).toMatch(/Bundle CA/);
  });

  it('several OpenPGP public keys in one armored block that gpg imports', async () => {
    const a = await generatePgpKey({ address: 'alice@example.com' });
    const b = await generatePgpKey({ address: 'alice.smith@example.com', type: 'rsa', rsaBits: 2048 });
    const asc = await armorPublicKeys([a.publicKey, b.publicKey]);
    expect(asc).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    expect(asc).not.toMatch(/PRIVATE/);
    const home = join(dir, 'gnupg');
    await exec('mkdir', ['-m', '700', '-p', home]);
    await writeFile(join(dir, 'keys.asc'), asc);
    await exec('gpg', ['--homedir', home, '--batch', '--import', join(dir, 'keys.asc')]);
    const fprs = (await exec('gpg', ['--homedir', home, '--batch', '--with-colons', '--fingerprint'])).stdout.split('\n').filter((l) => l.startsWith('fpr:')).map((l) => l.split(':')[9]);
    expect(fprs).toEqual(expect.arrayContaining([a.info.fingerprint, b.info.fingerprint]));
  }, 30_000);

  it('refuses an empty bundle', () => {
    expect(() => certsOnlyBundle([])).toThrow(PkiError);
  });
});
