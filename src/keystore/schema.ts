/**
 * The keystore's SQLite schema, as numbered migrations applied in order (PRAGMA user_version holds
 * the number applied). A migration is never edited once shipped: a change is a new migration.
 *
 * Secrets live in one table, `sealed_secrets`, whatever they are (X.509 private keys, OpenPGP
 * secret keys, PDF passwords): each is AES-256-GCM under its own data key, and the data key
 * is wrapped by the KEK named in the row. `kek rotate` therefore touches one table, and a query
 * of any other table can never return secret material.
 */
import type Database from 'better-sqlite3';
import { addressKey } from '../core/address.js';

/** SQL, or code where a migration needs more than SQL (re-keying with IDNA). */
type Migration = string | ((db: Database.Database) => void);

const MIGRATIONS: Migration[] = [
  // 1: certificates, private keys, OpenPGP keys, audit log
  `
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );

  CREATE TABLE sealed_secrets (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('x509-key', 'pgp-secret')),
    kek_id TEXT NOT NULL,
    kek_alg TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    iv BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created INTEGER NOT NULL
  );
  CREATE INDEX sealed_secrets_kek ON sealed_secrets (kek_id);

  CREATE TABLE certificates (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    der BLOB NOT NULL,
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    serial TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    key_usage TEXT,
    ext_key_usage TEXT,
    is_ca INTEGER NOT NULL,
    trusted INTEGER NOT NULL DEFAULT 0,
    key_algorithm TEXT NOT NULL,
    key_bits INTEGER,
    key_curve TEXT,
    spki_sha256 TEXT NOT NULL,
    subject_key_id TEXT,
    source TEXT NOT NULL CHECK (source IN ('import', 'ldap', 'mail', 'ca')),
    first_seen INTEGER NOT NULL
  );
  CREATE INDEX certificates_issuer_serial ON certificates (issuer, serial);
  CREATE INDEX certificates_ski ON certificates (subject_key_id);
  CREATE INDEX certificates_spki ON certificates (spki_sha256);

  -- address_key is the address lower-cased: look-ups are case-insensitive (domains always are;
  -- mail systems treat local parts so in practice, and a miss here would mean mail sent unencrypted).
  CREATE TABLE certificate_addresses (
    certificate_id INTEGER NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    address_key TEXT NOT NULL,
    PRIMARY KEY (certificate_id, address_key)
  );
  CREATE INDEX certificate_addresses_key ON certificate_addresses (address_key);

  -- A private key belongs to every certificate with the same public key (renewals keep keys).
  CREATE TABLE private_keys (
    id INTEGER PRIMARY KEY,
    spki_sha256 TEXT NOT NULL UNIQUE,
    key_algorithm TEXT NOT NULL,
    secret_id INTEGER NOT NULL REFERENCES sealed_secrets (id),
    created INTEGER NOT NULL
  );

  CREATE TABLE pgp_keys (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    key_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    user_ids TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER,
    revoked INTEGER NOT NULL,
    can_encrypt INTEGER NOT NULL,
    can_sign INTEGER NOT NULL,
    encrypt_problem TEXT,
    source TEXT NOT NULL CHECK (source IN ('import', 'generated', 'wkd', 'hkp', 'autocrypt', 'ldap', 'mail')),
    first_seen INTEGER NOT NULL,
    secret_id INTEGER REFERENCES sealed_secrets (id)
  );
  CREATE INDEX pgp_keys_key_id ON pgp_keys (key_id);

  CREATE TABLE pgp_key_addresses (
    pgp_key_id INTEGER NOT NULL REFERENCES pgp_keys (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    address_key TEXT NOT NULL,
    PRIMARY KEY (pgp_key_id, address_key)
  );
  CREATE INDEX pgp_key_addresses_key ON pgp_key_addresses (address_key);

  CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    detail TEXT
  );
  CREATE INDEX audit_log_object ON audit_log (object);
  `,
  // 2: S/MIME in the mail path — what a correspondent's signed mail told us (capabilities), the
  // key-change flag of certificates learnt from mail, and the look-up of our keys by serial
  // (CMS RecipientInfos name issuer+serial) and by subject key id.
  `
  ALTER TABLE certificates ADD COLUMN flag TEXT;
  CREATE INDEX certificates_serial ON certificates (serial);

  -- SMIMECapabilities of a certificate's owner, from the newest valid signature seen (RFC 8551 2.5.2).
  CREATE TABLE smime_capabilities (
    certificate_id INTEGER PRIMARY KEY REFERENCES certificates (id) ON DELETE CASCADE,
    capabilities TEXT NOT NULL,
    seen INTEGER NOT NULL
  );
  `,
  // 3: revocation — CRLs imported by the admin (`postern crl import`), and the revocations of
  // certificates our internal CA issued (`postern ca revoke`), from which its CRL is built.
  // Revocations keep issuer and serial, not a reference to the certificate row: deleting a
  // certificate from the store must not take it off the CRL.
  `
  CREATE TABLE crls (
    id INTEGER PRIMARY KEY,
    issuer TEXT NOT NULL,
    issuer_fingerprint TEXT NOT NULL,
    this_update INTEGER NOT NULL,
    next_update INTEGER,
    crl_number TEXT,
    entries INTEGER NOT NULL,
    der BLOB NOT NULL,
    source TEXT NOT NULL,
    imported INTEGER NOT NULL,
    UNIQUE (issuer_fingerprint, source)
  );

  CREATE TABLE ca_revocations (
    issuer_fingerprint TEXT NOT NULL,
    serial TEXT NOT NULL,
    fingerprint TEXT,
    not_after INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL,
    reason TEXT,
    PRIMARY KEY (issuer_fingerprint, serial)
  );
  `,
  // 4: one address, one spelling (issue 14): address_key becomes the canonical comparison key
  // of core/address.ts (IDNA A-label domain, NFKC lower-case local part, needless quotes gone),
  // so a certificate for bob@bücher.example answers a look-up for bob@xn--bcher-kva.example.
  rekeyAddresses,
  // 5: PDF mail (issue 16) — a password per sender–recipient pair (sealed in sealed_secrets, whose
  // kind check must grow), its verifier and reply-link key parameters for the KEK-free portal,
  // and the reply links' sealed data.
  pdfPasswords,
  // 6: administration (issue 18) — admin accounts with their sealed TOTP secrets (sealed_secrets'
  // kind check grows again), their log-in failures, and an audit trail that says from where and
  // through what a change came, with before and after, and that can only grow.
  adminAccounts,
  // 7: clusters (issue 19) — a generation counter per kind of data, bumped by every change in the
  // same transaction, so a process's caches of look-ups can tell they are stale (changes.ts); the
  // PostgreSQL backend adds a NOTIFY to it.
  `
  CREATE TABLE store_changes (
    topic TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
  );
  INSERT INTO store_changes (topic, generation) VALUES ('certificates', 0), ('pgp', 0), ('pdf', 0), ('admin', 0), ('kek', 0), ('revocation', 0), ('policy', 0);

  -- A cluster's policy (policy/versions.ts, PostgreSQL): every version activated or pushed, the
  -- newest in force on every node. A single gateway keeps its versions as files instead; the
  -- table is here too so \`store migrate\` can carry them either way.
  CREATE TABLE policy_versions (
    id TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    text TEXT NOT NULL
  );
  CREATE INDEX policy_versions_at ON policy_versions (at);

  -- The nodes of a cluster (\`postern cluster status\`): each writes its heartbeat here.
  CREATE TABLE cluster_nodes (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    started INTEGER NOT NULL,
    seen INTEGER NOT NULL,
    policy TEXT,
    detail TEXT
  );
  `,
];

