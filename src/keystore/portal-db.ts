/**
 * portal.db (issue 17): everything the Internet-facing portal reads or writes — PDF reply links,
 * webmail accounts and their mailboxes, log-in failure counters, the portal's audit log. The
 * keystore's third KEK-free entry (beside public.ts and pdf-verifier.ts): it imports
 * better-sqlite3 and node:crypto, never kek/ or store*.ts, and holds nothing that reveals mail
 * (portal-schema.ts says what is sealed under what).
 *
 * Three kinds of process write it at once: the portal (as the unprivileged `user:` account), the
 * workers and the CLI (root). So WAL with a busy timeout, every write one IMMEDIATE transaction
 * (no read-then-upgrade that SQLite would refuse as busy), and the file and its -wal/-shm given
 * to `owner` 0660 by whoever opens it as root. The API is async although better-sqlite3 is not:
 * PostgreSQL comes behind the same interface (issue 19).
 *
 * Untrusted input: addresses, client addresses and audit details from the Internet (bound as SQL
 * parameters, clipped), token hashes (format-checked), the file itself (a damaged row throws
 * PortalDbError 'damaged'). Secrets: none in clear — sealed blobs and wrapped keys pass through.
 */
import { chmod, chown } from 'node:fs/promises';
import { closeSync, existsSync, fchmodSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { migratePortal } from './portal-schema.js';
import {
  accountOf, auditOf, clip, linkOf, messageOf, PortalDbError, type PortalAuditRecord, type ReplyLink, type Row, type StoredWebmailMessage, type WebmailAccount,
} from './portal-rows.js';
import type { WrappedAccountKey } from './webmail-crypto.js';

export const portalDbFile = (config: { data_dir: string }) => join(config.data_dir, 'portal.db');

export type { PortalAuditRecord, ReplyLink, StoredWebmailMessage, WebmailAccount } from './portal-rows.js';

export type LoginFailureKind = 'account' | 'client';
export { PortalDbError, type PortalDbErrorCode } from './portal-rows.js';

const TOKEN_HASH = /^[0-9a-f]{64}$/;
const KINDS = new Set<LoginFailureKind>(['account', 'client']);

/** SQLite's errors as PortalDbErrors (their messages name no value: every value is a bound parameter). */
function mapped(err: unknown): unknown {
  if (err instanceof PortalDbError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
  const damaged = /^SQLITE_(CORRUPT|NOTADB|FORMAT)/.test(code);
  return new PortalDbError(damaged ? 'damaged' : 'io', `portal.db: ${err.message} (${code})`, { cause: err });
}

/** Create `file` empty and 0660 (whatever the umask) unless it exists; an existing file is left as it is. */
function createGroupFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o660);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new PortalDbError('io', `cannot create ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    fchmodSync(fd, 0o660);
  } finally {
    closeSync(fd);
  }
}

/** The database files whose owner and mode openPortalDb sets. */
const filesOf = (file: string) => [file, `${file}-wal`, `${file}-shm`];

/**
 * Open (and create, unless `readonly` or `create: false`) portal.db, migrated to the current
 * schema. With `owner` (the supervisor, root), the file and its -wal/-shm become that owner's,
 * mode 0660, so the unprivileged portal can write it.
 */
export async function openPortalDb(
  file: string,
  opts: { owner?: { uid: number; gid: number }; readonly?: boolean; create?: boolean } = {},
): Promise<PortalDb> {
  const readonly = opts.readonly ?? false;
  const create = !readonly && (opts.create ?? true);
  // 0660 before SQLite opens it: SQLite gives its -wal and -shm the database file's mode.
  if (create && file !== ':memory:') createGroupFile(file);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly, fileMustExist: !create });
  } catch (err) {
    throw mapped(err);
  }
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    if (!readonly) {
      // WAL: the portal's reads never wait for a worker storing mail. FULL: a message the worker
      // stored is durable before it removes the spool entry it came from.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      migratePortal(db);
    }
    if (opts.owner && file !== ':memory:') {
      for (const f of filesOf(file)) {
        if (!existsSync(f)) continue;
        await chown(f, opts.owner.uid, opts.owner.gid);
        await chmod(f, 0o660);
      }
    }
  } catch (err) {
    db.close();
    throw mapped(err);
  }
  return new PortalDb(db);
}

export class PortalDb {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  close(): void {
    this.db.close();
  }

  private sql(text: string): Database.Statement {
    let s = this.statements.get(text);
    if (!s) this.statements.set(text, (s = this.db.prepare(text)));
    return s;
  }

  /** One IMMEDIATE transaction (a write), errors mapped. */
  private write<T>(body: () => T): Promise<T> {
    try {
      return Promise.resolve(this.db.transaction(body).immediate());
    } catch (err) {
      return Promise.reject(mapped(err));
    }
  }

  private read<T>(body: () => T): Promise<T> {
    try {
      return Promise.resolve(body());
    } catch (err) {
      return Promise.reject(mapped(err));
    }
  }

  // ---- PDF reply links ---------------------------------------------------------------------------

  putReplyLink(l: ReplyLink): Promise<void> {
    if (!TOKEN_HASH.test(l.tokenHash)) return Promise.reject(new PortalDbError('damaged', 'a reply link needs the SHA-256 of its token (64 hex digits)'));
    return this.write(() => {
      // REPLACE: moving links from postern.db again after an interrupted move writes the same row.
      this
        .sql(
          `INSERT OR REPLACE INTO reply_links (token_hash, sender_key, recipient_key, sender, recipient, verifier, content_kdf, salt, iv, ciphertext, created, expires)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(l.tokenHash, l.senderKey, l.recipientKey, l.sender, l.recipient, l.verifier, l.contentKdf, l.sealed.salt, l.sealed.iv, l.sealed.ciphertext, l.created.getTime(), l.expires.getTime());
    });
  }

  /** null: unknown or expired. */
  replyLink(tokenHash: string, now = new Date()): Promise<ReplyLink | null> {
    if (typeof tokenHash !== 'string' || !TOKEN_HASH.test(tokenHash)) return Promise.resolve(null);
    return this.read(() => {
      const r = this.sql('SELECT * FROM reply_links WHERE token_hash = ? AND expires > ?').get(tokenHash, now.getTime()) as Row | undefined;
      return r ? linkOf(r) : null;
    });
  }

  /** One link, by its token's hash (the worker takes back a link made under a password reset meanwhile). */
  deleteReplyLink(tokenHash: string): Promise<boolean> {
    return this.write(() => this.sql('DELETE FROM reply_links WHERE token_hash = ?').run(tokenHash).changes > 0);
  }

  deleteReplyLinksOfPair(senderKey: string, recipientKey: string): Promise<number> {
    return this.write(() => this.sql('DELETE FROM reply_links WHERE sender_key = ? AND recipient_key = ?').run(senderKey, recipientKey).changes);
  }

  pruneReplyLinks(now = new Date()): Promise<number> {
    return this.write(() => this.sql('DELETE FROM reply_links WHERE expires <= ?').run(now.getTime()).changes);
  }

  // ---- webmail accounts --------------------------------------------------------------------------

  /**
   * Throws PortalDbError('exists') when the address has an account. `claim`: the queue id of the
   * message whose notice will tell the password (untold until markPasswordTold); without it the
   * password counts as told now.
   */
  createAccount(a: { address: string; addressKey: string; publicKey: Buffer; wrapped: WrappedAccountKey; now?: Date; claim?: string }): Promise<WebmailAccount> {
    const now = (a.now ?? new Date()).getTime();
    return this.write(() => {
      const r = this
        .sql(
          `INSERT INTO webmail_accounts (address, address_key, public_key, key_kdf, key_iv, key_ciphertext, generation, must_change_password, created, password_changed, password_told, password_claim, password_claim_at)
           VALUES (?, ?, ?, ?, ?, ?, 1, 1, ?, ?, ?, ?, ?) ON CONFLICT (address_key) DO NOTHING`,
        )
        .run(a.address, a.addressKey, a.publicKey, a.wrapped.kdf, a.wrapped.iv, a.wrapped.ciphertext, now, now, a.claim === undefined ? now : null, a.claim ?? null, a.claim === undefined ? null : now);
      if (!r.changes) throw new PortalDbError('exists', 'this address has a webmail account already');
      return accountOf(this.sql('SELECT * FROM webmail_accounts WHERE id = ?').get(r.lastInsertRowid) as Row);
    });
  }

  account(addressKey: string): Promise<WebmailAccount | null> {
    return this.read(() => {
      const r = this.sql('SELECT * FROM webmail_accounts WHERE address_key = ?').get(addressKey) as Row | undefined;
      return r ? accountOf(r) : null;
    });
  }

  accountById(id: number): Promise<WebmailAccount | null> {
    return this.read(() => {
      const r = this.sql('SELECT * FROM webmail_accounts WHERE id = ?').get(id) as Row | undefined;
      return r ? accountOf(r) : null;
    });
  }

  listAccounts(): Promise<WebmailAccount[]> {
    return this.read(() => (this.sql('SELECT * FROM webmail_accounts ORDER BY address_key').all() as Row[]).map(accountOf));
  }

  /**
   * The same key pair under a new password; clears mustChangePassword. With `generation` (the one
   * the caller unwrapped), refused as 'stale' when a reset replaced the pair meanwhile: the old
   * private key must not be wrapped over the new public key.
   */
  changeAccountPassword(id: number, wrapped: WrappedAccountKey, now = new Date(), opts: { generation?: number } = {}): Promise<void> {
    return this.write(() => {
      const r = this.sql('SELECT generation FROM webmail_accounts WHERE id = ?').get(id) as Row | undefined;
      if (!r) throw new PortalDbError('missing', 'the webmail account is gone');
      if (opts.generation !== undefined && r.generation !== opts.generation) throw new PortalDbError('stale', 'the webmail account was reset meanwhile');
      this
        .sql('UPDATE webmail_accounts SET key_kdf = ?, key_iv = ?, key_ciphertext = ?, must_change_password = 0, password_changed = ? WHERE id = ?')
        .run(wrapped.kdf, wrapped.iv, wrapped.ciphertext, now.getTime(), id);
    });
  }

  /**
   * A new key pair (generation + 1, must change password); every message of the account goes.
   * `claim` as for createAccount (without it the new password counts as told: an admin has it);
   * `generation`: refused as 'stale' unless the account still has that one (a worker remaking the
   * keys of an account whose first password was never told must not undo another's remaking).
   */
  resetAccount(id: number, keys: { publicKey: Buffer; wrapped: WrappedAccountKey }, now = new Date(), opts: { claim?: string; generation?: number } = {}): Promise<{ generation: number; removedMessages: number }> {
    return this.write(() => {
      const r = this.sql('SELECT generation FROM webmail_accounts WHERE id = ?').get(id) as Row | undefined;
      if (!r) throw new PortalDbError('missing', 'the webmail account is gone');
      if (opts.generation !== undefined && r.generation !== opts.generation) throw new PortalDbError('stale', 'the webmail account was reset meanwhile');
      const generation = (r.generation as number) + 1;
      const t = now.getTime();
      this
        .sql(
          `UPDATE webmail_accounts SET public_key = ?, key_kdf = ?, key_iv = ?, key_ciphertext = ?, generation = ?, must_change_password = 1, password_changed = ?,
           password_told = ?, password_claim = ?, password_claim_at = ? WHERE id = ?`,
        )
        .run(keys.publicKey, keys.wrapped.kdf, keys.wrapped.iv, keys.wrapped.ciphertext, generation, t, opts.claim === undefined ? t : null, opts.claim ?? null, opts.claim === undefined ? null : t, id);
      const removedMessages = this.sql('DELETE FROM webmail_messages WHERE account_id = ?').run(id).changes;
      return { generation, removedMessages };
    });
  }

  /** The password of this generation was told (its notice is queued): later messages need not wait. */
  markPasswordTold(id: number, generation: number, now = new Date()): Promise<boolean> {
    return this.write(
      () => this.sql('UPDATE webmail_accounts SET password_told = ?, password_claim = NULL, password_claim_at = NULL WHERE id = ? AND generation = ? AND password_told IS NULL').run(now.getTime(), id, generation).changes > 0,
    );
  }

  /**
   * An account this claimant made (or remade) whose password it has not told, gone with its mail:
   * a message that gives way to another takes back what nobody can open (worker/methods/webmail.ts).
   */
  dropUntoldAccount(id: number, generation: number, claimant: string): Promise<boolean> {
    return this.write(
      () => this.sql('DELETE FROM webmail_accounts WHERE id = ? AND generation = ? AND password_claim = ? AND password_told IS NULL').run(id, generation, claimant).changes > 0,
    );
  }

  /** The account and all its mail. */
  deleteAccount(addressKey: string): Promise<boolean> {
    return this.write(() => this.sql('DELETE FROM webmail_accounts WHERE address_key = ?').run(addressKey).changes > 0);
  }

  touchLogin(id: number, now = new Date()): Promise<void> {
    return this.write(() => {
      this.sql('UPDATE webmail_accounts SET last_login = ? WHERE id = ?').run(now.getTime(), id);
    });
  }

  /** Disable or enable log-in (admins; mail is still stored). */
  setAccountDisabled(id: number, disabled: boolean): Promise<void> {
    return this.write(() => {
      this.sql('UPDATE webmail_accounts SET disabled = ? WHERE id = ?').run(disabled ? 1 : 0, id);
    });
  }

  // ---- mailbox -----------------------------------------------------------------------------------

  /**
   * Store a message sealed (by the caller) to the account's key of `generation`. Idempotent per
   * deliveryKey: a retry gets the stored message's id, created false. 'stale' when the account was
   * reset since the caller read its key, 'missing' when it is gone.
   */
  putMessage(m: { accountId: number; generation: number; deliveryKey: string; received: Date; size: number; summary: Buffer; body: Buffer }): Promise<{ id: number; created: boolean }> {
    return this.write(() => {
      const a = this.sql('SELECT generation FROM webmail_accounts WHERE id = ?').get(m.accountId) as Row | undefined;
      if (!a) throw new PortalDbError('missing', 'the webmail account is gone');
      const known = this.sql('SELECT id FROM webmail_messages WHERE account_id = ? AND delivery_key = ?').get(m.accountId, m.deliveryKey) as Row | undefined;
      if (known) return { id: known.id as number, created: false };
      if (a.generation !== m.generation) throw new PortalDbError('stale', 'the webmail account was reset: seal the message to its new key');
      const id = Number(
        this
          .sql('INSERT INTO webmail_messages (account_id, generation, delivery_key, received, size, summary, body) VALUES (?, ?, ?, ?, ?, ?, ?)')
          .run(m.accountId, m.generation, m.deliveryKey, m.received.getTime(), m.size, m.summary, m.body).lastInsertRowid,
      );
      this.sql('UPDATE webmail_accounts SET last_mail = max(coalesce(last_mail, 0), ?) WHERE id = ?').run(m.received.getTime(), m.accountId);
      return { id, created: true };
    });
  }

  /** Newest first, the account's current generation only. */
  listMessages(accountId: number): Promise<StoredWebmailMessage[]> {
    return this.read(() =>
      (
        this
          .sql(
            `SELECT m.id, m.account_id, m.generation, m.delivery_key, m.received, m.size, m.read, m.summary FROM webmail_messages m
             JOIN webmail_accounts a ON a.id = m.account_id AND a.generation = m.generation WHERE m.account_id = ? ORDER BY m.received DESC, m.id DESC`,
          )
          .all(accountId) as Row[]
      ).map(messageOf),
    );
  }

  /** Bytes of mail in the mailbox under its current key (webmail.max_mailbox), counted by SQLite, not by reading every row. */
  mailboxBytes(accountId: number): Promise<number> {
    return this.read(() => {
      const r = this
        .sql(
          `SELECT COALESCE(SUM(m.size), 0) AS bytes FROM webmail_messages m
           JOIN webmail_accounts a ON a.id = m.account_id AND a.generation = m.generation WHERE m.account_id = ?`,
        )
        .get(accountId) as { bytes: number };
      return Number(r.bytes);
    });
  }

  message(accountId: number, id: number): Promise<(StoredWebmailMessage & { body: Buffer }) | null> {
    return this.read(() => {
      const r = this
        .sql('SELECT m.* FROM webmail_messages m JOIN webmail_accounts a ON a.id = m.account_id AND a.generation = m.generation WHERE m.account_id = ? AND m.id = ?')
        .get(accountId, id) as Row | undefined;
      return r ? { ...messageOf(r), body: r.body as Buffer } : null;
    });
  }

  markRead(accountId: number, id: number): Promise<void> {
    return this.write(() => {
      this.sql('UPDATE webmail_messages SET read = 1 WHERE account_id = ? AND id = ?').run(accountId, id);
    });
  }

  deleteMessage(accountId: number, id: number): Promise<boolean> {
    return this.write(() => this.sql('DELETE FROM webmail_messages WHERE account_id = ? AND id = ?').run(accountId, id).changes > 0);
  }

  /**
   * Mail received longer than `retention` ago; accounts without mail left whose last log-in,
   * mail, creation and password change are all older; log-in failure counters as old.
   */
  pruneWebmail(o: { retention: number; now?: Date }): Promise<{ messages: number; accounts: number }> {
    const cutoff = (o.now ?? new Date()).getTime() - o.retention;
    if (!Number.isFinite(cutoff) || !(o.retention > 0)) return Promise.reject(new RangeError('pruneWebmail needs a positive retention in ms'));
    return this.write(() => {
      const messages = this.sql('DELETE FROM webmail_messages WHERE received < ?').run(cutoff).changes;
      const accounts = this
        .sql(
          `DELETE FROM webmail_accounts WHERE max(created, password_changed, coalesce(last_login, 0), coalesce(last_mail, 0)) < ?
           AND NOT EXISTS (SELECT 1 FROM webmail_messages m WHERE m.account_id = webmail_accounts.id)`,
        )
        .run(cutoff).changes;
      this.sql('DELETE FROM login_failures WHERE last < ?').run(cutoff);
      return { messages, accounts };
    });
  }

  // ---- log-in failures ---------------------------------------------------------------------------

  loginFailures(kind: LoginFailureKind, key: string): Promise<{ count: number; last: Date | null }> {
    if (!KINDS.has(kind)) return Promise.reject(new TypeError(`unknown log-in failure kind ${String(kind)}`));
    return this.read(() => {
      const r = this.sql('SELECT count, last FROM login_failures WHERE kind = ? AND key = ?').get(kind, key) as Row | undefined;
      return r ? { count: r.count as number, last: new Date(r.last as number) } : { count: 0, last: null };
    });
  }

  recordLoginFailure(kind: LoginFailureKind, key: string, now = new Date()): Promise<{ count: number; last: Date }> {
    if (!KINDS.has(kind)) return Promise.reject(new TypeError(`unknown log-in failure kind ${String(kind)}`));
    return this.write(() => {
      const r = this
        .sql(
          `INSERT INTO login_failures (kind, key, count, last) VALUES (?, ?, 1, ?)
           ON CONFLICT (kind, key) DO UPDATE SET count = count + 1, last = max(last, excluded.last) RETURNING count, last`,
        )
        .get(kind, key, now.getTime()) as Row;
      return { count: r.count as number, last: new Date(r.last as number) };
    });
  }

  clearLoginFailures(kind: LoginFailureKind, key: string): Promise<void> {
    return this.write(() => {
      this.sql('DELETE FROM login_failures WHERE kind = ? AND key = ?').run(kind, key);
    });
  }

  // ---- audit -------------------------------------------------------------------------------------

  /** Who did what from where; never passwords or mail content (the caller's duty: nothing here can tell). */
  audit(e: { action: string; actor: string; client?: string; subject?: string; detail?: Record<string, string | number | boolean>; at?: Date }): Promise<void> {
    const detail = e.detail ? JSON.stringify(Object.fromEntries(Object.entries(e.detail).slice(0, 50).map(([k, v]) => [clip(k, 100), typeof v === 'string' ? clip(v, 998) : v]))) : null;
    return this.write(() => {
      this
        .sql('INSERT INTO audit_log (at, event, actor, client, subject, detail) VALUES (?, ?, ?, ?, ?, ?)')
        .run((e.at ?? new Date()).getTime(), clip(e.action, 100), clip(e.actor, 998), e.client === undefined ? null : clip(e.client, 100), e.subject === undefined ? null : clip(e.subject, 998), detail);
    });
  }

  /** Newest first; `since` inclusive; at most `limit` (default 1000). */
  auditRecords(o: { since?: Date; limit?: number } = {}): Promise<PortalAuditRecord[]> {
    const limit = Math.max(1, Math.min(o.limit ?? 1000, 100_000));
    return this.read(() =>
      (this.sql('SELECT * FROM audit_log WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?').all(o.since?.getTime() ?? 0, limit) as Row[]).map(auditOf),
    );
  }
}
