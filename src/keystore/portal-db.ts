/**
 * The portal store (issue 17; PostgreSQL, issue 19): everything the Internet-facing portal reads
 * or writes — PDF reply links, webmail accounts and their mailboxes, log-in failure counters, the
 * portal's audit log. The keystore's third KEK-free entry (beside public.ts and pdf-verifier.ts):
 * it never imports kek/ or store*.ts, and holds nothing that reveals mail (portal-schema.ts says
 * what is sealed under what).
 *
 * One class on either backend (sql/types.ts): portal.db beside the keystore on one machine
 * (portal-sqlite.ts), or the schema `portal` of the cluster's PostgreSQL database, shared by every
 * node (portal-store.ts opens the one the config names). Its SQL is written once, in the subset
 * both engines run alike; every write is one transaction, serialised against every other writer
 * (SQLite's BEGIN IMMEDIATE; a PostgreSQL advisory lock), so a read-then-write inside one (an
 * account's generation checked, then changed) holds across processes and nodes.
 *
 * Untrusted input: addresses, client addresses and audit details from the Internet (bound as SQL
 * parameters, clipped; a NUL, which PostgreSQL's text cannot hold, becomes U+FFFD on both
 * backends), token hashes (format-checked), the stored rows (a damaged row throws PortalDbError
 * 'damaged'). Secrets: none in clear — sealed blobs and wrapped keys pass through.
 */
import { join } from 'node:path';
import {
  accountOf, auditOf, clip, linkOf, messageOf, PortalDbError, portalDbError, type PortalAuditRecord, type ReplyLink, type Row, type StoredWebmailMessage, type WebmailAccount,
} from './portal-rows.js';
import { openPortalFile, type PortalFileOptions } from './portal-sqlite.js';
import type { Sql, SqlValue } from './sql/types.js';
import type { WrappedAccountKey } from './webmail-crypto.js';

export const portalDbFile = (config: { data_dir: string }) => join(config.data_dir, 'portal.db');

export type { PortalAuditRecord, ReplyLink, StoredWebmailMessage, WebmailAccount } from './portal-rows.js';

export type LoginFailureKind = 'account' | 'client';
export { PortalDbError, type PortalDbErrorCode } from './portal-rows.js';

const TOKEN_HASH = /^[0-9a-f]{64}$/;
const KINDS = new Set<LoginFailureKind>(['account', 'client']);

/** PostgreSQL's text refuses NUL; hostile input with one is stored (and looked up) with U+FFFD instead, alike on both backends. */
const bound = (params: readonly SqlValue[]): SqlValue[] => params.map((p) => (typeof p === 'string' && p.includes('\0') ? p.replaceAll('\0', '\uFFFD') : p));

/**
 * Open (and create, unless `readonly` or `create: false`) portal.db, migrated to the current
 * schema. With `owner` (the supervisor, root), the file and its -wal/-shm become that owner's,
 * mode 0660, so the unprivileged portal can write it. For the configured store (portal.db or
 * PostgreSQL), use openPortalStore (portal-store.ts).
 */
export async function openPortalDb(file: string, opts: PortalFileOptions = {}): Promise<PortalDb> {
  return new PortalDb(await openPortalFile(file, opts));
}

export class PortalDb {
  constructor(
    /** The database (either backend); the PortalDb owns it and closes it. */
    private readonly sql: Sql,
  ) {}

  /** Which backend, and where (a file, or the URL without its password): for messages. */
  get backend(): { dialect: Sql['dialect']; where: string } {
    return { dialect: this.sql.dialect, where: this.sql.where };
  }

  async close(): Promise<void> {
    await this.sql.close();
  }

  private async get(text: string, params: readonly SqlValue[]): Promise<Row | undefined> {
    return this.sql.get(text, bound(params));
  }

  private async all(text: string, params: readonly SqlValue[]): Promise<Row[]> {
    return this.sql.all(text, bound(params));
  }

  private async run(text: string, params: readonly SqlValue[]): Promise<number> {
    return this.sql.run(text, bound(params));
  }