/**
 * SQLite cannot change a CHECK constraint in place, so sealed_secrets is rebuilt with the same
 * rows and ids (a REBUILD: migrate() runs it with foreign keys off and checks them after). The
 * foreign keys of private_keys and pgp_keys name the table, so they hold again once the rebuilt
 * table has its name back.
 */
function pdfPasswords(db: Database.Database): void {
  db.exec(`
  CREATE TABLE sealed_secrets_v5 (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('x509-key', 'pgp-secret', 'pdf-password')),
    kek_id TEXT NOT NULL,
    kek_alg TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    iv BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created INTEGER NOT NULL
  );
  INSERT INTO sealed_secrets_v5 (id, kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created)
    SELECT id, kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created FROM sealed_secrets;
  DROP TABLE sealed_secrets;
  ALTER TABLE sealed_secrets_v5 RENAME TO sealed_secrets;
  CREATE INDEX sealed_secrets_kek ON sealed_secrets (kek_id);

  -- sender_key and recipient_key are addressKey()s ("*" as sender_key: one password for all
  -- senders); sender and recipient the canonical spelling, for display. The password itself is
  -- only in sealed_secrets; verifier and content_kdf are what the portal may read.
  CREATE TABLE pdf_passwords (
    id INTEGER PRIMARY KEY,
    sender_key TEXT NOT NULL,
    recipient_key TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    secret_id INTEGER NOT NULL REFERENCES sealed_secrets (id),
    verifier TEXT NOT NULL,
    content_kdf TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('generated', 'set')),
    created INTEGER NOT NULL,
    notified INTEGER,
    -- The message that tells the sender (its queue id) and since when: one notice, not one per
    -- message processed at the same time; a claim whose message never got queued lapses.
    notice_claim TEXT,
    notice_claim_at INTEGER,
    UNIQUE (sender_key, recipient_key)
  );
  CREATE INDEX pdf_passwords_recipient ON pdf_passwords (recipient_key);

  -- A reply link: only the SHA-256 of its token (the token is in the PDF alone), and the
  -- message's data sealed under a key derived from the pair's password (keystore/pdf-verifier.ts).
  CREATE TABLE reply_tokens (
    token_hash TEXT PRIMARY KEY,
    password_id INTEGER NOT NULL REFERENCES pdf_passwords (id) ON DELETE CASCADE,
    salt BLOB NOT NULL,
    iv BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
  );
  CREATE INDEX reply_tokens_password ON reply_tokens (password_id);
  CREATE INDEX reply_tokens_expires ON reply_tokens (expires);
  `);
}

