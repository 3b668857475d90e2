/**
 * What the keystore hands out. Asynchronous throughout although better-sqlite3 is synchronous:
 * a PostgreSQL backend for several nodes (DESIGN §2, scale-out) must fit behind the same API.
 */
import type { PgpKeyInfo } from '../openpgp/index.js';

export type CertSource = 'import' | 'ldap' | 'mail' | 'ca';
export type PgpSource = 'import' | 'generated' | 'wkd' | 'hkp' | 'autocrypt' | 'ldap' | 'mail';

export interface StoredCertificate {
  id: number;
  fingerprint: string;
  der: Buffer;
  subject: string;
  issuer: string;
  serial: string;
  emails: string[];
  notBefore: Date;
  notAfter: Date;
  keyUsage: string[] | null;
  extKeyUsage: string[] | null;
  isCA: boolean;
  /** A trust anchor for chains (CA certificates imported with --trust, and our internal CA). */
  trusted: boolean;
  keyAlgorithm: string;
  keyBits?: number;
  keyCurve?: string;
  spkiSha256: string;
  subjectKeyId?: string;
  source: CertSource;
  firstSeen: Date;
  /** The store holds the private key for this certificate's public key. */
  hasPrivateKey: boolean;
  /** Set when something about it needs an admin's eye, e.g. "key-change": learnt from mail for an address that had another certificate. */
  flag?: string;
}

export interface StoredPgpKey {
  id: number;
  info: PgpKeyInfo;
  publicKey: Buffer;
  source: PgpSource;
  firstSeen: Date;
  hasSecret: boolean;
}

/** The keystore's own actions (the admin API and the CLI add theirs: "admin-add", "policy-activate" …). */
export type KeystoreAuditAction =
  | 'import' | 'key-change' | 'export' | 'delete' | 'trust' | 'distrust' | 'use-sign' | 'use-decrypt' | 'kek-rotate' | 'generate' | 'ca-init' | 'ca-issue' | 'ca-revoke' | 'crl-import'
  | 'pdf-password-create' | 'pdf-password-reset' | 'pdf-password-set' | 'pdf-password-show' | 'pdf-password-delete' | 'pdf-password-notified'
  | 'pdf-reply-links-moved' | 'backup' | 'restore';

/** One record of the audit trail (append-only: the database refuses to change or delete one). */
export interface AuditEntry {
  /** Its place in the trail (ascending with time of writing). */
  id?: number;
  at: Date;
  /** Who: "cli:root", "worker", "relay", an admin account's name … */
  actor: string;
  action: KeystoreAuditAction | (string & {});
  /** What: "cert:<fingerprint>", "key:<spki sha256>", "pgp:<fingerprint>", "kek", "pdf:<sender>→<recipient>" (address keys; sender "*" for a recipient's one password), "admin:<name>", "policy" … */
  object: string;
  detail?: string;
  /** Through what: "cli", "api", "console", "worker" …; for actors "cli:<login>" the store says "cli" itself. */
  via?: string;
  /** The caller's IP address (admin API and console); none from the CLI and the roles. */
  client?: string;
  /** What a change replaced and what it put in its place (policy, trust, roles), as text; never secrets. */
  before?: string;
  after?: string;
}

/** Which records `auditLog` returns. */
export interface AuditFilter {
  /** Exactly this object. */
  object?: string;
  /** Objects that start with this ("cert:", "admin:"). */
  objectPrefix?: string;
  actor?: string;
  action?: string;
  /** At or after. */
  since?: Date;
  /** Before (not at). */
  until?: Date;
  /** Records after this id (paging oldest first) or before it (newest first). */
  afterId?: number;
  beforeId?: number;
  /** Default: all. */
  limit?: number;
  /** Default: oldest first. */
  order?: 'oldest' | 'newest';
}

export type ImportStatus = 'added' | 'duplicate' | 'updated';

/** Who performs an operation, for the audit log. */
export interface Actor {
  actor: string;
}

// ---- PDF mail (issue 16) ---------------------------------------------------------------------------

/** The two ends of a PDF mail; any spelling of an address, the store canonicalises. */
export interface PdfPair {
  sender: string;
  recipient: string;
}

/** `pair`: a password per sender and recipient; `recipient`: one for all senders (stored with sender "*"). */
export type PdfPasswordScope = 'pair' | 'recipient';

export interface PdfPasswordRecord {
  /** Canonical address (core/address.ts), or "*" for a recipient's one password. */
  sender: string;
  recipient: string;
  /** When this password was made (a reset or set makes a new one, with a later date). */
  created: Date;
  /** When the sender was told this password; null: tell them with the next message. */
  notified: Date | null;
  source: 'generated' | 'set';
}

/** The keystore's PDF-mail part (KeyStore implements it; store-pdf.ts). */
export interface PdfPasswordStore {
  /** The pair's password, made (generated, sealed, with verifier) when there is none yet. */
  pdfPassword(pair: PdfPair, scope: PdfPasswordScope, actor: string): Promise<{ password: string; record: PdfPasswordRecord; created: boolean }>;
  /** The pair's record without unsealing anything (policy explain, check); null when none. */
  pdfPasswordRecord(pair: PdfPair, scope: PdfPasswordScope): Promise<PdfPasswordRecord | null>;
  /** The sender has been told the password made at `created` (a later reset stays untold). */
  /**
   * The one message that tells the sender an untold password: true for the first claimant (and
   * for it again, when it is processed again after a crash), false for the others, until the
   * claim lapses unused.
   */
  claimPdfPasswordNotice(pair: PdfPair, scope: PdfPasswordScope, created: Date, claimant: string, leaseMs?: number): Promise<boolean>;
  markPdfPasswordNotified(pair: PdfPair, scope: PdfPasswordScope, created: Date, actor?: string): Promise<void>;
  resetPdfPassword(pair: PdfPair, scope: PdfPasswordScope, actor: string): Promise<{ password: string; record: PdfPasswordRecord }>;
  setPdfPassword(pair: PdfPair, scope: PdfPasswordScope, password: string, actor: string): Promise<PdfPasswordRecord>;
  showPdfPassword(pair: PdfPair, scope: PdfPasswordScope, actor: string): Promise<{ password: string; record: PdfPasswordRecord } | null>;
  listPdfPasswords(filter?: { sender?: string; recipient?: string }): Promise<PdfPasswordRecord[]>;
  deletePdfPassword(pair: PdfPair, scope: PdfPasswordScope, actor: string): Promise<boolean>;
  /** KEK-free: whether `password` is the pair's current one (by its verifier). */
  checkPdfPassword(pair: PdfPair, scope: PdfPasswordScope, password: string): Promise<boolean>;
  /** A reply link for one message, stored in portal.db (attachPortal); its token, for the PDF's Reply button. */
  createReplyToken(t: { pair: PdfPair; scope: PdfPasswordScope; password: string; messageId: string; subject: string; sender: string; expires: Date }): Promise<string>;
}
