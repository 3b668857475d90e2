/**
 * portal.db's schema, as numbered migrations applied in order (PRAGMA user_version holds the
 * number applied), like schema.ts for postern.db. A migration is never edited once shipped.
 *
 * Nothing here reveals mail to whoever copies the file: reply-link data is sealed under a key
 * derived from the PDF password, webmail mail under the account's X25519 public key whose private
 * key is wrapped under scrypt(the user's password). Addresses, dates and sizes are in clear: the
 * portal must find an account by its address before anyone has logged in.
 */
import type Database from 'better-sqlite3';

const MIGRATIONS: string[] = [
  // 1: issue 17 — PDF reply links (moved from postern.db), webmail accounts and mailboxes,
  // log-in failure counters, the portal's audit log.
  `
  -- A reply link: the SHA-256 of its token (the token is in the PDF alone), the pair it belongs
  -- to, the pair's verifier and content KDF as they were when it was made (the portal checks the
  -- password without postern.db), and the message's data sealed under the content root.
  CREATE TABLE reply_links (
    token_hash TEXT PRIMARY KEY,
    sender_key TEXT NOT NULL,
    recipient_key TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    verifier TEXT NOT NULL,
    content_kdf TEXT NOT NULL,
    salt BLOB NOT NULL,
    iv BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
  );
  CREATE INDEX reply_links_pair ON reply_links (sender_key, recipient_key);
  CREATE INDEX reply_links_expires ON reply_links (expires);

  -- address_key: the canonical comparison key (core/address.ts); address: the spelling shown.
  -- generation counts key pairs: a reset makes a new pair, and mail of older ones is removed.
  -- last_mail: when mail last arrived (an account neither used nor written to is pruned).
  -- AUTOINCREMENT: an id is never given again, so a session or link naming a deleted account or
  -- message can never reach a later one.
  CREATE TABLE webmail_accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    address TEXT NOT NULL,
    address_key TEXT NOT NULL UNIQUE,
    public_key BLOB NOT NULL,
    key_kdf TEXT NOT NULL,
    key_iv BLOB NOT NULL,
    key_ciphertext BLOB NOT NULL,
    generation INTEGER NOT NULL,
    must_change_password INTEGER NOT NULL,
    created INTEGER NOT NULL,
    last_login INTEGER,
    password_changed INTEGER NOT NULL,
    last_mail INTEGER,
    disabled INTEGER NOT NULL DEFAULT 0
  );

  -- summary and body are sealed to the account's key of that generation (webmail-crypto.ts).
  -- delivery_key (queue id and recipient) makes a worker's retry store the message once.
  CREATE TABLE webmail_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES webmail_accounts (id) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    delivery_key TEXT NOT NULL,
    received INTEGER NOT NULL,
    size INTEGER NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    summary BLOB NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (account_id, delivery_key)
  );
  CREATE INDEX webmail_messages_mailbox ON webmail_messages (account_id, generation, received);
  CREATE INDEX webmail_messages_received ON webmail_messages (received);

  -- Failed log-ins per account (address key) and per client (IP address): the portal's back-off.
  CREATE TABLE login_failures (
    kind TEXT NOT NULL CHECK (kind IN ('account', 'client')),
    key TEXT NOT NULL,
    count INTEGER NOT NULL,
    last INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
  );

  -- Who did what from where: never passwords or mail content. detail is a JSON object.
  CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    client TEXT,
    subject TEXT,
    detail TEXT
  );
  CREATE INDEX audit_log_at ON audit_log (at);
  `,
  // 2: issue 17 — the password of a new (or remade) account is known only to the worker that made
  // it until its notice to the sender is queued. password_told: when that was (NULL: not yet);
  // password_claim(_at): the queue id of the message whose notice tells it. Accounts made before
  // this column count as told.
  `
  ALTER TABLE webmail_accounts ADD COLUMN password_told INTEGER;
  ALTER TABLE webmail_accounts ADD COLUMN password_claim TEXT;
  ALTER TABLE webmail_accounts ADD COLUMN password_claim_at INTEGER;
  UPDATE webmail_accounts SET password_told = password_changed;
  `,
];

export const PORTAL_SCHEMA_VERSION = MIGRATIONS.length;

/** Bring portal.db to the current schema, each migration in its own transaction. */
export function migratePortal(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`portal.db has schema version ${current}, newer than this Postern (${MIGRATIONS.length}): upgrade Postern`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      // Another process (the supervisor, a worker, the CLI) may have applied it meanwhile.
      if ((db.pragma('user_version', { simple: true }) as number) > v) return;
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}
