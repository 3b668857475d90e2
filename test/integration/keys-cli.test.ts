/**
 * The key commands through the real `postern` binary, checked by independent peers: Thunderbird's
 * PKCS#12 files in, PKCS#12 out read by openssl, the internal CA verified by openssl, OpenPGP keys
 * to and from gpg, and the KEK rotated from a file to a real SoftHSM2 token and back.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { MAIN, runPostern } from '../helpers/gateway.js';

const exec = promisify(execFile);
const CORPORA = resolve(import.meta.dirname, '../../../shared/corpora');
const NSS = join(CORPORA, 'thunderbird-comm-central/mailnews-test-data-smime');
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';

describe('postern cert / ca / pgp / kek', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: string;
  const env: NodeJS.ProcessEnv = { ...process.env, P12_PASSWORD: 'nss', EXPORT_PASSWORD: 'export-secret', PIN: '1234', BAD_PIN: '9999' };

  const postern = (...args: string[]) => runPostern(config, args, env);
  const ok = async (...args: string[]) => {
    const r = await postern(...args);
    if (r.code !== 0) throw new Error(`postern ${args.join(' ')} → ${r.code}\n${r.stderr}${r.stdout}`);
    return r.stdout;
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-keys-cli-'));
    config = join(dir, 'postern.yaml');
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
    await writeFile(config, 'hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\nca: { crl_url: "http://gw.test.example/crl/ca.crl" }\n');
    // A SoftHSM2 token of our own, found by its label.
    await writeFile(join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
    await exec('mkdir', ['-p', join(dir, 'tokens')]);
    env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
    await exec('softhsm2-util', ['--init-token', '--free', '--label', 'postern', '--pin', '1234', '--so-pin', '5678'], { env });
  });
  afterAll(() => cleanup());

  it('refuses to start the gateway with a KEK file others may read, saying how to fix it', async () => {
    const d = join(dir, 'badkek');
    await exec('mkdir', ['-p', d]);
    await writeFile(join(d, 'policy.yaml'), 'rules: []\n');
    await writeFile(join(d, 'kek.key'), Buffer.alloc(32, 7), { mode: 0o644 });
    await writeFile(join(d, 'postern.yaml'), 'data_dir: .\npolicy: policy.yaml\nsmtp: { listen: ["127.0.0.1:0"] }\nadmin: { listen: [] }\n');
    const r = await exec(process.execPath, [MAIN, 'start', '-c', join(d, 'postern.yaml')], { env, timeout: 20_000 }).then(
      () => ({ code: 0, stdout: '' }),
      (e: { code: number; stdout: string }) => e,
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/"event":"supervisor.keystore_unusable".*kek\.key.*chmod 600/);
  });

  it('imports a Thunderbird PKCS#12 (certificate, chain and key) and refuses a wrong password', async () => {
    const bad = await postern('cert', 'import', join(NSS, 'Alice.p12'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/Alice\.p12: .*password/i);

    const out = await ok('cert', 'import', join(NSS, 'Alice.p12'), '--password-env', 'P12_PASSWORD');
    expect(out).toMatch(/^added: [0-9a-f]{16} .*CN=Alice.* <Alice@example\.com>$/m);
    expect(out).toMatch(/^added: [0-9a-f]{16} .*NSS Test CA/m);
    expect(out).toMatch(/not a trust anchor/);
    expect(out).toMatch(/^added: private key \(rsa 2048\)/m);
    // Again: nothing changes.
    expect(await ok('cert', 'import', join(NSS, 'Alice.p12'), '--password-env', 'P12_PASSWORD')).toMatch(/^duplicate \(already in the store; nothing changed\): .*Alice/m);

    const list = await ok('cert', 'list', '--address', 'alice@EXAMPLE.com');
    expect(list).toMatch(/^[0-9a-f]{16}\tkey\t20\d\d-\d\d-\d\d\timport\t.*<Alice@example\.com>$/m);
  });

  it('exports a certificate with its key only as a password-protected PKCS#12 that openssl reads', async () => {
    const fp = /^([0-9a-f]{16})\t/m.exec(await ok('cert', 'list', '--address', 'alice@example.com'))![1]!;
    const noPassword = await postern('cert', 'export', fp, '--with-key', '--out', join(dir, 'x.p12'));
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toMatch(/password-protected PKCS#12/);
    await ok('cert', 'export', fp, '--with-key', '--password-env', 'EXPORT_PASSWORD', '--out', join(dir, 'alice.p12'));
    const { stdout } = await exec('openssl', ['pkcs12', '-in', join(dir, 'alice.p12'), '-passin', 'pass:export-secret', '-nodes']);
    expect(stdout).toMatch(/BEGIN PRIVATE KEY/);
    expect(stdout).toMatch(/subject=.*CN ?= ?Alice/);
    expect(stdout).toMatch(/subject=.*NSS Test CA/);
    await expect(exec('openssl', ['pkcs12', '-in', join(dir, 'alice.p12'), '-passin', 'pass:wrong', '-nodes'])).rejects.toThrow();
    // The audit log has the export.
    const pem = await ok('cert', 'export', fp);
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----/);
  });

  it('refuses a certificate that breaks the rules, naming each reason', async () => {
    const key = join(dir, 'weak.key');
    const cert = join(dir, 'weak.pem');
    await exec('openssl', ['req', '-x509', '-newkey', 'rsa:1024', '-nodes', '-subj', '/CN=Weak', '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=serverAuth', '-days', '10', '-keyout', key, '-out', cert]);
    const r = await postern('cert', 'import', cert);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no e-mail address in the certificate/);
    expect(r.stderr).toMatch(/does not include emailProtection/);
    expect(r.stderr).toMatch(/RSA key of 1024 bits is too weak/);
    expect(await ok('cert', 'list')).not.toMatch(/CN=Weak/);
  });

  it('runs an internal CA whose certificates openssl verifies for S/MIME signing, and sign a mail openssl smime verifies', async () => {
    expect(await ok('ca', 'init', '--name', 'Example Mail CA', '--org', 'Example Ltd')).toMatch(/^created: [0-9a-f]{16} CN=Example Mail CA,O=Example Ltd/m);
    expect((await postern('ca', 'init')).stderr).toMatch(/exists already/);
    const issued = await ok('ca', 'issue', 'bob@example.com', '--name', 'Bob Example');
    expect(issued).toMatch(/^issued: ([0-9a-f]{16}) CN=Bob Example <bob@example\.com>/m);
    const fp = /^issued: ([0-9a-f]{16})/m.exec(issued)![1]!;
    await ok('ca', 'show', '--out', join(dir, 'ca.pem'));
    await ok('cert', 'export', fp, '--with-key', '--password-env', 'EXPORT_PASSWORD', '--out', join(dir, 'bob.p12'));
    await exec('openssl', ['pkcs12', '-in', join(dir, 'bob.p12'), '-passin', 'pass:export-secret', '-nodes', '-out', join(dir, 'bob.pem')]);
    expect((await exec('openssl', ['verify', '-purpose', 'smimesign', '-CAfile', join(dir, 'ca.pem'), join(dir, 'bob.pem')])).stdout).toMatch(/OK/);
    const text = (await exec('openssl', ['x509', '-in', join(dir, 'bob.pem'), '-noout', '-text'])).stdout;
    expect(text).toContain('http://gw.test.example/crl/ca.crl');
    await writeFile(join(dir, 'mail.txt'), 'Content-Type: text/plain\r\n\r\nfrom Bob\r\n');
    await exec('openssl', ['smime', '-sign', '-signer', join(dir, 'bob.pem'), '-inkey', join(dir, 'bob.pem'), '-in', join(dir, 'mail.txt'), '-out', join(dir, 'mail.eml')]);
    expect((await exec('openssl', ['smime', '-verify', '-CAfile', join(dir, 'ca.pem'), '-in', join(dir, 'mail.eml')])).stdout).toContain('from Bob');
  });

  it('generates, imports and exports OpenPGP keys that gpg uses', async () => {
    const home = join(dir, 'gnupg');
    await exec('mkdir', ['-m', '700', '-p', home]);
    const gpg = (...a: string[]) => exec('gpg', ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', 'export-secret', ...a]);
    const gen = await ok('pgp', 'generate', 'carol@example.com', '--name', 'Carol');
    const fpr = /^generated: ([0-9A-F]{40}) Carol <carol@example\.com>/m.exec(gen)![1]!;
    await ok('pgp', 'export', fpr, '--out', join(dir, 'carol.asc'));
    await gpg('--import', join(dir, 'carol.asc'));
    expect((await gpg('--with-colons', '--fingerprint', 'carol@example.com')).stdout).toContain(fpr);
    await ok('pgp', 'export', fpr, '--secret', '--passphrase-env', 'EXPORT_PASSWORD', '--out', join(dir, 'carol-sec.asc'));
    await gpg('--import', join(dir, 'carol-sec.asc'));
    expect((await gpg('--with-colons', '--list-secret-keys', fpr)).stdout).toMatch(/^sec:/m);

    await gpg('--quick-gen-key', 'Dave <dave@example.net>', 'future-default', 'default', 'never');
    await writeFile(join(dir, 'dave.asc'), (await gpg('--armor', '--export', 'dave@example.net')).stdout);
    expect(await ok('pgp', 'import', join(dir, 'dave.asc'))).toMatch(/^added: [0-9A-F]{40} Dave <dave@example\.net>$/m);
    const list = await ok('pgp', 'list');
    expect(list).toMatch(/\tsecret,encrypt,sign\t-\tgenerated\tCarol <carol@example\.com>/);
    expect(list).toMatch(/\tencrypt,sign\t-\timport\tDave <dave@example\.net>/);
  });

  it('rotates the KEK to a SoftHSM2 token and back; a wrong PIN is a clear error, not a crash', async () => {
    const toToken = ['--to-pkcs11-module', SOFTHSM, '--to-token', 'postern', '--to-pin-env', 'PIN', '--to-key-label', 'postern-kek'];
    const r1 = await ok('kek', 'rotate', ...toToken, '--create-key');
    expect(r1).toMatch(/created: AES-256 key "postern-kek" in token "postern"/);
    expect(r1).toMatch(/rotated: \d+ keys re-wrapped from file:[0-9a-f]{16} to pkcs11:postern\/postern-kek/);
    // The config still names the file KEK: the store refuses it now, saying what it needs.
    const stale = await postern('cert', 'list');
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/wrapped by pkcs11:postern\/postern-kek, but the configured KEK is file:/);

    const original = await readFile(config, 'utf8');
    await writeFile(config, `${original}kek: { pkcs11: { module: ${SOFTHSM}, token: postern, pin_env: PIN, key_label: postern-kek } }\n`);
    expect(await ok('cert', 'list')).toMatch(/Alice@example\.com/);
    // Keys still usable through the token: export decrypts the key inside it.
    const fp = /^([0-9a-f]{16})\t\S*key/m.exec(await ok('cert', 'list', '--address', 'bob@example.com'))![1]!;
    await ok('cert', 'export', fp, '--with-key', '--password-env', 'EXPORT_PASSWORD', '--out', join(dir, 'bob-hsm.p12'));
    expect((await exec('openssl', ['pkcs12', '-in', join(dir, 'bob-hsm.p12'), '-passin', 'pass:export-secret', '-nodes'])).stdout).toMatch(/BEGIN PRIVATE KEY/);

    await writeFile(config, `${original}kek: { pkcs11: { module: ${SOFTHSM}, token: postern, pin_env: BAD_PIN, key_label: postern-kek } }\n`);
    const wrongPin = await postern('cert', 'list');
    expect(wrongPin.code).toBe(1);
    expect(wrongPin.stderr).toMatch(/PIN/);
    expect(wrongPin.stderr).not.toMatch(/at .*\.js:\d+/); // a message, not a stack trace
    await writeFile(config, `${original}kek: { pkcs11: { module: ${SOFTHSM}, token: missing, pin_env: PIN, key_label: postern-kek } }\n`);
    expect((await postern('cert', 'list')).stderr).toMatch(/no PKCS#11 token labelled "missing".*postern/);

    // And back to a file KEK: the token is no longer needed.
    await writeFile(config, `${original}kek: { pkcs11: { module: ${SOFTHSM}, token: postern, pin_env: PIN, key_label: postern-kek } }\n`);
    expect(await ok('kek', 'rotate', '--to-file', join(dir, 'kek2.key'))).toMatch(/rotated: \d+ keys re-wrapped from pkcs11:postern\/postern-kek to file:/);
    await writeFile(config, `${original}kek: { file: kek2.key }\n`);
    expect(await ok('cert', 'list', '--address', 'bob@example.com')).toMatch(/\tkey\t/);
    await ok('cert', 'export', fp, '--with-key', '--password-env', 'EXPORT_PASSWORD', '--out', join(dir, 'bob-file.p12'));
  });
});
