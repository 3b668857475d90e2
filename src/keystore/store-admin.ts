/**
 * The keystore's admin accounts (issue 18): who may sign in to the admin console and API,
 * with which roles, a scrypt password hash, an optional TOTP secret sealed under the KEK like
 * every secret, and the failure counts of the admin role's lock-out. A layer of the store's class
 * chain (… → PdfStore → AdminStore → SqlKeyStore), sharing its database: the TOTP secret needs
 * insertSecret/readSecret, and an account change is audited in the same transaction. On either
 * backend (sql/types.ts): in a cluster, an account added, changed or signed in on one node holds on
 * all, a TOTP code is good once across them, and the last Administrator is kept through any.
 *
 * Untrusted input: names, passwords and codes from the log-in form (checkAdminLogin bounds them
 * before any work and costs one scrypt whether the account exists or not). Secrets: passwords,
 * their hashes and TOTP secrets — never handed out (AdminAccount has none), logged or audited;
 * enableAdminTotp returns a new secret once, for the admin to put in an authenticator app.
 */
import { randomBytes } from 'node:crypto';
import type { AdminRole } from '../core/admin-roles.js';
import {
  ADMIN_SCRYPT, AdminAccountError, adminNameKey, checkAdminName, checkAdminPassword, checkAdminRoles, hashAdminPassword, isAdminName, MAX_ADMIN_PASSWORD_BYTES,
  shownName, verifyAdminPassword, type AdminAccount, type AdminLoginResult,
} from './admin-accounts.js';
import type { Kek } from './kek/types.js';
import { b64, phcHead, SALT_BYTES, type ScryptCost } from './scrypt.js';
import type { Sql } from './sql/types.js';
import type { Row } from './store-base.js';
import { binaryOrder, PdfStore } from './store-pdf.js';
import { base32Encode, matchTotp, newTotpSecret, otpauthUri } from './totp.js';

/** The shape of portal/lockout.ts's LoginFailureStore, over postern.db's admin_login_failures. */
export interface AdminLoginFailures {
  loginFailures(kind: 'account' | 'client', key: string): Promise<{ count: number; last: Date | null }>;
  recordLoginFailure(kind: 'account' | 'client', key: string, now?: Date): Promise<{ count: number; last: Date }>;
  clearLoginFailures(kind: 'account' | 'client', key: string): Promise<void>;
}

const FAILURE_KINDS = new Set(['account', 'client']);
/**
 * Counts older than LoginGuard remembers (portal/lockout.ts: a day) go when a new failure is
 * written: names and addresses tried once (a sweep of many IPv6 addresses) must not pile up.
 */
const FAILURES_KEPT_MS = 86_400_000;

export class AdminStore extends PdfStore {
  /** The scrypt cost of new password hashes (tests lower it; stored hashes keep theirs). */
  private readonly adminScrypt: ScryptCost;
  /**
   * A hash of no password (random salt and bytes, at the cost of new hashes): checked against for
   * a name that has no account, so an unknown name costs the same one scrypt as a known one.
   */
  private readonly dummyHash: string;

  constructor(db: Sql, kek: Kek, opts: { pdfScrypt?: ScryptCost; adminScrypt?: ScryptCost } = {}) {
    super(db, kek, opts);
    this.adminScrypt = opts.adminScrypt ?? ADMIN_SCRYPT;
    this.dummyHash = `${phcHead(this.adminScrypt, randomBytes(SALT_BYTES))}$${b64(randomBytes(32))}`;
  }

  private adminRow(name: string): Promise<Row | undefined> {
    return this.db.get('SELECT * FROM admin_accounts WHERE name_key = ?', [adminNameKey(name)]);
  }

  private async existing(name: string): Promise<Row> {
    const r = isAdminName(name) ? await this.adminRow(name) : undefined;
    if (!r) throw new AdminAccountError('unknown', `no admin account ${shownName(name)}`);
    return r;
  }

  private static account(r: Row): AdminAccount {
    return {
      name: r.name as string,
      roles: (r.roles as string).split(',').filter(Boolean) as AdminRole[],
      disabled: r.disabled === 1,
      totp: r.totp_secret_id != null,
      created: new Date(r.created as number),
      passwordChanged: new Date(r.password_changed as number),
      lastLogin: r.last_login != null ? new Date(r.last_login as number) : null,
    };
  }

  /** Would the account `id` with `roles` and `disabled` leave at least one enabled Administrator? */
  private async keepsAnAdministrator(id: number, roles: readonly AdminRole[], disabled: boolean): Promise<boolean> {
    if (!disabled && roles.includes('administrator')) return true;
    const others = await this.db.all('SELECT roles FROM admin_accounts WHERE id != ? AND disabled = 0', [id]);
    const had = (await this.db.get('SELECT roles, disabled FROM admin_accounts WHERE id = ?', [id]))!;
    const wasAdministrator = had.disabled === 0 && (had.roles as string).split(',').includes('administrator');
    // Only a change that takes the last one away is refused: before the first Administrator exists, anything goes.
    return !wasAdministrator || others.some((o) => (o.roles as string).split(',').includes('administrator'));
  }

