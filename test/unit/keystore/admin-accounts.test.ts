/**
 * Admin accounts in the keystore (issue 18): made, listed, changed and audited; passwords as
 * scrypt PHC strings that never leave the store; TOTP secrets sealed under the KEK; log-in checks
 * (wrong password, unknown account, disabled, TOTP required, wrong, replayed, accepted; the cost
 * of each: admin-login-cost.test.ts); the lock-out's failure counts in the keystore. On both
 * backends (the contract suite); on PostgreSQL two stores are two nodes of a cluster.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { ADMIN_ROLES } from '../../../src/core/admin-roles.js';
import { AdminAccountError, openKek, openKeyStore, type KeyStore } from '../../../src/keystore/index.js';
import { base32Decode, hotp, totpStep } from '../../../src/keystore/totp.js';
import { LoginGuard, type LoginFailureStore } from '../../../src/portal/lockout.js';
import { tempDir } from '../../helpers/config.js';
import { keystoreOnBackend, type KeystoreOnBackend } from '../../helpers/keystore-backend.js';
import { STORE_BACKENDS, useStoreBackend } from '../../helpers/store-backends.js';

const FAST = { N: 2 ** 10, r: 8, p: 1 };
const PASSWORD = 'correct horse battery';

describe.each(STORE_BACKENDS)('admin accounts (%s)', (backend) => {
  const on = useStoreBackend(backend);
  let dir: string;
  let cleanup: () => Promise<void>;
  let db: KeystoreOnBackend;
  let config: Config;
  let store: KeyStore;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-admin-'));
    db = await keystoreOnBackend(on, dir);
    config = db.config;
    store = await openKeyStore(config, { adminScrypt: FAST });
  });
  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  const raw = <T extends Record<string, unknown>>(sql: string, ...args: string[]): Promise<T[]> => db.rows<T>(sql, args);
  const refusal = async (p: Promise<unknown>) => {
    const err = await p.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(AdminAccountError);
    return err as AdminAccountError;
  };

  it('adds an account whose name is compared without case, and hands out no hash', async () => {
    const added = await store.addAdminAccount({ name: 'Alice.Ops', password: PASSWORD, roles: ['auditor', 'administrator', 'auditor'], actor: 'cli:root' });
    expect(added).toMatchObject({ name: 'Alice.Ops', roles: ['administrator', 'auditor'], disabled: false, totp: false, lastLogin: null });
    expect(added.passwordChanged.getTime()).toBe(added.created.getTime());
    expect(await store.adminAccount('alice.ops')).toEqual(added);
    expect((await refusal(store.addAdminAccount({ name: 'ALICE.OPS', password: PASSWORD, roles: ['auditor'], actor: 'cli:root' }))).code).toBe('exists');
    await store.addAdminAccount({ name: 'bob', password: PASSWORD, roles: ['auditor'], actor: 'cli:root' });
    expect((await store.adminAccounts()).map((a) => a.name)).toEqual(['Alice.Ops', 'bob']);
    expect(JSON.stringify(await store.adminAccounts())).not.toContain('scrypt');
    const [row] = await raw<{ password: string }>('SELECT password FROM admin_accounts WHERE name_key = ?', 'alice.ops');
    expect(row!.password).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(await store.adminAccount('nobody')).toBeNull();
    expect(await store.adminAccount('../etc')).toBeNull();
  });

  it('hashes at the webmail passwords\' cost unless told otherwise', async () => {
    const { dir: otherDir, cleanup: otherCleanup } = await tempDir('postern-admin-prod-');
    const other = await keystoreOnBackend(on, otherDir);
    const prod = await openKeyStore(other.config);
    try {
      await prod.addAdminAccount({ name: 'carol', password: PASSWORD, roles: ['auditor'], actor: 'cli:root' });
      expect((await other.rows<{ password: string }>('SELECT password FROM admin_accounts'))[0]!.password).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$/);
      expect(await prod.checkAdminLogin('carol', PASSWORD, undefined)).toMatchObject({ ok: true });
    } finally {
      await prod.close();
      await otherCleanup();
    }
  });

  it('refuses bad names, short passwords and unknown roles with one clear line', async () => {
    const add = (name: string, password: string, roles: string[]) => refusal(store.addAdminAccount({ name, password, roles, actor: 'cli:root' }));
    for (const name of ['', 'a'.repeat(65), 'al ice', 'alice/..', 'ålice', 'alice\n', 'аlice']) {
      const e = await add(name, PASSWORD, ['auditor']);
      expect([e.code, e.message]).toEqual(['invalid', expect.stringContaining('is not allowed')]);
      expect(e.message).not.toMatch(/[\n\u0430]/);
    }
    expect((await add('alice', 'short-pass1', ['auditor'])).message).toBe('an admin password must have at least 12 characters');
    expect((await add('alice', 'x'.repeat(2000), ['auditor'])).message).toMatch(/at most 1024 bytes/);
    expect((await add('alice', `${PASSWORD}\r`, ['auditor'])).message).toMatch(/control characters/);
    expect((await add('alice', PASSWORD, [])).message).toMatch(/at least one role/);
    const unknown = await add('alice', PASSWORD, ['auditor', 'root']);
    expect(unknown.message).toBe(`unknown role "root"; the roles are ${ADMIN_ROLES.join(', ')}`);
    expect(await store.adminAccounts()).toEqual([]);
    expect(await raw('SELECT * FROM audit_log')).toEqual([]);
  });

  it('changes password, roles and state, each audited without the password', async () => {
    await store.addAdminAccount({ name: 'alice', password: PASSWORD, roles: ['administrator'], actor: 'cli:root' });
    await store.addAdminAccount({ name: 'bob', password: PASSWORD, roles: ['auditor'], actor: 'cli:root' });
    await store.setAdminPassword('BOB', 'a new long password', 'cli:root');
    expect(await store.checkAdminLogin('bob', PASSWORD, undefined)).toEqual({ ok: false, reason: 'invalid' });
    expect(await store.checkAdminLogin('bob', 'a new long password', undefined)).toMatchObject({ ok: true });
    expect((await store.setAdminRoles('bob', ['user_operator', 'ca_operator'], 'cli:root')).roles).toEqual(['user_operator', 'ca_operator']);
    expect((await store.setAdminDisabled('bob', true, 'cli:root')).disabled).toBe(true);
    await store.setAdminDisabled('bob', true, 'cli:root');
    expect((await store.setAdminDisabled('bob', false, 'cli:root')).disabled).toBe(false);
    expect((await refusal(store.setAdminRoles('nobody', ['auditor'], 'cli:root'))).code).toBe('unknown');
    expect((await refusal(store.setAdminPassword('nobody', PASSWORD, 'cli:root'))).code).toBe('unknown');
    const log = await store.auditLog({ objectPrefix: 'admin:' });
    expect(log.map((e) => [e.actor, e.via, e.action, e.object, e.before, e.after])).toEqual([
      ['cli:root', 'cli', 'admin-add', 'admin:alice', undefined, 'roles administrator'],
      ['cli:root', 'cli', 'admin-add', 'admin:bob', undefined, 'roles auditor'],
      ['cli:root', 'cli', 'admin-password', 'admin:bob', undefined, undefined],
      ['cli:root', 'cli', 'admin-roles', 'admin:bob', 'roles auditor', 'roles user_operator,ca_operator'],
      ['cli:root', 'cli', 'admin-disable', 'admin:bob', undefined, undefined],
      ['cli:root', 'cli', 'admin-enable', 'admin:bob', undefined, undefined],
    ]);
    expect(JSON.stringify(await raw('SELECT * FROM audit_log'))).not.toMatch(/horse|new long|scrypt/);
    const [bob] = await raw<{ password_changed: number; created: number }>('SELECT password_changed, created FROM admin_accounts WHERE name_key = ?', 'bob');
    expect(bob!.password_changed).toBeGreaterThanOrEqual(bob!.created);
  });

  it('keeps at least one enabled administrator once there is one', async () => {
    await store.addAdminAccount({ name: 'bob', password: PASSWORD, roles: ['auditor'], actor: 'cli:root' });
    // Before the first administrator exists, anything goes.
    await store.setAdminDisabled('bob', true, 'cli:root');
    await store.addAdminAccount({ name: 'alice', password: PASSWORD, roles: ['administrator'], actor: 'cli:root' });
    const last = await refusal(store.setAdminDisabled('alice', true, 'cli:root'));
    expect([last.code, last.message]).toEqual(['conflict', 'alice is the last enabled administrator: enable or make another one first']);
    expect((await refusal(store.setAdminRoles('alice', ['auditor'], 'cli:root'))).code).toBe('conflict');
    // A disabled administrator does not count.
    await store.setAdminRoles('bob', ['administrator'], 'cli:root');
    expect((await refusal(store.setAdminRoles('alice', ['auditor'], 'cli:root'))).code).toBe('conflict');
    await store.setAdminDisabled('bob', false, 'cli:root');
    expect((await store.setAdminRoles('alice', ['auditor'], 'cli:root')).roles).toEqual(['auditor']);
  });

  it('keeps the last enabled administrator through any store (node)', async () => {
    await store.addAdminAccount({ name: 'alice', password: PASSWORD, roles: ['administrator'], actor: 'cli:root' });
    await store.addAdminAccount({ name: 'bob', password: PASSWORD, roles: ['administrator', 'auditor'], actor: 'cli:root' });
    const other = await openKeyStore(config, { adminScrypt: FAST });
    try {
      await other.setAdminDisabled('alice', true, 'api:carol');
      expect((await refusal(store.setAdminDisabled('bob', true, 'cli:root'))).code).toBe('conflict');
      expect((await refusal(store.setAdminRoles('bob', ['auditor'], 'cli:root'))).code).toBe('conflict');
      await store.setAdminDisabled('alice', false, 'cli:root');
      expect((await other.setAdminRoles('bob', ['auditor'], 'api:carol')).roles).toEqual(['auditor']);
      expect((await refusal(store.setAdminDisabled('alice', true, 'cli:root'))).code).toBe('conflict');
    } finally {
      await other.close();
    }
  });

  // PostgreSQL only: there, two stores are two nodes whose transactions really overlap. SQLite's
  // other writers are other processes; two connections in one process cannot overlap a write
  // transaction (better-sqlite3 is synchronous: the second BEGIN IMMEDIATE would block the thread
  // the first one needs to finish, until busy_timeout).
  it.runIf(backend === 'postgres')('keeps the last enabled administrator when two nodes each take one away at the same moment', async () => {
    await store.addAdminAccount({ name: 'alice', password: PASSWORD, roles: ['administrator'], actor: 'cli:root' });
    await store.addAdminAccount({ name: 'bob', password: PASSWORD, roles: ['administrator', 'auditor'], actor: 'cli:root' });
    const other = await openKeyStore(config, { adminScrypt: FAST });
    try {
      // Each change alone is allowed (the other administrator remains): only one of the two may pass.
      const outcomes = await Promise.allSettled([store.setAdminDisabled('alice', true, 'api:carol'), other.setAdminRoles('bob', ['auditor'], 'api:dave')]);
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      const refused = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected')!.reason as AdminAccountError;
      expect([refused.name, refused.code]).toEqual(['AdminAccountError', 'conflict']);
      expect((await other.adminAccounts()).filter((a) => !a.disabled && a.roles.includes('administrator'))).toHaveLength(1);
    } finally {
      await other.close();
    }
  });

  it('counts every account change for the caches of other processes and nodes, and nothing for a log-in', async () => {
    const admin = async () => (await store.changeCounters()).admin!;
    const before = await admin();
    await store.addAdminAccount({ name: 'alice', password: PASSWORD, roles: ['administrator'], actor: 'cli:root' });
    await store.addAdminAccount({ name: 'bob', password: PASSWORD, roles: ['auditor'], actor: 'cli:root' });
    expect(await admin()).toBe(before + 2);
    expect(await store.checkAdminLogin('alice', PASSWORD, undefined)).toMatchObject({ ok: true });
    await store.adminLoginFailures().recordLoginFailure('account', 'bob');
    expect(await admin()).toBe(before + 2);
    await store.setAdminPassword('bob', 'a new long password', 'cli:root');
    await store.setAdminRoles('bob', ['auditor', 'user_operator'], 'cli:root');
    await store.setAdminDisabled('bob', true, 'cli:root');
    await store.setAdminDisabled('bob', true, 'cli:root'); // no change, no count
    await store.enableAdminTotp('bob', 'cli:root');
    await store.disableAdminTotp('bob', 'cli:root');
    expect(await admin()).toBe(before + 7);
  });

  describe('log-in', () => {
    beforeEach(async () => {
      await store.addAdminAccount({ name: 'alice', password: PASSWORD, roles: ['administrator'], actor: 'cli:root' });
    });

    it('refuses a wrong password and an unknown name alike', async () => {
      expect(await store.checkAdminLogin('alice', 'wrong password here', undefined)).toEqual({ ok: false, reason: 'invalid' });
      expect(await store.checkAdminLogin('nobody', PASSWORD, undefined)).toEqual({ ok: false, reason: 'invalid' });
      expect(await store.checkAdminLogin('ALICE', PASSWORD, undefined)).toMatchObject({ ok: true, account: { name: 'alice' } });
    });

    it('records the last log-in', async () => {
      const at = new Date('2026-12-03T10:00:00Z');
      const r = await store.checkAdminLogin('alice', PASSWORD, undefined, at);
      expect(r).toMatchObject({ ok: true, account: { lastLogin: at } });
      expect((await store.adminAccount('alice'))!.lastLogin).toEqual(at);
    });

    it('tells a disabled account only to whoever knows its password', async () => {
      await store.addAdminAccount({ name: 'bob', password: PASSWORD, roles: ['auditor'], actor: 'cli:root' });
      await store.setAdminDisabled('bob', true, 'cli:root');
      expect(await store.checkAdminLogin('bob', 'wrong password here', undefined)).toEqual({ ok: false, reason: 'invalid' });
      expect(await store.checkAdminLogin('bob', PASSWORD, undefined)).toEqual({ ok: false, reason: 'disabled' });
    });

    it('asks for a TOTP code, refuses a wrong or replayed one, accepts each step once', async () => {
      const { secret, uri } = await store.enableAdminTotp('alice', 'cli:root');
      expect(uri).toBe(`otpauth://totp/Postern:alice?secret=${secret}&issuer=Postern`);
      const key = base32Decode(secret);
      expect(key).toHaveLength(20);
      expect((await store.adminAccount('alice'))!.totp).toBe(true);
      // Sealed under the KEK: the secret is in no column of the database.
      const dump = JSON.stringify(await raw('SELECT * FROM admin_accounts')) + (await raw<{ c: Buffer }>('SELECT ciphertext AS c FROM sealed_secrets')).map((r) => r.c.toString('hex')).join();
      expect(dump).not.toContain(key.toString('hex'));
      expect(await raw('SELECT kind FROM sealed_secrets')).toEqual([{ kind: 'admin-totp' }]);

      const now = new Date('2026-12-03T12:00:10Z');
      const step = totpStep(now);
      expect(await store.checkAdminLogin('alice', PASSWORD, undefined, now)).toEqual({ ok: false, reason: 'totp_required' });
      expect(await store.checkAdminLogin('alice', PASSWORD, '', now)).toEqual({ ok: false, reason: 'totp_required' });
      // The right code with a wrong password is no log-in.
      expect(await store.checkAdminLogin('alice', 'wrong password here', hotp(key, step), now)).toEqual({ ok: false, reason: 'invalid' });
      expect(await store.checkAdminLogin('alice', PASSWORD, hotp(key, step - 2), now)).toEqual({ ok: false, reason: 'invalid' });
      expect(await store.checkAdminLogin('alice', PASSWORD, hotp(key, step - 1), now)).toMatchObject({ ok: true });
      // Replayed, or older than the one used: refused.
      expect(await store.checkAdminLogin('alice', PASSWORD, hotp(key, step - 1), now)).toEqual({ ok: false, reason: 'invalid' });
      expect(await store.checkAdminLogin('alice', PASSWORD, hotp(key, step), now)).toMatchObject({ ok: true });
      expect(await store.checkAdminLogin('alice', PASSWORD, hotp(key, step), now)).toEqual({ ok: false, reason: 'invalid' });
      expect(await store.checkAdminLogin('alice', PASSWORD, hotp(key, step - 1), new Date(now.getTime() + 30_000))).toEqual({ ok: false, reason: 'invalid' });
      expect(await store.checkAdminLogin('alice', PASSWORD, hotp(key, step + 1), new Date(now.getTime() + 30_000))).toMatchObject({ ok: true });
    });

    it('accepts one code once when two log-ins race with it', async () => {
      const { secret } = await store.enableAdminTotp('alice', 'cli:root');
      const other = await openKeyStore(config, { adminScrypt: FAST });
      try {
        const now = new Date();
        const code = hotp(base32Decode(secret), totpStep(now));
        const results = await Promise.all([store.checkAdminLogin('alice', PASSWORD, code, now), other.checkAdminLogin('alice', PASSWORD, code, now)]);
        expect(results.filter((r) => r.ok)).toHaveLength(1);
      } finally {
        await other.close();
      }
    });

    it('refuses on one store (node) a code already used on another', async () => {
      const { secret } = await store.enableAdminTotp('alice', 'cli:root');
      const other = await openKeyStore(config, { adminScrypt: FAST });
      try {
        const now = new Date('2026-12-03T12:00:10Z');
        const code = hotp(base32Decode(secret), totpStep(now));
        expect(await store.checkAdminLogin('alice', PASSWORD, code, now)).toMatchObject({ ok: true });
        expect(await other.checkAdminLogin('alice', PASSWORD, code, now)).toEqual({ ok: false, reason: 'invalid' });
        // The next step's code is good on the other, once, and then on neither.
        const next = hotp(base32Decode(secret), totpStep(now) + 1);
        expect(await other.checkAdminLogin('alice', PASSWORD, next, now)).toMatchObject({ ok: true });
        expect(await store.checkAdminLogin('alice', PASSWORD, next, now)).toEqual({ ok: false, reason: 'invalid' });
      } finally {
        await other.close();
      }
    });

    it('replaces the secret when TOTP is turned on again, and forgets it when turned off', async () => {
      const first = await store.enableAdminTotp('alice', 'cli:root');
      const second = await store.enableAdminTotp('alice', 'cli:root');
      expect(second.secret).not.toBe(first.secret);
      expect(await raw('SELECT kind FROM sealed_secrets')).toEqual([{ kind: 'admin-totp' }]);
      const now = new Date();
      expect(await store.checkAdminLogin('alice', PASSWORD, hotp(base32Decode(first.secret), totpStep(now)), now)).toEqual({ ok: false, reason: 'invalid' });
      expect(await store.checkAdminLogin('alice', PASSWORD, hotp(base32Decode(second.secret), totpStep(now)), now)).toMatchObject({ ok: true });
      await store.disableAdminTotp('alice', 'cli:root');
      expect(await raw('SELECT * FROM sealed_secrets')).toEqual([]);
      expect(await store.checkAdminLogin('alice', PASSWORD, undefined)).toMatchObject({ ok: true, account: { totp: false } });
      expect((await store.auditLog({ action: 'admin-totp-on' })).map((e) => e.detail)).toEqual([undefined, 'new secret, the old one no longer works']);
      expect(JSON.stringify(await store.auditLog())).not.toContain(second.secret);
    });

    it('keeps TOTP working across a KEK rotation', async () => {
      const { secret } = await store.enableAdminTotp('alice', 'cli:root');
      const to = await openKek({ file: `${dir}/kek2.key` }, { saltFile: `${dir}/kek.salt`, create: true });
      await store.rotateKek(to, 'cli:root');
      const now = new Date();
      expect(await store.checkAdminLogin('alice', PASSWORD, hotp(base32Decode(secret), totpStep(now)), now)).toMatchObject({ ok: true });
    });
  });

  it('counts log-in failures in the keystore for the portal\'s LoginGuard', async () => {
    const failures: LoginFailureStore = store.adminLoginFailures();
    const guard = new LoginGuard(failures, { account: 2, client: 10, backoff: 1000, max_backoff: 60_000 }, () => 1_000_000);
    expect(await guard.wait('alice', '192.0.2.1')).toBe(0);
    await guard.failed('alice', '192.0.2.1');
    await guard.failed('alice', '192.0.2.1');
    expect(await guard.wait('alice', '192.0.2.1')).toBe(1000);
    expect(await failures.loginFailures('client', '192.0.2.1')).toEqual({ count: 2, last: new Date(1_000_000) });
    // Kept across a reopen (another process, a restart).
    const again = await openKeyStore(config, { adminScrypt: FAST });
    try {
      expect(await again.adminLoginFailures().loginFailures('account', 'alice')).toEqual({ count: 2, last: new Date(1_000_000) });
    } finally {
      await again.close();
    }
    await guard.succeeded('alice');
    expect(await failures.loginFailures('account', 'alice')).toEqual({ count: 0, last: null });
    await expect(failures.loginFailures('other' as 'client', 'x')).rejects.toThrow(TypeError);
  });

  it('keeps the later time of a failure when an earlier one is recorded after it (another node\'s clock)', async () => {
    const failures = store.adminLoginFailures();
    await failures.recordLoginFailure('account', 'alice', new Date(2_000_000));
    expect(await failures.recordLoginFailure('account', 'alice', new Date(1_500_000))).toEqual({ count: 2, last: new Date(2_000_000) });
    expect(await failures.recordLoginFailure('account', 'alice', new Date(2_500_000))).toEqual({ count: 3, last: new Date(2_500_000) });
  });

  it('forgets failure counts a day old when it writes a new one', async () => {
    const failures = store.adminLoginFailures();
    const day = 86_400_000;
    await failures.recordLoginFailure('client', '2001:db8::1', new Date(1_000_000));
    await failures.recordLoginFailure('client', '2001:db8::2', new Date(1_000_000 + day / 2));
    await failures.recordLoginFailure('account', 'alice', new Date(1_000_000 + day + 1));
    const left = (await raw<{ kind: string; key: string; count: number }>('SELECT kind, key, count FROM admin_login_failures')).sort((a, b) => a.key.localeCompare(b.key));
    expect(left).toEqual([
      { kind: 'client', key: '2001:db8::2', count: 1 },
      { kind: 'account', key: 'alice', count: 1 },
    ]);
  });
});
