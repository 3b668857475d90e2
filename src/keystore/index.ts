/**
 * keystore: certificates, private keys, OpenPGP keys, PDF passwords and admin accounts in SQLite,
 * secrets sealed under a key-encryption key (kek/: file, passphrase or PKCS#11 token), and the
 * append-only audit trail of every change. The only module that reads or writes postern.db.
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
import { openPortalDb, portalDbFile, type PortalDb } from './portal-db.js';
import { KeyStoreSqlite } from './store.js';

export { KeyStoreSqlite as KeyStore } from './store.js';
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

/**
 * Open the configured KEK and the database. Refuses (KekError) when the database holds keys
 * wrapped by some other KEK: using it anyway would mix KEKs and fail at the first decryption.
 */
export async function openKeyStore(config: Config, opts: { createKek?: boolean; pdfScrypt?: ScryptCost; adminScrypt?: ScryptCost } = {}): Promise<KeyStoreSqlite> {
  const kek: Kek = await openKek(config.kek, { saltFile: saltFile(config), create: opts.createKek ?? true });
  try {
    mkdirSync(dirname(config.keystore.sqlite), { recursive: true, mode: 0o700 });
    const store = new KeyStoreSqlite(config.keystore.sqlite, kek, { ...(opts.pdfScrypt ? { pdfScrypt: opts.pdfScrypt } : {}), ...(opts.adminScrypt ? { adminScrypt: opts.adminScrypt } : {}) });
    const others = (await store.kekIdsInUse()).filter((id) => id !== kek.id);
    if (others.length) {
      store.close();
      throw new KekError(
        `the keystore ${config.keystore.sqlite} holds keys wrapped by ${others.join(', ')}, but the configured KEK is ${kek.id}; ` +
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
 * The keystore with portal.db beside it (data_dir/portal.db), attached for reply links: what the
 * worker, the CLI and the supervisor open. Reply links an older Postern kept in postern.db are
 * moved on the way (`moved`). The caller closes both.
 */
export async function openKeyStoreWithPortal(
  config: Config,
  opts: { createKek?: boolean; pdfScrypt?: ScryptCost; adminScrypt?: ScryptCost; owner?: { uid: number; gid: number } } = {},
): Promise<{ store: KeyStoreSqlite; portal: PortalDb; moved: number }> {
  const store = await openKeyStore(config, opts);
  let portal: PortalDb | undefined;
  try {
    portal = await openPortalDb(portalDbFile(config), opts.owner ? { owner: opts.owner } : {});
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
export function openPublicKeyStore(config: Config): KeyStoreSqlite {
  mkdirSync(dirname(config.keystore.sqlite), { recursive: true, mode: 0o700 });
  return new KeyStoreSqlite(config.keystore.sqlite, NO_KEK);
}
