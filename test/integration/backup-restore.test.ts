/**
 * `postern backup` of a running gateway (an internal user's S/MIME certificate and key, her
 * OpenPGP key, a PDF password, the audit trail, a policy with a groups file, the portal's TLS
 * certificate) while it decrypts mail, and `postern restore` onto new data_dirs: the restored
 * gateway decrypts mail that openssl and gpg encrypted to the OLD gateway's keys. A wrong
 * passphrase, a changed byte and an occupied data_dir are refused with nothing written.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { execFile } from 'node:child_process';
import { freePort, MAIN, runPostern, startGateway, writeGatewayConfig, type CliResult, type Gateway } from '../helpers/gateway.js';
import { gpgHome, type GpgHome } from '../helpers/gpg-home.js';
import { maildirOf } from '../helpers/maildir.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../helpers/pki-openssl.js';
import { sendRaw } from '../helpers/send.js';
import { lookupAccount } from '../../src/supervisor/account.js';

const PASSPHRASE = 'a long backup passphrase, 2026';
/** The environment with the backup passphrase set to `pass`, or without it (null). */
const withPass = (pass: string | null) => {
  const env = { ...process.env };
  delete env.POSTERN_BACKUP_PASSPHRASE;
  if (pass !== null) env.POSTERN_BACKUP_PASSPHRASE = pass;
  return env;
};

/** Mail to alice that openssl encrypted to her certificate (the old gateway's). */
async function smimeTo(dir: string, cert: string, token: string): Promise<Buffer> {
  const inner = join(dir, `${token}-inner.txt`);
  await writeFile(inner, `Content-Type: text/plain; charset=us-ascii\r\n\r\nfor alice only, token ${token}\r\n`);
  await run('openssl', ['cms', '-encrypt', '-in', inner, '-aes256', '-out', join(dir, `${token}.eml`), cert]);
  const enc = (await readFile(join(dir, `${token}.eml`), 'latin1')).replace(/\r?\n/g, '\r\n');
  return Buffer.from(
    `From: dave@partner.example\r\nTo: alice@example.com\r\nSubject: sealed ${token}\r\nMessage-ID: <${token}@partner.example>\r\nDate: ${new Date().toUTCString()}\r\n${enc}`,
    'latin1',
  );
}