  async adminAccounts(): Promise<AdminAccount[]> {
    // Sorted here in SQLite's binary order: PostgreSQL's ORDER BY would follow the database's locale.
    return (await this.db.all('SELECT * FROM admin_accounts')).sort((a, b) => binaryOrder(a.name_key, b.name_key)).map(AdminStore.account);
  }

  async adminAccount(name: string): Promise<AdminAccount | null> {
    const r = isAdminName(name) ? await this.adminRow(name) : undefined;
    return r ? AdminStore.account(r) : null;
  }

  async addAdminAccount(a: { name: string; password: string; roles: readonly string[]; actor: string; via?: string }): Promise<AdminAccount> {
    const name = checkAdminName(a.name);
    const roles = checkAdminRoles(a.roles);
    const hash = await hashAdminPassword(checkAdminPassword(a.password), this.adminScrypt);
    return this.transaction(async () => {
      const taken = await this.adminRow(name);
      if (taken) throw new AdminAccountError('exists', `an admin account ${shownName(taken.name)} exists already (names are compared without case)`);
      const now = Date.now();
      await this.db.run('INSERT INTO admin_accounts (name, name_key, password, roles, disabled, created, password_changed) VALUES (?, ?, ?, ?, 0, ?, ?)', [
        name, adminNameKey(name), hash, roles.join(','), now, now,
      ]);
      await this.changed('admin');
      await this.audit({ actor: a.actor, via: a.via, action: 'admin-add', object: `admin:${adminNameKey(name)}`, after: `roles ${roles.join(',')}` });
      return AdminStore.account((await this.adminRow(name))!);
    });
  }

  async setAdminPassword(name: string, password: string, actor: string, via?: string): Promise<void> {
    await this.existing(name);
    const hash = await hashAdminPassword(checkAdminPassword(password), this.adminScrypt);
    await this.transaction(async () => {
      const r = await this.existing(name);
      await this.db.run('UPDATE admin_accounts SET password = ?, password_changed = ? WHERE id = ?', [hash, Date.now(), r.id as number]);
      await this.changed('admin');
      await this.audit({ actor, via, action: 'admin-password', object: `admin:${r.name_key as string}` });
    });
  }

  async setAdminRoles(name: string, roles: readonly string[], actor: string, via?: string): Promise<AdminAccount> {
    const wanted = checkAdminRoles(roles);
    return this.transaction(async () => {
      const r = await this.existing(name);
      if (!(await this.keepsAnAdministrator(r.id as number, wanted, r.disabled === 1))) {
        throw new AdminAccountError('conflict', `${r.name as string} is the last enabled administrator: give another account the administrator role first`);
      }
      await this.db.run('UPDATE admin_accounts SET roles = ? WHERE id = ?', [wanted.join(','), r.id as number]);
      await this.changed('admin');
      await this.audit({ actor, via, action: 'admin-roles', object: `admin:${r.name_key as string}`, before: `roles ${r.roles as string}`, after: `roles ${wanted.join(',')}` });
      return AdminStore.account(await this.existing(name));
    });
  }

  async setAdminDisabled(name: string, disabled: boolean, actor: string, via?: string): Promise<AdminAccount> {
    return this.transaction(async () => {
      const r = await this.existing(name);
      const roles = (r.roles as string).split(',') as AdminRole[];
      if (disabled && !(await this.keepsAnAdministrator(r.id as number, roles, true))) {
        throw new AdminAccountError('conflict', `${r.name as string} is the last enabled administrator: enable or make another one first`);
      }
      if ((r.disabled === 1) !== disabled) {
        await this.db.run('UPDATE admin_accounts SET disabled = ? WHERE id = ?', [disabled ? 1 : 0, r.id as number]);
        await this.changed('admin');
        await this.audit({ actor, via, action: disabled ? 'admin-disable' : 'admin-enable', object: `admin:${r.name_key as string}` });
      }
      return AdminStore.account(await this.existing(name));
    });
  }

  /**
   * A new TOTP secret for the account (replacing any earlier one), asked from the next log-in on.
   * The secret is returned this once, in base32 and as an otpauth:// URI for an authenticator app.
   */
  async enableAdminTotp(name: string, actor: string, via?: string): Promise<{ secret: string; uri: string }> {
    const secret = newTotpSecret();
    try {
      return await this.transaction(async () => {
        const r = await this.existing(name);
        const id = await this.insertSecret('admin-totp', secret);
        await this.db.run('UPDATE admin_accounts SET totp_secret_id = ?, totp_last_step = NULL WHERE id = ?', [id, r.id as number]);
        if (r.totp_secret_id != null) await this.db.run('DELETE FROM sealed_secrets WHERE id = ?', [r.totp_secret_id as number]);
        await this.changed('admin');
        await this.audit({ actor, via, action: 'admin-totp-on', object: `admin:${r.name_key as string}`, detail: r.totp_secret_id != null ? 'new secret, the old one no longer works' : undefined });
        return { secret: base32Encode(secret), uri: otpauthUri('Postern', r.name as string, secret) };
      });
    } finally {
      secret.fill(0);
    }
  }

