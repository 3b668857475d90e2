/**
 * keystore: certificates, private keys, OpenPGP keys, PDF passwords and admin accounts in SQLite
 * (one gateway) or PostgreSQL (a cluster, issue 19), secrets sealed under a key-encryption key (kek/: file, passphrase or PKCS#11 token), and the
 * append-only audit trail of every change. The only module that reads or writes postern.db (or
 * the database's keystore schema).
 *
 * Untrusted input: certificates and keys arrive already parsed and checked by pki/ and openpgp/
 * (from admins, LDAP, signed mail); addresses are only ever bound as SQL parameters.
 * Secrets: unsealed private keys and PDF passwords are returned to callers (transforms, the
 * CLI) and never logged; the KEK is held by kek/ and never leaves it (with PKCS#11, never leaves
 * the token). PDF password verifiers and reply-link data are checked without the KEK
 * (pdf-verifier.ts), as the portal must; reply links and webmail live in portal.db (portal-db.ts),
 * which the portal writes too and which holds no KEK-sealed secret.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config/types.js';
import { KekError, openKek, type Kek } from './kek/index.js';
import { NO_KEK } from './kek/none.js';
import type { ScryptCost } from './pdf-verifier.js';
import type { PortalDb } from './portal-db.js';
import { openPortalStore, type PortalStoreUser } from './portal-store.js';
import { openPostgres } from './sql/open.js';
import type { Sql } from './sql/types.js';
import { KEYSTORE_PG_MIGRATIONS } from './schema-pg.js';
import { openSqliteKeystore } from './store-base.js';
import { SqlKeyStore } from './store.js';

export { SqlKeyStore as KeyStore } from './store.js';
export { addressKey } from './store-base.js';
export { databaseFiles } from './db-file.js';
export type {
  AuditEntry, AuditFilter, KeystoreAuditAction, CertSource, ImportStatus, PgpSource, StoredCertificate, StoredPgpKey,
  PdfPair, PdfPasswordRecord, PdfPasswordScope, PdfPasswordStore,
} from './types.js';
export { describePdfPair, MIN_SET_PASSWORD_LENGTH } from './store-pdf.js';
// Admin accounts (issue 18): the admin role signs in against these; `postern admin` manages them.
export {
  ADMIN_SCRYPT, AdminAccountError, adminAccountJson, checkAdminName, checkAdminPassword, checkAdminRoles, MIN_ADMIN_PASSWORD_LENGTH,
  type AdminAccount, type AdminAccountErrorCode, type AdminLoginResult,
} from './admin-accounts.js';
export type { AdminLoginFailures } from './store-admin.js';
export { auditJson, parseAuditTime } from './audit-log.js';
export { PdfPasswordError, PDF_SCRYPT, verifyPdfPassword, type ScryptCost } from './pdf-verifier.js';
export { KekError, openKek, seal, unseal, rewrap, type Kek, type SealedSecret } from './kek/index.js';
// What callers on the mail path tell apart: a store that cannot be reached now (defer) from a bug.
export { isStoreUnavailable, SqlError, type SqlErrorKind } from './sql/types.js';

/** Where the passphrase KEK keeps its scrypt salt. */
export const saltFile = (config: Config) => join(config.data_dir, 'kek.salt');

export interface OpenKeyStoreOptions {
  createKek?: boolean;
  pdfScrypt?: ScryptCost;
  adminScrypt?: ScryptCost;
  /** Who opens it (worker, admin, cli …): shown with the node in PostgreSQL's pg_stat_activity. */
  role?: string;
}

/**
 * The keystore's database as the config says: PostgreSQL when keystore.postgres is set (the
 * schema migrated, which nodes starting together may all ask for), else the SQLite file
 * (created and migrated).
 */
export async function openKeystoreSql(config: Config, opts: { role?: string } = {}): Promise<Sql> {
  const pg = config.keystore.postgres;
  if (pg) {
    return openPostgres(pg, {
      schema: 'keystore',
      pool: pg.pool,
      applicationName: `postern ${config.cluster.node}${opts.role ? ` ${opts.role}` : ''}`.slice(0, 63),
      migrations: KEYSTORE_PG_MIGRATIONS,
    });
  }
  mkdirSync(dirname(config.keystore.sqlite), { recursive: true, mode: 0o700 });
  return openSqliteKeystore(config.keystore.sqlite);
}

/**
 * Open the configured KEK and the database. Refuses (KekError) when the database holds keys
 * wrapped by some other KEK: using it anyway would mix KEKs and fail at the first decryption.
 */
