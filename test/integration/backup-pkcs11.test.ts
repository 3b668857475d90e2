/**
 * Backup and restore with the KEK in a SoftHSM2 token: the backup holds the sealed keys only and
 * says so; a restore under a config naming the same token unseals them; another token with a key
 * of the same label (same KEK id, other key) is refused with nothing written — the restore
 * unseals a key to prove it, since a PKCS#11 KEK's id names only its token and label.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, writeGatewayConfig } from '../helpers/gateway.js';

const exec = promisify(execFile);
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
const KEK = `kek: { pkcs11: { module: ${SOFTHSM}, token: postern, pin_env: POSTERN_TEST_PIN, key_label: kek } }\n`;
const PAIR = ['--from', 'alice@example.com', '--to', 'bob@partner.example'];

describe('backup and restore with a PKCS#11 KEK (SoftHSM2)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const env = (conf: string): NodeJS.ProcessEnv => ({ ...process.env, SOFTHSM2_CONF: conf, POSTERN_TEST_PIN: '1234', POSTERN_BACKUP_PASSPHRASE: 'backup of the hsm gateway' });
  let conf1: string, conf2: string;
  const backup = () => join(dir, 'hsm.backup');

  /** A SoftHSM2 configuration with its own token directory and a token labelled "postern". */
  async function softhsm(name: string): Promise<string> {
    const conf = join(dir, `${name}.conf`);
    await mkdir(join(dir, name));
    await writeFile(conf, `directories.tokendir = ${join(dir, name)}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    await exec('softhsm2-util', ['--init-token', '--free', '--label', 'postern', '--pin', '1234', '--so-pin', '5678'], { env: { ...process.env, SOFTHSM2_CONF: conf } });
    return conf;
  }

  /** A gateway directory with a keystore whose keys the token's key "kek" seals (made by `kek rotate`). */
  async function gateway(name: string, conf: string): Promise<string> {
    const gw = join(dir, name);
    await mkdir(gw);
    const config = await writeGatewayConfig(gw, await freePort());
    const set = await runPostern(config, ['pdf', 'password', 'set', ...PAIR], { ...env(conf), POSTERN_PDF_PASSWORD: `sealed-in-the-token-${name}` });
    expect(set.code, set.stderr).toBe(0);
    const rotated = await runPostern(config, ['kek', 'rotate', '--to-pkcs11-module', SOFTHSM, '--to-token', 'postern', '--to-pin-env', 'POSTERN_TEST_PIN', '--to-key-label', 'kek', '--create-key'], env(conf));
    expect(rotated.code, rotated.stderr).toBe(0);
    await writeFile(config, `${await readFile(config, 'utf8')}${KEK}`);
    return config;
  }

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-backup-hsm-'));
    [conf1, conf2] = await Promise.all([softhsm('tokens1'), softhsm('tokens2')]);
    const config = await gateway('old', conf1);
    const made = await runPostern(config, ['backup', backup()], env(conf1));
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/^written: .*hsm\.backup \(\d+ bytes\): postern\.yaml, policy\.yaml, portal\.db, postern\.db$/m);
    expect(made.stdout).toContain('the backup holds the sealed keys only: the KEK stays in the PKCS#11 token "postern" (key "kek"), and a restore needs that same token');
  }, 60_000);
  afterAll(() => cleanup());

  it('restores under a config naming the same token; the keys unseal through it', async () => {
    const to = join(dir, 'new');
    await mkdir(to);
    const config = await writeGatewayConfig(to, await freePort(), KEK);
    const r = await runPostern(config, ['restore', backup()], env(conf1));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('the keys are sealed by the PKCS#11 token "postern" (key "kek"), which this gateway uses too');
    expect((await readdir(to)).filter((n) => n.startsWith('kek'))).toEqual([]);
    expect((await runPostern(config, ['pdf', 'password', 'show', ...PAIR], env(conf1))).stdout).toBe('sealed-in-the-token-old\n');
  }, 30_000);

  it('refuses another token whose key has the same label, and writes nothing', async () => {
    // Token 2 gets its own key "kek" (through a throw-away keystore): the same KEK id, another key.
    await gateway('throwaway', conf2);
    const to = join(dir, 'other');
    await mkdir(to);
    const config = await writeGatewayConfig(to, await freePort(), KEK);
    const before = (await readdir(to)).sort();
    const r = await runPostern(config, ['restore', backup()], env(conf2));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^postern: the restored keys do not unseal with .*postern\.yaml's KEK, so nothing was restored: cannot unwrap the data key with KEK pkcs11:postern\/kek/);
    expect((await readdir(to)).sort()).toEqual(before);
  }, 30_000);
});
