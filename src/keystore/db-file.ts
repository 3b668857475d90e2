/**
 * The database file is private to its owner: it holds sealed private keys, PDF password
 * verifiers and the audit log. SQLite creates a new database 0644 (less the umask), and its
 * -wal, -shm and -journal files with the mode of the database file, so creating the database
 * file 0600 ourselves, before SQLite opens it, makes all of them 0600.
 */
import { closeSync, openSync } from 'node:fs';

/** The database and the files SQLite keeps beside it. */
export function databaseFiles(file: string): string[] {
  return [file, `${file}-wal`, `${file}-shm`, `${file}-journal`];
}

/**
 * Create `file` empty and 0600 unless it exists (an empty file is an empty SQLite database).
 * An existing file keeps its mode: `postern start` tightens and logs (supervisor/file-modes.ts).
 */
export function createPrivateDatabaseFile(file: string): void {
  // SQLite's special names are not files.
  if (file === ':memory:' || file === '' || file.startsWith('file:')) return;
  // 'a': O_CREAT without O_TRUNC or O_EXCL, so it never harms a database another process opened.
  closeSync(openSync(file, 'a', 0o600));
}
