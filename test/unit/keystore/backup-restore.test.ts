/**
 * makeBackup / restoreBackup through the module API (the CLI and the gateway test cover the file
 * KEK): a passphrase KEK travels as its salt and comes back usable with the same passphrase; a
 * restore under a config with another kind of KEK, or without the KEK's passphrase, is refused
 * with nothing left behind; a manifest that names paths outside the config directory is refused.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { BackupWriter } from '../../../src/keystore/backup/format.js';
import { BackupError, makeBackup, restoreBackup } from '../../../src/keystore/backup/index.js';
import { openKeyStore } from '../../../src/keystore/index.js';
import { testConfig, tempDir } from '../../helpers/config.js';

const CHEAP = { N: 2 ** 10, r: 8, p: 1 };
const PASSPHRASE = 'backup passphrase of the test';
const KEK_VAR = 'POSTERN_TEST_BACKUP_KEK';
const PAIR = { sender: 'alice@example.com', recipient: 'bob@partner.example' };

let dirs: { dir: string; cleanup: () => Promise<void> }[] = [];
const newDir = async () => {
  const d = await tempDir('postern-backup-unit-');
  dirs.push(d);
  return d.dir;
};
beforeEach(() => {
  process.env[KEK_VAR] = 'the KEK passphrase of this gateway';
});
afterEach(async () => {
  delete process.env[KEK_VAR];
  for (const d of dirs) await d.cleanup();
  dirs = [];
});

/** A config whose files exist on disk (postern.yaml and the policy are backed up); a file KEK in it unless `kek`. */
async function gatewayDir(kek?: Config['kek']): Promise<Config> {
  const dir = await newDir();
  await writeFile(join(dir, 'postern.yaml'), 'hostname: gw.test.example\n');
  await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
  return testConfig(dir, kek ? { kek } : {});
}

