/**
 * keystore/backup: `postern backup` and `postern restore` — the keystore, portal.db, the KEK file
 * or salt and the config files in one passphrase-encrypted file (format.ts), made online from
 * SQLite snapshots (backup.ts), restored all or nothing (restore.ts), checked without restoring
 * (verify.ts). Beside the keystore's index rather than in it: restore opens the restored keystore
 * through that index.
 *
 * Untrusted input: a backup file being restored (authenticated chunk by chunk before use; its
 * manifest's names checked). Secrets: the backup passphrase (from the environment), the KEK file
 * and every sealed key pass through; none is logged or put in a message.
 */
export { BackupError, BACKUP_SCRYPT, checkPassphrase, MIN_PASSPHRASE_LENGTH, type BackupHeader } from './format.js';
export { makeBackup, type BackupOptions, type BackupSummary } from './backup.js';
export { restoreBackup, type RestoreOptions, type RestoreSummary } from './restore.js';
export { verifyBackup, type VerifySummary } from './verify.js';
export type { Manifest, ManifestEntry, ManifestKek } from './contents.js';