  async disableAdminTotp(name: string, actor: string, via?: string): Promise<void> {
    await this.transaction(async () => {
      const r = await this.existing(name);
      if (r.totp_secret_id == null) return;
      await this.db.run('UPDATE admin_accounts SET totp_secret_id = NULL, totp_last_step = NULL WHERE id = ?', [r.id as number]);
      await this.db.run('DELETE FROM sealed_secrets WHERE id = ?', [r.totp_secret_id as number]);
      await this.changed('admin');
      await this.audit({ actor, via, action: 'admin-totp-off', object: `admin:${r.name_key as string}` });
    });
  }

  /**
   * A log-in: the password (one scrypt, also for a name that has no account), then the account's
   * state, then its TOTP code (±1 step, each step good once). `disabled` is told only to whoever
   * knows the password. The caller counts failures (adminLoginFailures) and tells the person
   * nothing more than "wrong name or password" for `invalid`.
   */
  async checkAdminLogin(name: string, password: string, totp: string | undefined, now = new Date()): Promise<AdminLoginResult> {
    // Refused before any work: a megabyte posted to the form costs nothing (and tells nothing about the account).
    if (typeof password !== 'string' || Buffer.byteLength(password, 'utf8') > MAX_ADMIN_PASSWORD_BYTES) return { ok: false, reason: 'invalid' };
    const r = isAdminName(name) ? await this.adminRow(name) : undefined;
    const good = await verifyAdminPassword(r ? (r.password as string) : this.dummyHash, password);
    if (!r || !good) return { ok: false, reason: 'invalid' };
    if (r.disabled === 1) return { ok: false, reason: 'disabled' };
    if (r.totp_secret_id != null) {
      if (totp === undefined || totp === '') return { ok: false, reason: 'totp_required' };
      const secret = await this.readSecret(r.totp_secret_id as number);
      let step: number | null;
      try {
        step = matchTotp(secret, totp, now, { window: 1, after: r.totp_last_step as number | null });
      } finally {
        secret.fill(0);
      }
      // Claimed in one statement: two log-ins with the same code at once (two processes, two
      // nodes) cannot both pass — the second UPDATE waits for the first's row and sees its step.
      const claimed =
        step !== null &&
        (await this.db.run('UPDATE admin_accounts SET totp_last_step = ? WHERE id = ? AND totp_secret_id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)', [
          step, r.id as number, r.totp_secret_id as number, step,
        ])) === 1;
      if (!claimed) return { ok: false, reason: 'invalid' };
    }
    await this.db.run('UPDATE admin_accounts SET last_login = ? WHERE id = ?', [now.getTime(), r.id as number]);
    return { ok: true, account: AdminStore.account((await this.adminRow(name))!) };
  }

  /** Failure counts for the admin role's LoginGuard (portal/lockout.ts), kept in postern.db. */
  adminLoginFailures(): AdminLoginFailures {
    const kind = (k: string) => {
      if (!FAILURE_KINDS.has(k)) throw new TypeError(`unknown log-in failure kind ${shownName(k)}`);
    };
    return {
      loginFailures: async (k, key) => {
        kind(k);
        const r = await this.db.get('SELECT count, last FROM admin_login_failures WHERE kind = ? AND key = ?', [k, key]);
        return r ? { count: r.count as number, last: new Date(r.last as number) } : { count: 0, last: null };
      },
      recordLoginFailure: async (k, key, now = new Date()) => {
        kind(k);
        await this.db.run('DELETE FROM admin_login_failures WHERE last < ?', [now.getTime() - FAILURES_KEPT_MS]);
        // The later of the two times, by CASE: scalar max() is SQLite's (PostgreSQL has GREATEST).
        const r = (await this.db.get(
          `INSERT INTO admin_login_failures (kind, key, count, last) VALUES (?, ?, 1, ?)
           ON CONFLICT (kind, key) DO UPDATE SET count = admin_login_failures.count + 1,
             last = CASE WHEN excluded.last > admin_login_failures.last THEN excluded.last ELSE admin_login_failures.last END
           RETURNING count, last`,
          [k, key, now.getTime()],
        ))!;
        return { count: r.count as number, last: new Date(r.last as number) };
      },
      clearLoginFailures: async (k, key) => {
        kind(k);
        await this.db.run('DELETE FROM admin_login_failures WHERE kind = ? AND key = ?', [k, key]);
      },
    };
  }
}
