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

export interface AuditEntry {
  at: Date;
  /** Who: "cli:root", "worker", "relay" … */
  actor: string;
  action: 'import' | 'key-change' | 'export' | 'delete' | 'use-sign' | 'use-decrypt' | 'kek-rotate' | 'generate' | 'ca-init' | 'ca-issue' | 'ca-revoke' | 'crl-import';
  /** What: "cert:<fingerprint>", "key:<spki sha256>", "pgp:<fingerprint>", "kek". */
  object: string;
  detail?: string;
}

export type ImportStatus = 'added' | 'duplicate' | 'updated';

/** Who performs an operation, for the audit log. */
export interface Actor {
  actor: string;
}