/** sealed_secrets rebuilt as in pdfPasswords, for the TOTP secrets of admin accounts. */
function adminAccounts(db: Database.Database): void {
  db.exec(`
  CREATE TABLE sealed_secrets_v6 (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('x509-key', 'pgp-secret', 'pdf-password', 'admin-totp')),
    kek_id TEXT NOT NULL,
    kek_alg TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    iv BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created INTEGER NOT NULL
  );
  INSERT INTO sealed_secrets_v6 (id, kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created)
    SELECT id, kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created FROM sealed_secrets;
  DROP TABLE sealed_secrets;
  ALTER TABLE sealed_secrets_v6 RENAME TO sealed_secrets;
  CREATE INDEX sealed_secrets_kek ON sealed_secrets (kek_id);

  -- name_key is the name lower-cased (names are ASCII): Alice and alice are one account. roles is
  -- a comma-separated list of core/admin-roles.ts names; password a scrypt PHC string;
  -- totp_last_step the RFC 6238 time step of the last code accepted (a code is good once).
  CREATE TABLE admin_accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,
    roles TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    totp_secret_id INTEGER REFERENCES sealed_secrets (id),
    totp_last_step INTEGER,
    created INTEGER NOT NULL,
    password_changed INTEGER NOT NULL,
    last_login INTEGER
  );

  -- As portal.db's login_failures, for the admin role's lock-out (portal/lockout.ts LoginGuard).
  CREATE TABLE admin_login_failures (
    kind TEXT NOT NULL CHECK (kind IN ('account', 'client')),
    key TEXT NOT NULL,
    count INTEGER NOT NULL,
    last INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
  );

  -- client: the caller's IP address (null from the CLI and the roles); via: cli, api, console,
  -- worker …; before and after: what a policy or trust change replaced, as text.
  ALTER TABLE audit_log ADD COLUMN client TEXT;
  ALTER TABLE audit_log ADD COLUMN via TEXT;
  ALTER TABLE audit_log ADD COLUMN before TEXT;
  ALTER TABLE audit_log ADD COLUMN after TEXT;
  CREATE INDEX audit_log_at ON audit_log (at);
  CREATE INDEX audit_log_actor ON audit_log (actor);

  -- Append-only: whoever may change keys through Postern cannot also erase what they did.
  CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  `);
}