export async function openKeyStore(config: Config, opts: OpenKeyStoreOptions = {}): Promise<SqlKeyStore> {
  const kek: Kek = await openKek(config.kek, { saltFile: saltFile(config), create: opts.createKek ?? true });
  try {
    const sql = await openKeystoreSql(config, opts);
    const store = new SqlKeyStore(sql, kek, { ...(opts.pdfScrypt ? { pdfScrypt: opts.pdfScrypt } : {}), ...(opts.adminScrypt ? { adminScrypt: opts.adminScrypt } : {}) });
    let others: string[];
    try {
      others = (await store.kekIdsInUse()).filter((id) => id !== kek.id);
    } catch (err) {
      await sql.close();
      throw err;
    }
    if (others.length) {
      await sql.close();
      throw new KekError(
        `the keystore ${store.backend.where} holds keys wrapped by ${others.join(', ')}, but the configured KEK is ${kek.id}; ` +
          'configure the KEK the keys were wrapped with (then `postern kek rotate` to change it)',
      );
    }
    return store;
  } catch (err) {
    await kek.close();
    throw err;
  }
}
/**
 * The keystore with the portal store beside it (portal.db in data_dir, or the portal schema of
 * the cluster's database: portal-store.ts), attached for reply links: what the worker, the CLI,
 * the admin role and the supervisor open. Reply links an older Postern kept in postern.db are
 * moved on the way (`moved`). The caller closes both.
 */
export async function openKeyStoreWithPortal(
  config: Config,
  opts: Omit<OpenKeyStoreOptions, 'role'> & { role?: PortalStoreUser; owner?: { uid: number; gid: number } } = {},
): Promise<{ store: SqlKeyStore; portal: PortalDb; moved: number }> {
  const role = opts.role ?? 'cli';
  const store = await openKeyStore(config, { ...opts, role });
  let portal: PortalDb | undefined;
  try {
    portal = await openPortalStore(config, { role, ...(opts.owner ? { owner: opts.owner } : {}) });
    const moved = await store.attachPortal(portal);
    return { store, portal, moved };
  } catch (err) {
    await portal?.close();
    await store.close();
    throw err;
  }
}

export { initCa, issueFromCa, internalCa, InternalCaError } from './internal-ca.js';
export {
  certificateChain, certificateFlags, exportCertificateWithKey, importCertificates, offlineRevocationChecker, revocationStates,
  type CertificateChain, type CertImportReport, type CertImportResult, type ImportInput, type KeyImportResult,
} from './cert-admin.js';
export { exportPgpSecretKey, importPgpKeys, pgpKeyFlags, type PgpImportReport, type PgpImportResult } from './pgp-admin.js';
export { publicKeysFile, publishPublicKeys, PublicFileError, type PublicKeySource } from './public.js';
export { publicCertificatesFile, publishPublicCertificates, type PublicCertificateSource } from './public.js';
export { createPkcs11Key } from './kek/index.js';
// portal.db and the webmail crypto (issue 17): KEK-free; the portal imports these files directly, never this index.
export {
  openPortalDb, portalDbFile, PortalDb, PortalDbError, type PortalDbErrorCode, type LoginFailureKind, type PortalAuditRecord, type ReplyLink,
  type StoredWebmailMessage, type WebmailAccount,
} from './portal-db.js';
export { openPortalStore, type PortalStoreOptions, type PortalStoreUser } from './portal-store.js';
export { openReplyLink, type ReplyLinkContent } from './portal-reply-links.js';
export {
  newAccountKeys, newWebmailPassword, openForAccount, rawPublicKey, rewrapAccountKey, sealForAccount, unwrapAccountKey, unwrapNothing, WEBMAIL_SCRYPT,
  WebmailCryptoError, webmailBodyAad, webmailPasswordProblem, webmailSummaryAad, type NewAccountKeys, type WrappedAccountKey,
} from './webmail-crypto.js';
// `postern store migrate` (issue 19): a whole store moved between SQLite and PostgreSQL.
export {
  describeLocation, migrateStore, parseStoreLocation, StoreLocationError, StoreMigrateError,
  type MigrateStoreResult, type StoreEnds, type StoreLocation, type TableCount,
} from './transfer/index.js';
export { openPostgres, postgresPassword, StoreConfigError } from './sql/open.js';
export { listClusterNodes, writeClusterNode, type ClusterNodeBeat } from './cluster-nodes.js';
export {
  importCrl, internalCaCrl, publishInternalCrl, internalCrlFile, revocationCheckerFor, revocationStoreView, revokeAndPublish, revokeFromCa, INTERNAL_CRL_VALIDITY_MS,
  type IssuedRevocation, type StoredCrl,
} from './store-revocation.js';

/**
 * The store for public data only (certificates, OpenPGP public keys), without the KEK: what an
 * Internet-facing role may hold, so a compromise of it reveals no private key.
 */
export async function openPublicKeyStore(config: Config, opts: { role?: string } = {}): Promise<SqlKeyStore> {
  return new SqlKeyStore(await openKeystoreSql(config, opts), NO_KEK);
}