describe('backup and restore (module API)', () => {
  it('a passphrase KEK: its salt is in the backup, the passphrase is not, and the restored keys open with it', async () => {
    const from = await gatewayDir({ passphrase_env: KEK_VAR });
    const store = await openKeyStore(from);
    const { password } = await store.pdfPassword(PAIR, 'pair', 'test');
    await store.close();
    const file = join(await newDir(), 'b.backup');
    const s = await makeBackup(from, file, { passphrase: PASSPHRASE, actor: 'test', cost: CHEAP });
    expect(s.entries.map((e) => `${e.kind}:${e.name}`)).toEqual(['config:postern.yaml', 'config:policy.yaml', 'kek-salt:kek.salt', 'keystore:postern.db']);
    expect(s.kek).toEqual({ kind: 'passphrase', passphrase_env: KEK_VAR });
    expect((await readFile(file)).includes(Buffer.from(process.env[KEK_VAR]!))).toBe(false);

    const to = await gatewayDir({ passphrase_env: KEK_VAR });
    const r = await restoreBackup(file, { passphrase: PASSPHRASE, actor: 'test', force: false, config: to });
    expect(r.restored).toEqual([join(to.data_dir, 'kek.salt'), to.keystore.sqlite]);
    expect(await readFile(join(to.data_dir, 'kek.salt'))).toEqual(await readFile(join(from.data_dir, 'kek.salt')));
    const restored = await openKeyStore(to, { createKek: false });
    try {
      expect((await restored.showPdfPassword(PAIR, 'pair', 'test'))?.password).toBe(password);
      expect((await restored.auditLog('keystore')).map((e) => e.action)).toEqual(['backup', 'restore']);
    } finally {
      await restored.close();
    }
  });

  it('holds the TLS files the config names inside its directory, and lists those outside as left out', async () => {
    const base = await gatewayDir();
    const outside = await newDir();
    await mkdir(join(base.data_dir, 'tls'));
    for (const f of ['tls/admin.crt', 'tls/admin.key']) await writeFile(join(base.data_dir, f), `${f}\n`);
    for (const f of ['smtp.crt', 'smtp.key']) await writeFile(join(outside, f), `${f}\n`);
    const config = testConfig(base.data_dir, {
      admin: { tls: { cert: join(base.data_dir, 'tls/admin.crt'), key: join(base.data_dir, 'tls/admin.key') } },
      smtp: { tls: { cert: join(outside, 'smtp.crt'), key: join(outside, 'smtp.key') } },
    });
    await (await openKeyStore(config)).close();
    const s = await makeBackup(config, join(await newDir(), 'b.backup'), { passphrase: PASSPHRASE, actor: 'test', cost: CHEAP });
    expect(s.entries.filter((e) => e.kind === 'config').map((e) => e.name)).toEqual(['postern.yaml', 'policy.yaml', 'tls/admin.crt', 'tls/admin.key']);
    expect(s.leftOut).toEqual([
      { key: 'smtp.tls.cert', path: join(outside, 'smtp.crt'), reason: 'outside the config directory' },
      { key: 'smtp.tls.key', path: join(outside, 'smtp.key'), reason: 'outside the config directory' },
    ]);
  });

  it('refuses a backup into a directory that does not exist, before recording anything', async () => {
    const config = await gatewayDir();
    await (await openKeyStore(config)).close();
    const missing = join(await newDir(), 'no-such-dir');
    await expect(makeBackup(config, join(missing, 'b.backup'), { passphrase: PASSPHRASE, actor: 'test', cost: CHEAP })).rejects.toThrow(
      `the directory ${missing} for the backup does not exist`,
    );
    const store = await openKeyStore(config);
    try {
      expect(await store.auditLog('keystore')).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('refuses a config with another kind of KEK, or without the passphrase the keys need, and leaves nothing', async () => {
    const from = await gatewayDir({ passphrase_env: KEK_VAR });
    const store = await openKeyStore(from);
    // A sealed key: a keystore without any would open under any KEK.
    await store.pdfPassword(PAIR, 'pair', 'test');
    await store.close();
    const file = join(await newDir(), 'b.backup');
    await makeBackup(from, file, { passphrase: PASSPHRASE, actor: 'test', cost: CHEAP });

    const other = await gatewayDir();
    await expect(restoreBackup(file, { passphrase: PASSPHRASE, actor: 'test', force: false, config: other })).rejects.toThrow(
      `the backup was made with a passphrase KEK, but ${other.file} configures a file KEK: configure the same kind (kek: in postern.yaml)`,
    );
    expect((await readdir(other.data_dir)).sort()).toEqual(['policy.yaml', 'postern.yaml']);

    const to = await gatewayDir({ passphrase_env: KEK_VAR });
    process.env[KEK_VAR] = 'another passphrase than the gateway had';
    await expect(restoreBackup(file, { passphrase: PASSPHRASE, actor: 'test', force: false, config: to })).rejects.toThrow(
      /^the restored keystore does not open with .*postern\.yaml's KEK, so nothing was restored: .*wrapped by passphrase:/,
    );
    expect((await readdir(to.data_dir)).sort()).toEqual(['policy.yaml', 'postern.yaml']);
  });

  it('removes the data_dir it created when the backup turns out damaged at its last byte', async () => {
    const from = await gatewayDir();
    const store = await openKeyStore(from);
    await store.pdfPassword(PAIR, 'pair', 'test');
    await store.close();
    const file = join(await newDir(), 'b.backup');
    await makeBackup(from, file, { passphrase: PASSPHRASE, actor: 'test', cost: CHEAP });
    const bytes = await readFile(file);
    bytes[bytes.length - 1]! ^= 1;
    await writeFile(file, bytes);
    const parent = await newDir();
    const to = testConfig(join(parent, 'var'));
    await expect(restoreBackup(file, { passphrase: PASSPHRASE, actor: 'test', force: false, config: to })).rejects.toThrow(/fails authentication/);
    expect(existsSync(to.data_dir)).toBe(false);
    expect(await readdir(parent)).toEqual([]);
  });

  it('refuses a manifest naming a config file outside the directory it is restored to', async () => {
    const file = join(await newDir(), 'evil.backup');
    const fh = await open(file, 'wx');
    const w = await BackupWriter.start(fh, { passphrase: PASSPHRASE, created: new Date(), postern: '0.1.0', contents: { keystore: true, portal: false, kek: 'file', config_files: 2 }, cost: CHEAP });
    const manifest = {
      hostname: 'evil.example',
      config_file: '/etc/postern/postern.yaml',
      data_dir: '/var/lib/postern',
      kek: { kind: 'file' },
      entries: [
        { kind: 'config', name: 'postern.yaml', size: 1, mode: 0o644 },
        { kind: 'config', name: '../../root/.ssh/authorized_keys', size: 1, mode: 0o644 },
        { kind: 'kek-file', name: 'kek.key', size: 32, mode: 0o600 },
        { kind: 'keystore', name: 'postern.db', size: 1, mode: 0o600 },
      ],
      left_out: [],
    };
    const json = Buffer.from(JSON.stringify(manifest));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(json.length);
    await w.write(Buffer.concat([len, json, Buffer.from('xx'), randomBytes(32), Buffer.from('x')]));
    await w.finish();
    await fh.close();
    const target = join(await newDir(), 'conf');
    await expect(restoreBackup(file, { passphrase: PASSPHRASE, actor: 'test', force: false, configDir: target })).rejects.toThrow(
      'the backup\'s manifest is not valid (config file name "../../root/.ssh/authorized_keys")',
    );
    expect(existsSync(target)).toBe(false);
  });

  it('refuses to back up or restore a keystore kept in PostgreSQL, naming pg_dump, before touching anything', async () => {
    const pgConfig = (c: Config): Config => ({ ...c, keystore: { ...c.keystore, postgres: { url: 'postgres://postern@db.example:5432/postern', password_env: 'PGPASSWORD_OF_THE_TEST', pool: 4 } } });
    const from = pgConfig(await gatewayDir());
    const out = await newDir();
    const refused = await makeBackup(from, join(out, 'b.backup'), { passphrase: PASSPHRASE, actor: 'test', cost: CHEAP }).then(() => null, (e: unknown) => e);
    expect(refused).toBeInstanceOf(BackupError);
    expect((refused as Error).message).toMatch(/keystore\.postgres.*pg_dump.*KEK/);
    expect(await readdir(out)).toEqual([]);

    // A backup of a single gateway is not restored over a cluster's config either.
    const single = await gatewayDir();
    await (await openKeyStore(single)).close();
    const file = join(await newDir(), 'b.backup');
    await makeBackup(single, file, { passphrase: PASSPHRASE, actor: 'test', cost: CHEAP });
    const to = pgConfig(await gatewayDir());
    await expect(restoreBackup(file, { passphrase: PASSPHRASE, actor: 'test', force: false, config: to })).rejects.toThrow(/PostgreSQL.*pg_restore/);
    expect(existsSync(to.keystore.sqlite)).toBe(false);
  });
});
