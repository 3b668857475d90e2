/**
 * portal.db's rows as typed values (portal-db.ts): each column checked on the way out, so a row
 * damaged on disk (or written by something other than Postern) throws PortalDbError 'damaged'
 * rather than reaching the portal as a half-valid account or link.
 */
import type { SealedReplyData } from './pdf-verifier.js';
import { SqlError } from './sql/types.js';
import type { WrappedAccountKey } from './webmail-crypto.js';

export type Row = Record<string, unknown>;

/**
 * exists: createAccount for an address that has one. damaged: the file or a row is not what
 * Postern wrote. unavailable: the database cannot be reached or take writes now (PostgreSQL down,
 * SQLite busy past its timeout, a full disk): transient, the caller retries or defers, and
 * isStoreUnavailable() says so through the error's cause. io: anything else the database refused
 * (a missing file, permissions). stale: putMessage or changeAccountPassword for a key generation
 * that a reset replaced (seal again to the account's current key). missing: the account is gone.
 */
export type PortalDbErrorCode = 'exists' | 'damaged' | 'unavailable' | 'io' | 'stale' | 'missing';

export class PortalDbError extends Error {
  override readonly name = 'PortalDbError';
  constructor(
    readonly code: PortalDbErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface ReplyLink {
  /** SHA-256 of the token, hex (pdf-verifier.ts replyTokenHash). */
  tokenHash: string;
  senderKey: string;
  recipientKey: string;
  sender: string;
  recipient: string;
  /** The pair's password verifier and content KDF when the link was made. */
  verifier: string;
  contentKdf: string;
  sealed: SealedReplyData;
  created: Date;
  expires: Date;
}

export interface WebmailAccount {
  id: number;
  address: string;
  addressKey: string;
  publicKey: Buffer;
  wrapped: WrappedAccountKey;
  generation: number;
  mustChangePassword: boolean;
  created: Date;
  lastLogin: Date | null;
  passwordChanged: Date;
  disabled: boolean;
  /** When the password was told (the sender's notice queued, or shown to an admin); null: not yet. */
  passwordTold: Date | null;
  /** The message whose notice is to tell it (worker/methods/webmail.ts), while untold. */
  passwordClaim: { by: string; at: Date } | null;
}

export interface StoredWebmailMessage {
  id: number;
  accountId: number;
  generation: number;
  deliveryKey: string;
  received: Date;
  size: number;
  read: boolean;
  /** Sealed (webmail-crypto.ts sealForAccount). */
  summary: Buffer;
}

export interface PortalAuditRecord {
  at: Date;
  action: string;
  actor: string;
  client: string | null;
  subject: string | null;
  detail: Record<string, unknown>;
}

/**
 * A backend's error as a PortalDbError, the SqlError kept as its cause (so isStoreUnavailable
 * sees through it). Messages name no value: every value is a bound parameter.
 */
export function portalDbError(err: unknown): unknown {
  if (err instanceof PortalDbError || !(err instanceof SqlError)) return err;
  const code: PortalDbErrorCode = err.kind === 'damaged' ? 'damaged' : err.kind === 'unavailable' || err.kind === 'busy' ? 'unavailable' : 'io';
  return new PortalDbError(code, `portal store: ${err.message}`, { cause: err });
}

/** Hostile input can be huge; a stored line is clipped at code points, never inside a surrogate pair. */
export const clip = (s: string, n: number) => (typeof s !== 'string' ? String(s).slice(0, n) : s.length <= n ? s : Array.from(s).slice(0, n).join(''));

function damaged(table: string, column: string): never {
  throw new PortalDbError('damaged', `the portal store: a row of ${table} is damaged (${column})`);
}

const text = (r: Row, table: string, c: string): string => (typeof r[c] === 'string' ? (r[c] as string) : damaged(table, c));
const blob = (r: Row, table: string, c: string): Buffer => (Buffer.isBuffer(r[c]) ? (r[c] as Buffer) : damaged(table, c));
const int = (r: Row, table: string, c: string): number => (Number.isSafeInteger(r[c]) ? (r[c] as number) : damaged(table, c));
const date = (r: Row, table: string, c: string): Date => new Date(int(r, table, c));
const dateOrNull = (r: Row, table: string, c: string): Date | null => (r[c] == null ? null : date(r, table, c));

export function linkOf(r: Row): ReplyLink {
  const t = 'reply_links';
  const sealed: SealedReplyData = { salt: blob(r, t, 'salt'), iv: blob(r, t, 'iv'), ciphertext: blob(r, t, 'ciphertext') };
  return {
    tokenHash: text(r, t, 'token_hash'),
    senderKey: text(r, t, 'sender_key'),
    recipientKey: text(r, t, 'recipient_key'),
    sender: text(r, t, 'sender'),
    recipient: text(r, t, 'recipient'),
    verifier: text(r, t, 'verifier'),
    contentKdf: text(r, t, 'content_kdf'),
    sealed,
    created: date(r, t, 'created'),
    expires: date(r, t, 'expires'),
  };
}

export function accountOf(r: Row): WebmailAccount {
  const t = 'webmail_accounts';
  const wrapped: WrappedAccountKey = { kdf: text(r, t, 'key_kdf'), iv: blob(r, t, 'key_iv'), ciphertext: blob(r, t, 'key_ciphertext') };
  return {
    id: int(r, t, 'id'),
    address: text(r, t, 'address'),
    addressKey: text(r, t, 'address_key'),
    publicKey: blob(r, t, 'public_key'),
    wrapped,
    generation: int(r, t, 'generation'),
    mustChangePassword: int(r, t, 'must_change_password') !== 0,
    created: date(r, t, 'created'),
    lastLogin: dateOrNull(r, t, 'last_login'),
    passwordChanged: date(r, t, 'password_changed'),
    disabled: int(r, t, 'disabled') !== 0,
    passwordTold: dateOrNull(r, t, 'password_told'),
    passwordClaim: r.password_claim == null ? null : { by: text(r, t, 'password_claim'), at: date(r, t, 'password_claim_at') },
  };
}

export function messageOf(r: Row): StoredWebmailMessage {
  const t = 'webmail_messages';
  return {
    id: int(r, t, 'id'),
    accountId: int(r, t, 'account_id'),
    generation: int(r, t, 'generation'),
    deliveryKey: text(r, t, 'delivery_key'),
    received: date(r, t, 'received'),
    size: int(r, t, 'size'),
    read: int(r, t, 'read') !== 0,
    summary: blob(r, t, 'summary'),
  };
}

export function auditOf(r: Row): PortalAuditRecord {
  const t = 'audit_log';
  let detail: Record<string, unknown> = {};
  if (r.detail != null) {
    try {
      detail = JSON.parse(text(r, t, 'detail')) as Record<string, unknown>;
    } catch {
      damaged(t, 'detail');
    }
    if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) damaged(t, 'detail');
  }
  const optional = (c: string) => (r[c] == null ? null : text(r, t, c));
  return { at: date(r, t, 'at'), action: text(r, t, 'event'), actor: text(r, t, 'actor'), client: optional('client'), subject: optional('subject'), detail };
}