  /** One write transaction, errors mapped. */
  private async write<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await this.sql.transaction(body);
    } catch (err) {
      throw portalDbError(err);
    }
  }

  /** Reads (and rows checked by portal-rows.ts), errors mapped. */
  private async read<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (err) {
      throw portalDbError(err);
    }
  }

  // ---- PDF reply links ---------------------------------------------------------------------------

  putReplyLink(l: ReplyLink): Promise<void> {
    if (!TOKEN_HASH.test(l.tokenHash)) return Promise.reject(new PortalDbError('damaged', 'a reply link needs the SHA-256 of its token (64 hex digits)'));
    return this.write(async () => {
      // Replaced: moving links from postern.db again after an interrupted move writes the same row.
      await this.run(
        `INSERT INTO reply_links (token_hash, sender_key, recipient_key, sender, recipient, verifier, content_kdf, salt, iv, ciphertext, created, expires)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (token_hash) DO UPDATE SET sender_key = excluded.sender_key, recipient_key = excluded.recipient_key, sender = excluded.sender,
           recipient = excluded.recipient, verifier = excluded.verifier, content_kdf = excluded.content_kdf, salt = excluded.salt, iv = excluded.iv,
           ciphertext = excluded.ciphertext, created = excluded.created, expires = excluded.expires`,
        [l.tokenHash, l.senderKey, l.recipientKey, l.sender, l.recipient, l.verifier, l.contentKdf, l.sealed.salt, l.sealed.iv, l.sealed.ciphertext, l.created.getTime(), l.expires.getTime()],
      );
    });
  }

  /** null: unknown or expired. */
  replyLink(tokenHash: string, now = new Date()): Promise<ReplyLink | null> {
    if (typeof tokenHash !== 'string' || !TOKEN_HASH.test(tokenHash)) return Promise.resolve(null);
    return this.read(async () => {
      const r = await this.get('SELECT * FROM reply_links WHERE token_hash = ? AND expires > ?', [tokenHash, now.getTime()]);
      return r ? linkOf(r) : null;
    });
  }

  /** One link, by its token's hash (the worker takes back a link made under a password reset meanwhile). */
  deleteReplyLink(tokenHash: string): Promise<boolean> {
    return this.write(async () => (await this.run('DELETE FROM reply_links WHERE token_hash = ?', [tokenHash])) > 0);
  }

  deleteReplyLinksOfPair(senderKey: string, recipientKey: string): Promise<number> {
    return this.write(() => this.run('DELETE FROM reply_links WHERE sender_key = ? AND recipient_key = ?', [senderKey, recipientKey]));
  }

  pruneReplyLinks(now = new Date()): Promise<number> {
    return this.write(() => this.run('DELETE FROM reply_links WHERE expires <= ?', [now.getTime()]));
  }

  // ---- webmail accounts --------------------------------------------------------------------------

  /**
   * Throws PortalDbError('exists') when the address has an account. `claim`: the queue id of the
   * message whose notice will tell the password (untold until markPasswordTold); without it the
   * password counts as told now.
   */
  createAccount(a: { address: string; addressKey: string; publicKey: Buffer; wrapped: WrappedAccountKey; now?: Date; claim?: string }): Promise<WebmailAccount> {
    const now = (a.now ?? new Date()).getTime();
    return this.write(async () => {
      const r = await this.get(
        `INSERT INTO webmail_accounts (address, address_key, public_key, key_kdf, key_iv, key_ciphertext, generation, must_change_password, created, password_changed, password_told, password_claim, password_claim_at)
         VALUES (?, ?, ?, ?, ?, ?, 1, 1, ?, ?, ?, ?, ?) ON CONFLICT (address_key) DO NOTHING RETURNING *`,
        [a.address, a.addressKey, a.publicKey, a.wrapped.kdf, a.wrapped.iv, a.wrapped.ciphertext, now, now, a.claim === undefined ? now : null, a.claim ?? null, a.claim === undefined ? null : now],
      );
      if (!r) throw new PortalDbError('exists', 'this address has a webmail account already');
      return accountOf(r);
    });
  }

  account(addressKey: string): Promise<WebmailAccount | null> {
    return this.read(async () => {
      const r = await this.get('SELECT * FROM webmail_accounts WHERE address_key = ?', [addressKey]);
      return r ? accountOf(r) : null;
    });
  }

  accountById(id: number): Promise<WebmailAccount | null> {
    return this.read(async () => {
      const r = await this.get('SELECT * FROM webmail_accounts WHERE id = ?', [id]);
      return r ? accountOf(r) : null;
    });
  }

  listAccounts(): Promise<WebmailAccount[]> {
    return this.read(async () => (await this.all('SELECT * FROM webmail_accounts ORDER BY address_key', [])).map(accountOf));
  }

  /** The account's key generation, read inside a write: 'missing' when it is gone, 'stale' when it is not `expected`. */
  private async generationOf(id: number, expected: number | undefined): Promise<number> {
    const r = await this.get('SELECT generation FROM webmail_accounts WHERE id = ?', [id]);
    if (!r) throw new PortalDbError('missing', 'the webmail account is gone');
    if (expected !== undefined && r.generation !== expected) throw new PortalDbError('stale', 'the webmail account was reset meanwhile');
    return r.generation as number;
  }

  /**
   * The same key pair under a new password; clears mustChangePassword. With `generation` (the one
   * the caller unwrapped), refused as 'stale' when a reset replaced the pair meanwhile: the old
   * private key must not be wrapped over the new public key.
   */
  changeAccountPassword(id: number, wrapped: WrappedAccountKey, now = new Date(), opts: { generation?: number } = {}): Promise<void> {
    return this.write(async () => {
      await this.generationOf(id, opts.generation);
      await this.run('UPDATE webmail_accounts SET key_kdf = ?, key_iv = ?, key_ciphertext = ?, must_change_password = 0, password_changed = ? WHERE id = ?', [
        wrapped.kdf, wrapped.iv, wrapped.ciphertext, now.getTime(), id,
      ]);
    });
  }

  /**
   * A new key pair (generation + 1, must change password); every message of the account goes.
   * `claim` as for createAccount (without it the new password counts as told: an admin has it);
   * `generation`: refused as 'stale' unless the account still has that one (a worker remaking the
   * keys of an account whose first password was never told must not undo another's remaking).
   */
  resetAccount(id: number, keys: { publicKey: Buffer; wrapped: WrappedAccountKey }, now = new Date(), opts: { claim?: string; generation?: number } = {}): Promise<{ generation: number; removedMessages: number }> {
    return this.write(async () => {
      const generation = (await this.generationOf(id, opts.generation)) + 1;
      const t = now.getTime();
      await this.run(
        `UPDATE webmail_accounts SET public_key = ?, key_kdf = ?, key_iv = ?, key_ciphertext = ?, generation = ?, must_change_password = 1, password_changed = ?,
         password_told = ?, password_claim = ?, password_claim_at = ? WHERE id = ?`,
        [keys.publicKey, keys.wrapped.kdf, keys.wrapped.iv, keys.wrapped.ciphertext, generation, t, opts.claim === undefined ? t : null, opts.claim ?? null, opts.claim === undefined ? null : t, id],
      );
      const removedMessages = await this.run('DELETE FROM webmail_messages WHERE account_id = ?', [id]);
      return { generation, removedMessages };
    });
  }

  /** The password of this generation was told (its notice is queued): later messages need not wait. */
  markPasswordTold(id: number, generation: number, now = new Date()): Promise<boolean> {
    return this.write(
      async () =>
        (await this.run('UPDATE webmail_accounts SET password_told = ?, password_claim = NULL, password_claim_at = NULL WHERE id = ? AND generation = ? AND password_told IS NULL', [
          now.getTime(), id, generation,
        ])) > 0,
    );
  }

  /**
   * An account this claimant made (or remade) whose password it has not told, gone with its mail:
   * a message that gives way to another takes back what nobody can open (worker/methods/webmail.ts).
   */
  dropUntoldAccount(id: number, generation: number, claimant: string): Promise<boolean> {
    return this.write(
      async () => (await this.run('DELETE FROM webmail_accounts WHERE id = ? AND generation = ? AND password_claim = ? AND password_told IS NULL', [id, generation, claimant])) > 0,
    );
  }

  /** The account and all its mail. */
  deleteAccount(addressKey: string): Promise<boolean> {
    return this.write(async () => (await this.run('DELETE FROM webmail_accounts WHERE address_key = ?', [addressKey])) > 0);
  }

  touchLogin(id: number, now = new Date()): Promise<void> {
    return this.write(async () => {
      await this.run('UPDATE webmail_accounts SET last_login = ? WHERE id = ?', [now.getTime(), id]);
    });
  }

  /** Disable or enable log-in (admins; mail is still stored). */
  setAccountDisabled(id: number, disabled: boolean): Promise<void> {
    return this.write(async () => {
      await this.run('UPDATE webmail_accounts SET disabled = ? WHERE id = ?', [disabled ? 1 : 0, id]);
    });
  }

  // ---- mailbox -----------------------------------------------------------------------------------

  /**
   * Store a message sealed (by the caller) to the account's key of `generation`. Idempotent per
   * deliveryKey: a retry gets the stored message's id, created false. 'stale' when the account was
   * reset since the caller read its key, 'missing' when it is gone.
   */
  putMessage(m: { accountId: number; generation: number; deliveryKey: string; received: Date; size: number; summary: Buffer; body: Buffer }): Promise<{ id: number; created: boolean }> {
    return this.write(async () => {
      const generation = await this.generationOf(m.accountId, undefined);
      const known = await this.get('SELECT id FROM webmail_messages WHERE account_id = ? AND delivery_key = ?', [m.accountId, m.deliveryKey]);
      if (known) return { id: known.id as number, created: false };
      if (generation !== m.generation) throw new PortalDbError('stale', 'the webmail account was reset: seal the message to its new key');
      const r = await this.get('INSERT INTO webmail_messages (account_id, generation, delivery_key, received, size, summary, body) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id', [
        m.accountId, m.generation, m.deliveryKey, m.received.getTime(), m.size, m.summary, m.body,
      ]);
      const received = m.received.getTime();
      await this.run('UPDATE webmail_accounts SET last_mail = ? WHERE id = ? AND (last_mail IS NULL OR last_mail < ?)', [received, m.accountId, received]);
      return { id: Number(r!.id), created: true };
    });
  }

  /** Newest first, the account's current generation only. */
  listMessages(accountId: number): Promise<StoredWebmailMessage[]> {
    return this.read(async () =>
      (
        await this.all(
          `SELECT m.id, m.account_id, m.generation, m.delivery_key, m.received, m.size, m.read, m.summary FROM webmail_messages m
           JOIN webmail_accounts a ON a.id = m.account_id AND a.generation = m.generation WHERE m.account_id = ? ORDER BY m.received DESC, m.id DESC`,
          [accountId],
        )
      ).map(messageOf),
    );
  }

  /** Bytes of mail in the mailbox under its current key (webmail.max_mailbox), counted by the database, not by reading every row. */
  mailboxBytes(accountId: number): Promise<number> {
    return this.read(async () => {
      const r = await this.get(
        `SELECT COALESCE(SUM(m.size), 0) AS bytes FROM webmail_messages m
         JOIN webmail_accounts a ON a.id = m.account_id AND a.generation = m.generation WHERE m.account_id = ?`,
        [accountId],
      );
      // PostgreSQL's SUM of a BIGINT is a NUMERIC, which comes back as a string.
      return Number(r!.bytes);
    });
  }

  message(accountId: number, id: number): Promise<(StoredWebmailMessage & { body: Buffer }) | null> {
    return this.read(async () => {
      const r = await this.get('SELECT m.* FROM webmail_messages m JOIN webmail_accounts a ON a.id = m.account_id AND a.generation = m.generation WHERE m.account_id = ? AND m.id = ?', [
        accountId, id,
      ]);
      return r ? { ...messageOf(r), body: r.body as Buffer } : null;
    });
  }

  markRead(accountId: number, id: number): Promise<void> {
    return this.write(async () => {
      await this.run('UPDATE webmail_messages SET read = 1 WHERE account_id = ? AND id = ?', [accountId, id]);
    });
  }

  deleteMessage(accountId: number, id: number): Promise<boolean> {
    return this.write(async () => (await this.run('DELETE FROM webmail_messages WHERE account_id = ? AND id = ?', [accountId, id])) > 0);
  }

  /**
   * Mail received longer than `retention` ago; accounts without mail left whose last log-in,
   * mail, creation and password change are all older; log-in failure counters as old.
   */
  pruneWebmail(o: { retention: number; now?: Date }): Promise<{ messages: number; accounts: number }> {
    const cutoff = (o.now ?? new Date()).getTime() - o.retention;
    if (!Number.isFinite(cutoff) || !(o.retention > 0)) return Promise.reject(new RangeError('pruneWebmail needs a positive retention in ms'));
    return this.write(async () => {
      const messages = await this.run('DELETE FROM webmail_messages WHERE received < ?', [cutoff]);
      const accounts = await this.run(
        `DELETE FROM webmail_accounts WHERE created < ? AND password_changed < ? AND coalesce(last_login, 0) < ? AND coalesce(last_mail, 0) < ?
         AND NOT EXISTS (SELECT 1 FROM webmail_messages m WHERE m.account_id = webmail_accounts.id)`,
        [cutoff, cutoff, cutoff, cutoff],
      );
      await this.run('DELETE FROM login_failures WHERE last < ?', [cutoff]);
      return { messages, accounts };
    });
  }

  // ---- log-in failures ---------------------------------------------------------------------------

  loginFailures(kind: LoginFailureKind, key: string): Promise<{ count: number; last: Date | null }> {
    if (!KINDS.has(kind)) return Promise.reject(new TypeError(`unknown log-in failure kind ${String(kind)}`));
    return this.read(async () => {
      const r = await this.get('SELECT count, last FROM login_failures WHERE kind = ? AND key = ?', [kind, key]);
      return r ? { count: r.count as number, last: new Date(r.last as number) } : { count: 0, last: null };
    });
  }

  recordLoginFailure(kind: LoginFailureKind, key: string, now = new Date()): Promise<{ count: number; last: Date }> {
    if (!KINDS.has(kind)) return Promise.reject(new TypeError(`unknown log-in failure kind ${String(kind)}`));
    return this.write(async () => {
      // "last" never moves back (a clock stepped backwards would shorten the back-off).
      const r = await this.get(
        `INSERT INTO login_failures (kind, key, count, last) VALUES (?, ?, 1, ?)
         ON CONFLICT (kind, key) DO UPDATE SET count = login_failures.count + 1,
           last = CASE WHEN excluded.last > login_failures.last THEN excluded.last ELSE login_failures.last END
         RETURNING count, last`,
        [kind, key, now.getTime()],
      );
      return { count: r!.count as number, last: new Date(r!.last as number) };
    });
  }

  clearLoginFailures(kind: LoginFailureKind, key: string): Promise<void> {
    return this.write(async () => {
      await this.run('DELETE FROM login_failures WHERE kind = ? AND key = ?', [kind, key]);
    });
  }

  // ---- audit -------------------------------------------------------------------------------------

  /** Who did what from where; never passwords or mail content (the caller's duty: nothing here can tell). */
  audit(e: { action: string; actor: string; client?: string; subject?: string; detail?: Record<string, string | number | boolean>; at?: Date }): Promise<void> {
    const detail = e.detail ? JSON.stringify(Object.fromEntries(Object.entries(e.detail).slice(0, 50).map(([k, v]) => [clip(k, 100), typeof v === 'string' ? clip(v, 998) : v]))) : null;
    return this.write(async () => {
      await this.run('INSERT INTO audit_log (at, event, actor, client, subject, detail) VALUES (?, ?, ?, ?, ?, ?)', [
        (e.at ?? new Date()).getTime(), clip(e.action, 100), clip(e.actor, 998), e.client === undefined ? null : clip(e.client, 100), e.subject === undefined ? null : clip(e.subject, 998), detail,
      ]);
    });
  }

  /** Newest first; `since` inclusive; at most `limit` (default 1000). */
  auditRecords(o: { since?: Date; limit?: number } = {}): Promise<PortalAuditRecord[]> {
    const limit = Math.max(1, Math.min(o.limit ?? 1000, 100_000));
    return this.read(async () => (await this.all('SELECT * FROM audit_log WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?', [o.since?.getTime() ?? 0, limit])).map(auditOf));
  }
}