/** `postern ARGS` without -c (--config-dir names the target instead). */
function posternBare(args: string[], pass: string | null = PASSPHRASE): Promise<CliResult> {
  return new Promise((res) => {
    execFile(process.execPath, [MAIN, ...args], { env: withPass(pass) }, (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const auditActions = (db: string) => {
  const d = new Database(db, { readonly: true });
  try {
    return (d.prepare('SELECT action FROM audit_log ORDER BY id').all() as { action: string }[]).map((r) => r.action);
  } finally {
    d.close();
  }
};

describe('backup and restore of a running gateway', () => {
  let old: string, fresh: string, other: string;
  const cleanups: (() => Promise<void>)[] = [];
  let oldConfig: string, freshConfig: string;
  let oldGw: Gateway | undefined, freshGw: Gateway | undefined;
  let port: number, freshPort: number;
  let alice: Issued;
  let aliceFpr: string;
  let gpg: GpgHome;
  let backup: string;
  const pdfPassword = 'pdf-pass-for-bob-2026';
  const postern = (config: string, args: string[], pass: string | null = PASSPHRASE) => runPostern(config, args, withPass(pass));

  beforeAll(async () => {
    const dirs = await Promise.all([tempDir('postern-backup-old-'), tempDir('postern-backup-new-'), tempDir('postern-backup-other-')]);
    [old, fresh, other] = dirs.map((d) => d.dir) as [string, string, string];
    cleanups.push(...dirs.map((d) => d.cleanup));
    const ca = await opensslCa(old, 'Example Corp');
    alice = await opensslMailbox(old, ca, 'alice@example.com');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(old, 'portal.key'), '-out', join(old, 'portal.crt'), '-days', '2', '-subj', '/CN=gw.test.example']);
    [port, freshPort] = await Promise.all([freePort(), freePort()]);
    const portalPort = await freePort();
    oldConfig = await writeGatewayConfig(old, port, `portal: { listen: ["127.0.0.1:${portalPort}"], tls: { cert: portal.crt, key: portal.key } }\n`);
    await writeFile(join(old, 'policy.yaml'), 'groups: groups.yaml\nrules: []\n');
    await writeFile(join(old, 'groups.yaml'), 'groups:\n  staff: ["*@example.com"]\n');
    const ok = async (args: string[], env: NodeJS.ProcessEnv = process.env) => {
      const r = await runPostern(oldConfig, args, env);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    await ok(['cert', 'import', ca.cert, '--trust']);
    await ok(['cert', 'import', alice.cert, '--key', alice.key]);
    aliceFpr = /([0-9A-F]{40})/.exec(await ok(['pgp', 'generate', 'alice@example.com', '--name', 'Alice']))![1]!;
    await ok(['pgp', 'export', aliceFpr, '--out', join(old, 'alice.asc')]);
    await ok(['pdf', 'password', 'set', '--from', 'alice@example.com', '--to', 'bob@partner.example'], { ...process.env, POSTERN_PDF_PASSWORD: pdfPassword });
    gpg = gpgHome();
    gpg.import(await readFile(join(old, 'alice.asc')));
    oldGw = await startGateway(oldConfig);
    backup = join(other, 'gateway.backup');
  }, 90_000);

  afterAll(async () => {
    await oldGw?.stop();
    await freshGw?.stop();
    gpg?.close();
    for (const c of cleanups) await c();
  });

  it('backs up the running gateway while it decrypts mail (and writes its audit log)', async () => {
    const { waitDelivered } = maildirOf(() => old);
    const mails = await Promise.all([1, 2, 3, 4].map((i) => smimeTo(old, alice.cert, `b${i}`)));
    const [made] = await Promise.all([postern(oldConfig, ['backup', backup]), ...mails.map((m) => sendRaw(port, 'dave@partner.example', ['alice@example.com'], m))]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/^written: .*gateway\.backup \(\d+ bytes\): postern\.yaml, policy\.yaml, groups\.yaml, portal\.crt, portal\.key, kek\.key, portal\.db, postern\.db$/m);
    expect(made.stdout).toMatch(/the backup holds the KEK file/);
    expect(made.stderr).toBe('');
    for (const i of [1, 2, 3, 4]) expect(await readFile(await waitDelivered('alice@example.com', `sealed b${i}`), 'latin1')).toContain(`token b${i}`);
    const bytes = await readFile(backup);
    expect((await stat(backup)).mode & 0o777).toBe(0o600);
    // Nothing readable inside: the TLS key, the policy, the KEK.
    expect(bytes.includes(Buffer.from('PRIVATE KEY'))).toBe(false);
    expect(bytes.includes(Buffer.from('groups.yaml'))).toBe(false);
    expect(bytes.includes(await readFile(join(old, 'kek.key')))).toBe(false);
    // No work files left beside it.
    expect(await readdir(other)).toEqual(['gateway.backup']);
    await oldGw!.stop();
    oldGw = undefined;
  }, 60_000);

  it('refuses a wrong passphrase, a changed byte, or no passphrase, and writes nothing', async () => {
    const target = join(other, 'target');
    const before = await readdir(other);
    const wrong = await posternBare(['restore', backup, '--config-dir', target], 'the wrong passphrase entirely');
    expect(wrong).toMatchObject({ code: 1, stdout: '', stderr: 'postern: wrong passphrase for this backup (or its header was altered)\n' });
    const none = await posternBare(['restore', backup, '--config-dir', target], null);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^postern: the backup passphrase variable POSTERN_BACKUP_PASSPHRASE is not set or empty/);

    const damaged = join(other, 'damaged.backup');
    const bytes = Buffer.from(await readFile(backup));
    // Near the end: the tail of postern.db, so a restore would have staged nearly everything first.
    bytes[bytes.length - 100]! ^= 0x40;
    await writeFile(damaged, bytes);
    const bad = await posternBare(['restore', damaged, '--config-dir', target]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^postern: the backup is damaged or was altered \(chunk \d+ at byte \d+ fails authentication\)\n$/);
    expect((await readdir(other)).sort()).toEqual([...before, 'damaged.backup'].sort());
    // --check finds the same without a target, and writes nothing either.
    const checked = await posternBare(['restore', damaged, '--check']);
    expect(checked.code).toBe(1);
    expect(checked.stderr).toMatch(/^postern: the backup is damaged or was altered \(chunk \d+ at byte \d+ fails authentication\)\n$/);
    expect((await readdir(other)).sort()).toEqual([...before, 'damaged.backup'].sort());
  }, 30_000);

  it('restore --check reads a whole backup and lists what is inside; help names both commands', async () => {
    const r = await posternBare(['restore', backup, '--check']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^whole and authentic: the backup of gw\.test\.example made \S+Z \(Postern \d+\.\d+\.\d+, format 1\)$/m);
    expect(r.stdout).toMatch(/^ {2}config\t\d+\tportal\.key$/m);
    expect(r.stdout).toMatch(/^ {2}kek-file\t32\tkek\.key$/m);
    expect(r.stdout).toMatch(/^ {2}keystore\t\d+\tpostern\.db$/m);
    const help = await posternBare(['help']);
    expect(help.stdout).toMatch(/^ {2}backup FILE \[--passphrase-env VAR\]$/m);
    expect(help.stdout).toMatch(/^ {2}restore FILE --check /m);
  }, 30_000);

  it('restores onto a new data_dir under a new config; the restored gateway decrypts S/MIME and OpenPGP mail sent to the old one', async () => {
    freshConfig = await writeGatewayConfig(fresh, freshPort);
    const r = await postern(freshConfig, ['restore', backup]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^restored: the backup of gw\.test\.example made \d{4}-\d\d-\d\dT[\d:.]+Z \(Postern \d+\.\d+\.\d+\)$/m);
    // The data only: this config stays as the admin wrote it.
    expect(await readFile(join(fresh, 'policy.yaml'), 'utf8')).toBe('rules: []\n');
    const mode = async (f: string) => (await stat(join(fresh, f))).mode & 0o777;
    expect(await mode('postern.db')).toBe(0o600);
    expect(await mode('kek.key')).toBe(0o600);
    expect(await mode('portal.db')).toBe(0o660);
    const account = lookupAccount('postern');
    if (process.getuid?.() === 0 && account) expect((await stat(join(fresh, 'portal.db'))).gid).toBe(account.gid);
    expect((await readFile(join(fresh, 'kek.key'))).equals(await readFile(join(old, 'kek.key')))).toBe(true);
    expect((await readdir(fresh)).filter((n) => n.startsWith('.'))).toEqual([]);

    const actions = auditActions(join(fresh, 'postern.db'));
    expect(actions).toEqual(expect.arrayContaining(['import', 'generate', 'pdf-password-set', 'backup']));
    expect(actions.at(-1)).toBe('restore');
    expect((await postern(freshConfig, ['pdf', 'password', 'show', '--from', 'alice@example.com', '--to', 'bob@partner.example'])).stdout).toBe(`${pdfPassword}\n`);

    freshGw = await startGateway(freshConfig);
    const { waitDelivered } = maildirOf(() => fresh);
    expect(await sendRaw(freshPort, 'dave@partner.example', ['alice@example.com'], await smimeTo(fresh, alice.cert, 'r1'))).toMatch(/^250 /);
    const smime = await readFile(await waitDelivered('alice@example.com', 'sealed r1'), 'latin1');
    expect(smime).toContain('for alice only, token r1');
    expect(smime).toMatch(/^X-Postern-Encryption: decrypted; method=smime; /m);

    const armored = gpg.run(['--armor', '--encrypt', '--recipient', aliceFpr], 'Content-Type: text/plain\r\n\r\npgp for alice, token r2\r\n').stdout.toString();
    const pgp = Buffer.from(
      `From: paula@pgp.example\r\nTo: alice@example.com\r\nSubject: sealed r2\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n` +
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="pp"\r\n\r\n--pp\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n' +
        `--pp\r\nContent-Type: application/octet-stream\r\n\r\n${armored.replace(/\r?\n/g, '\r\n')}\r\n--pp--\r\n`,
    );
    expect(await sendRaw(freshPort, 'paula@pgp.example', ['alice@example.com'], pgp)).toMatch(/^250 /);
    const pgpText = await readFile(await waitDelivered('alice@example.com', 'sealed r2'), 'latin1');
    expect(pgpText).toContain('pgp for alice, token r2');
    expect(pgpText).toMatch(/^X-Postern-Encryption: decrypted; method=pgp; /m);
    await freshGw.stop();
    freshGw = undefined;
  }, 90_000);

  it('refuses to restore over an existing keystore unless --force', async () => {
    const again = await postern(freshConfig, ['restore', backup]);
    expect(again.code).toBe(1);
    // The stopped gateway may have left its WAL beside the database: named as well.
    expect(again.stderr).toMatch(/^postern: \S+ already holds kek\.key, portal\.db, postern\.db(, postern\.db-wal, postern\.db-shm)?: restore onto a fresh data_dir, or stop that gateway and add --force to replace them\n$/);
    expect(auditActions(join(fresh, 'postern.db')).filter((a) => a === 'restore')).toHaveLength(1);
    const forced = await postern(freshConfig, ['restore', backup, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    // The replaced keystore's history is the backup's, plus this restore.
    expect(auditActions(join(fresh, 'postern.db')).filter((a) => a === 'restore')).toHaveLength(1);
  }, 30_000);

  it('--config-dir restores the config files as well, and the data into the data_dir that config names', async () => {
    const conf = join(other, 'restored-config');
    const r = await posternBare(['restore', backup, '--config-dir', conf]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`start the gateway with: postern start -c ${join(conf, 'postern.yaml')}`);
    for (const f of ['postern.yaml', 'policy.yaml', 'groups.yaml', 'portal.crt', 'portal.key']) {
      expect((await readFile(join(conf, f))).equals(await readFile(join(old, f))), f).toBe(true);
      expect((await stat(join(conf, f))).mode & 0o777, f).toBe((await stat(join(old, f))).mode & 0o777);
    }
    // data_dir: "." in that config, so the keystore is beside it.
    const restored = join(conf, 'postern.yaml');
    expect((await runPostern(restored, ['check'])).code).toBe(0);
    expect((await postern(restored, ['pdf', 'password', 'show', '--from', 'alice@example.com', '--to', 'bob@partner.example'])).stdout).toBe(`${pdfPassword}\n`);
    expect((await postern(restored, ['cert', 'list', '--address', 'alice@example.com'])).stdout).toMatch(/alice@example\.com/);
  }, 30_000);
});