function rekeyAddresses(db: Database.Database): void {
  for (const [table, owner] of [
    ['certificate_addresses', 'certificate_id'],
    ['pgp_key_addresses', 'pgp_key_id'],
  ] as const) {
    const rows = db.prepare(`SELECT rowid, ${owner} AS owner, address, address_key FROM ${table}`).all() as { rowid: number; owner: number; address: string; address_key: string }[];
    // Two spellings of one address on one key collapse into one row (the primary key): keep the
    // row already keyed right if there is one, delete the others first, then re-key the rest.
    const keep = new Map<string, (typeof rows)[number]>();
    const drop: number[] = [];
    for (const r of rows) {
      const slot = `${r.owner}\0${addressKey(r.address)}`;
      const kept = keep.get(slot);
      if (!kept) keep.set(slot, r);
      else if (kept.address_key !== addressKey(kept.address) && r.address_key === addressKey(r.address)) {
        drop.push(kept.rowid);
        keep.set(slot, r);
      } else drop.push(r.rowid);
    }
    const remove = db.prepare(`DELETE FROM ${table} WHERE rowid = ?`);
    for (const id of drop) remove.run(id);
    const update = db.prepare(`UPDATE ${table} SET address_key = ? WHERE rowid = ?`);
    for (const r of keep.values()) if (r.address_key !== addressKey(r.address)) update.run(addressKey(r.address), r.rowid);
  }
}

/** Migrations that rebuild a table other tables refer to. */
const REBUILDS = new Set<Migration>([pdfPasswords, adminAccounts]);

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Bring the database to the current schema (or to `target`: tests build an older database to
 * migrate), each migration in its own transaction.
 */
export function migrate(db: Database.Database, target = MIGRATIONS.length): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`the keystore database has schema version ${current}, newer than this Postern (${MIGRATIONS.length}): upgrade Postern`);
  }
  for (let v = current; v < Math.min(target, MIGRATIONS.length); v++) {
    const m = MIGRATIONS[v]!;
    // A table rebuild must run with foreign keys off (SQLite's own recipe: the DROP would count
    // every reference to the old table as a violation), so they are checked by hand before COMMIT.
    const rebuild = REBUILDS.has(m);
    const enforced = db.pragma('foreign_keys', { simple: true }) as number;
    if (rebuild) db.pragma('foreign_keys = OFF');
    try {
      db.transaction(() => {
        if (typeof m === 'string') db.exec(m);
        else m(db);
        if (rebuild) {
          const broken = db.pragma('foreign_key_check') as unknown[];
          if (broken.length) throw new Error(`keystore migration ${v + 1} would break ${broken.length} references; nothing was changed`);
        }
        db.pragma(`user_version = ${v + 1}`);
      })();
    } finally {
      if (rebuild) db.pragma(`foreign_keys = ${enforced ? 'ON' : 'OFF'}`);
    }
  }
}
