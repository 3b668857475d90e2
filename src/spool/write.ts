/**
 * Checked writes. A write(2) may store fewer bytes than asked (a file system that fills up half
 * way), and libuv's write loop then reports the short count without the error that stopped it,
 * so a caller that ignores bytesWritten publishes a truncated file. Every spool write goes through
 * writeAll, which writes the rest until all is on the file or the system call fails; the failure
 * is then a typed error with the SMTP reply the client or the admin should see.
 */
import { statfsSync } from 'node:fs';
import { InsufficientStorageError, PosternError, SpoolWriteError } from '../core/index.js';

/** The part of a FileHandle that writeAll needs (tests pass a fake that writes short or fails). */
export interface WriteTarget {
  writev(buffers: Buffer[]): Promise<{ bytesWritten: number }>;
}

/**
 * Codes that mean "no room": errno (a quota counts, the admin's fix is the same) and SQLite's own
 * (the keystore on a full disk: the worker waits for space rather than counting a failure).
 */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);

/** Write every byte of `parts` at the current file position (or the end, with O_APPEND). */
export async function writeAll(fh: WriteTarget, parts: readonly Buffer[]): Promise<number> {
  let rest = parts.filter((p) => p.length > 0);
  let total = 0;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest);
    // A write that stores nothing and reports no error would loop for ever; no real file system
    // does that, but a device or FUSE driver might.
    if (!(bytesWritten > 0)) throw Object.assign(new Error('write stored no bytes'), { code: 'EIO' });
    total += bytesWritten;
    rest = skip(rest, bytesWritten);
  }
  return total;
}

/** `parts` without their first `n` bytes (sharing memory, no copies). */
function skip(parts: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < parts.length && n >= parts[i]!.length) n -= parts[i++]!.length;
  if (i === parts.length) return [];
  return n > 0 ? [parts[i]!.subarray(n), ...parts.slice(i + 1)] : parts.slice(i);
}

export function isNoSpace(err: unknown): boolean {
  if (err instanceof InsufficientStorageError) return true;
  return NO_SPACE.has((err as NodeJS.ErrnoException | null)?.code ?? '');
}

/** The typed error for a failed spool write: 452 4.3.1 when the disk is full, 451 4.3.0 otherwise. */
export function storageError(err: unknown): PosternError {
  if (err instanceof PosternError) return err;
  return isNoSpace(err) ? new InsufficientStorageError(err) : new SpoolWriteError(err);
}

/** Bytes an unprivileged process may still write on the file system that holds `dir`. */
export async function freeSpace(dir: string): Promise<number> {
  // bavail, not bfree: the blocks reserved for root do not count (Postfix's fsspace does the same).
  // Synchronous: asked once per message, and a thread-pool trip costs more than the call (fd.ts).
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}
