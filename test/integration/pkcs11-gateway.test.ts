/**
 * The gateway with its KEK in a SoftHSM2 token (PKCS#11): the signing key sealed under the
 * token's AES key is unsealed by the worker and used, and openssl verifies the signature of the
 * mail that went out over SMTP; nothing about the key is in the logs.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../helpers/pki-openssl.js';
import { sendRaw } from '../helpers/send.js';

const exec = promisify(execFile);
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';

describe('the gateway with a PKCS#11 KEK (SoftHSM2)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let config: string;
  let ca: Issued;
  const saved = { conf: process.env.SOFTHSM2_CONF, pin: process.env.POSTERN_TEST_PIN };
  const { waitDelivered } = maildirOf(() => dir);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-pkcs11-gw-'));
    await writeFile(join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
    await exec('mkdir', ['-p', join(dir, 'tokens')]);
    process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
    process.env.POSTERN_TEST_PIN = '1234';
    await exec('softhsm2-util', ['--init-token', '--free', '--label', 'postern', '--pin', '1234', '--so-pin', '5678']);
    ca = await opensslCa(dir, 'HSM Corp');
    const alice = await opensslMailbox(dir, ca, 'alice@example.com');
    port = await freePort();
    config = await writeGatewayConfig(dir, port);
    const ok = async (args: string[]) => {
      const r = await runPostern(config, args);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    await ok(['cert', 'import', ca.cert, '--trust']);
    await ok(['cert', 'import', alice.cert, '--key', alice.key]);
    // Into the token: every sealed key re-wrapped, then the config names the token's KEK.
    expect(await ok(['kek', 'rotate', '--to-pkcs11-module', SOFTHSM, '--to-token', 'postern', '--to-pin-env', 'POSTERN_TEST_PIN', '--to-key-label', 'kek', '--create-key'])).toMatch(/rotated: 1 key re-wrapped from file:[0-9a-f]{16} to pkcs11:postern\/kek/);
    await writeFile(config, `${await readFile(config, 'utf8')}kek: { pkcs11: { module: ${SOFTHSM}, token: postern, pin_env: POSTERN_TEST_PIN, key_label: kek } }\n`);
    gw = await startGateway(config);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    // Assigning undefined would store the string "undefined": unset what was unset.
    for (const [name, value] of [['SOFTHSM2_CONF', saved.conf], ['POSTERN_TEST_PIN', saved.pin]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await cleanup();
  });

  it('signs outgoing mail with a key unsealed through the token; openssl verifies it', async () => {
    const raw = Buffer.from(`From: alice@example.com\r\nTo: carol@partner.example\r\nSubject: from the hsm\r\nDate: ${new Date().toUTCString()}\r\n\r\nsigned via pkcs11, token s1\r\n`);
    expect(await sendRaw(port, 'alice@example.com', ['carol@partner.example'], raw)).toMatch(/^250 /);
    const file = await waitDelivered('carol@partner.example', 'from the hsm');
    expect(await readFile(file, 'latin1')).toMatch(/^Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"/m);
    await run('openssl', ['cms', '-verify', '-in', file, '-CAfile', ca.cert, '-out', join(dir, 's1.txt')]);
    expect(await readFile(join(dir, 's1.txt'), 'latin1')).toContain('signed via pkcs11, token s1');
    expect(JSON.stringify(gw.logs)).not.toMatch(/BEGIN (RSA )?PRIVATE KEY|"1234"/);
  });
});
