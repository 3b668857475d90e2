/**
 * `postern admin …` and `postern audit …` through the real binary (dist/main.js): accounts made
 * with the password from the environment or a pipe (never an argument), changed, refused with one
 * clear line, each change audited via cli; TOTP turned on with a secret oathtool turns into the
 * code the store then accepts; the audit trail exported as JSON lines and listed with hostile text
 * escaped.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ADMIN_ROLES } from '../../src/core/admin-roles.js';
import { openKeyStore, type KeyStore } from '../../src/keystore/index.js';
import { tempDir } from '../helpers/config.js';
import { runPostern, runPosternWithInput } from '../helpers/gateway.js';

const exec = promisify(execFile);

// Each step starts the binary several times: seconds apiece when the machine is busy.
describe('postern admin and postern audit', { timeout: 180_000 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: string;
  const env = (over: NodeJS.ProcessEnv = {}) => {
    const e: NodeJS.ProcessEnv = { ...process.env, ...over };
    if (!('POSTERN_ADMIN_PASSWORD' in over)) delete e.POSTERN_ADMIN_PASSWORD;
    return e;
  };
  const postern = (args: string[], over?: NodeJS.ProcessEnv) => runPostern(config, args, env(over));
  const ok = async (args: string[], over?: NodeJS.ProcessEnv) => {
    const r = await postern(args, over);
    if (r.code !== 0) throw new Error(`postern ${args.join(' ')} → ${r.code}\n${r.stderr}${r.stdout}`);
    return r;
  };
  /** `postern …` with `input` piped to stdin. */
  const piped = (args: string[], input: string) => runPosternWithInput(config, args, input, env());
  /** The keystore as the admin role opens it, for what only it can check (log-ins). */
  const withStore = async <T>(fn: (s: KeyStore) => Promise<T>): Promise<T> => {
    const store = await openKeyStore(await loadConfig(config));
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-admin-cli-'));
    config = join(dir, 'postern.yaml');
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
    await writeFile(config, 'hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\n');
  });
  afterAll(() => cleanup());

  it('makes the first Administrator with the password from the environment, and another from a pipe', async () => {
    const r = await ok(['admin', 'add', 'Alice', '--role', 'administrator'], { POSTERN_ADMIN_PASSWORD: 'alice has a long password' });
    expect(r.stdout.trim()).toBe('added admin account Alice (administrator)');
    const bob = await piped(['admin', 'add', 'bob', '--role', 'user_operator', '--role', 'auditor'], 'bob has a long password\n');
    expect([bob.code, bob.stdout.trim()]).toEqual([0, 'added admin account bob (user_operator, auditor)']);
    expect(await withStore((s) => s.checkAdminLogin('alice', 'alice has a long password', undefined))).toMatchObject({ ok: true, account: { name: 'Alice' } });
    expect(await withStore((s) => s.checkAdminLogin('bob', 'bob has a long password', undefined))).toMatchObject({ ok: true, account: { roles: ['user_operator', 'auditor'] } });

    const list = await ok(['admin', 'list', '--json']);
    const rows = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((a) => [a.name, a.roles, a.disabled, a.totp])).toEqual([
      ['Alice', ['administrator'], false, false],
      ['bob', ['user_operator', 'auditor'], false, false],
    ]);
    expect(rows[0]!.lastLogin).toMatch(/^\d{4}-/);
    expect(list.stdout).not.toMatch(/scrypt|long password|\$/);
    const table = await ok(['admin', 'list']);
    expect(table.stdout).toMatch(/^NAME\tROLES\tSTATE\tTOTP/);
    expect(table.stdout).toContain('bob\tuser_operator,auditor\tenabled\toff\t');
    expect(table.stdout.trim().split('\n').at(-1)).toBe('-- 2 accounts');
  });

  it('refuses with one clear line: unknown roles, a password given as an argument, a short or missing one, a taken name', async () => {
    const carol = { POSTERN_ADMIN_PASSWORD: 'carol has a long password' };
    // Independent refusals, run at once (each is a process start on a busy machine).
    const [unknown, argument, short, missing, taken, badName, noRole, nobody] = await Promise.all([
      postern(['admin', 'add', 'carol', '--role', 'auditor', '--role', 'root'], carol),
      postern(['admin', 'add', 'carol', '--role', 'auditor', 'hunter2hunter2'], carol),
      postern(['admin', 'add', 'carol', '--role', 'auditor'], { POSTERN_ADMIN_PASSWORD: 'too short' }),
      piped(['admin', 'add', 'carol', '--role', 'auditor'], ''),
      postern(['admin', 'add', 'ALICE', '--role', 'auditor'], carol),
      postern(['admin', 'add', '../carol', '--role', 'auditor'], carol),
      postern(['admin', 'add', 'carol'], carol),
      postern(['admin', 'disable', 'nobody']),
    ]);
    expect([unknown.code, unknown.stderr.trim()]).toEqual([1, `postern: unknown role "root"; the roles are ${ADMIN_ROLES.join(', ')}`]);
    expect(argument.code).toBe(2);
    expect(argument.stderr.split('\n')[0]).toMatch(/^postern: too many arguments \(a password is never one/);
    expect(argument.stderr).not.toContain('hunter2');
    expect([short.code, short.stderr.trim()]).toEqual([1, 'postern: an admin password must have at least 12 characters']);
    expect([missing.code, missing.stderr.split('\n')[0]]).toEqual([2, 'postern: admin add needs the password in $POSTERN_ADMIN_PASSWORD or on stdin']);
    expect([taken.code, taken.stderr.trim()]).toEqual([1, 'postern: an admin account "Alice" exists already (names are compared without case)']);
    expect([badName.code, badName.stderr.trim()]).toEqual([1, 'postern: the account name "../carol" is not allowed: 1 to 64 of the characters A-Z a-z 0-9 . _ @ -']);
    expect([noRole.code, noRole.stderr.split('\n')[0]]).toEqual([2, `postern: admin add needs at least one --role: ${ADMIN_ROLES.join(', ')}`]);
    expect([nobody.code, nobody.stderr.trim()]).toEqual([1, 'postern: no admin account "nobody"']);
    expect((await ok(['admin', 'list', '--json'])).stdout.trim().split('\n')).toHaveLength(2);
  });

  it('changes password, roles and state, and keeps the last enabled Administrator', async () => {
    await ok(['admin', 'passwd', 'bob'], { POSTERN_ADMIN_PASSWORD: 'bob has a new long password' });
    expect(await withStore((s) => s.checkAdminLogin('bob', 'bob has a long password', undefined))).toEqual({ ok: false, reason: 'invalid' });
    expect((await ok(['admin', 'roles', 'bob', '--role', 'auditor,ca_operator'])).stdout.trim()).toBe('admin account bob now has the roles ca_operator, auditor');
    expect((await ok(['admin', 'disable', 'bob'])).stdout.trim()).toBe('admin account bob is disabled: it cannot sign in');
    expect(await withStore((s) => s.checkAdminLogin('bob', 'bob has a new long password', undefined))).toEqual({ ok: false, reason: 'disabled' });
    expect((await ok(['admin', 'enable', 'bob'])).stdout.trim()).toBe('admin account bob is enabled');
    const last = await postern(['admin', 'disable', 'alice']);
    expect([last.code, last.stderr.trim()]).toEqual([1, 'postern: Alice is the last enabled administrator: enable or make another one first']);
  });

  it('turns TOTP on (the secret printed once, as oathtool reads it) and off', async () => {
    const on = await ok(['admin', 'totp', 'alice', 'on']);
    const [uri, secret] = on.stdout.trim().split('\n');
    expect(uri).toBe(`otpauth://totp/Postern:Alice?secret=${secret}&issuer=Postern`);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(on.stderr).toMatch(/needs a TOTP code from its next log-in on/);
    const { stdout: code } = await exec('oathtool', ['--totp', '--base32', secret!]);
    await withStore(async (s) => {
      expect(await s.checkAdminLogin('alice', 'alice has a long password', undefined)).toEqual({ ok: false, reason: 'totp_required' });
      expect(await s.checkAdminLogin('alice', 'alice has a long password', code.trim())).toMatchObject({ ok: true });
      expect(await s.checkAdminLogin('alice', 'alice has a long password', code.trim())).toEqual({ ok: false, reason: 'invalid' });
    });
    expect((await ok(['admin', 'list', '--json'])).stdout).toContain('"totp":true');
    expect((await ok(['admin', 'totp', 'alice', 'off'])).stdout.trim()).toBe('admin account alice signs in without a TOTP code');
    expect(await withStore((s) => s.checkAdminLogin('alice', 'alice has a long password', undefined))).toMatchObject({ ok: true });
    const bad = await postern(['admin', 'totp', 'alice', 'maybe']);
    expect(bad.code).toBe(2);
  });

  it('exports the trail as JSON lines, filtered, and lists it newest first with hostile text escaped', async () => {
    const lines = (await ok(['audit', 'export'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const admin = lines.filter((l) => String(l.object).startsWith('admin:'));
    expect(admin.map((l) => [l.action, l.object])).toEqual([
      ['admin-add', 'admin:alice'],
      ['admin-add', 'admin:bob'],
      ['admin-password', 'admin:bob'],
      ['admin-roles', 'admin:bob'],
      ['admin-disable', 'admin:bob'],
      ['admin-enable', 'admin:bob'],
      ['admin-totp-on', 'admin:alice'],
      ['admin-totp-off', 'admin:alice'],
    ]);
    expect(Object.keys(admin[0]!)).toEqual(['at', 'actor', 'via', 'client', 'action', 'object', 'detail', 'before', 'after']);
    expect(admin[0]).toMatchObject({ actor: expect.stringMatching(/^cli:/), via: 'cli', client: null });
    expect(admin[3]).toMatchObject({ before: 'roles user_operator,auditor', after: 'roles ca_operator,auditor' });
    expect(JSON.stringify(lines)).not.toMatch(/long password|scrypt/);

    const filtered = (await ok(['audit', 'export', '--action', 'admin-add', '--object', 'admin:b'])).stdout.trim().split('\n');
    expect(filtered.map((l) => (JSON.parse(l) as { object: string }).object)).toEqual(['admin:bob']);
    expect((await ok(['audit', 'export', '--since', '2999-01-01'])).stdout).toBe('');
    expect((await ok(['audit', 'export', '--until', '2000-01-01T00:00:00Z'])).stdout).toBe('');
    const badTime = await postern(['audit', 'export', '--since', 'yesterday']);
    expect([badTime.code, badTime.stderr.split('\n')[0]]).toEqual([2, 'postern: --since "yesterday" is not an ISO 8601 time (e.g. 2026-12-03 or 2026-12-03T12:00:00Z)']);

    await withStore(async (s) => s.audit({ actor: 'evil\u001b[2J\u202e', action: 'import', object: 'cert:\tx' }));
    const list = (await ok(['audit', 'list', '--limit', '3'])).stdout.split('\n');
    expect(list[0]).toBe('AT\tACTOR\tVIA\tCLIENT\tACTION\tOBJECT\tDETAIL');
    expect(list[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\tevil\\u001b\[2J\\u202e\t-\t-\timport\tcert:\\u0009x\t-$/);
    expect(list[2]).toMatch(/\tcli:[^\t]+\tcli\t-\tadmin-totp-off\tadmin:alice\t-$/);
    expect(list[4]).toBe('-- the newest 3 records; more with --limit or audit export');
    expect(list.join('\n')).not.toContain('\u001b');
  });
});
