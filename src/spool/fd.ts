/**
 * The spool's small-file operations on plain descriptors, done synchronously — all but fsync.
 *
 * Why: every fs/promises call is a round trip through libuv's thread pool (a FileHandle object, a
 * futex wake-up, on a busy machine a context switch each way), and the profile of a 4 KB message
 * showed those round trips costing several times the system calls they carry: opening, writing,
 * renaming, closing or removing a small file on a local disk takes microseconds, less than the
 * trip. Postfix's daemons make the same calls synchronously. fsync and fdatasync stay in the pool:
 * they wait for the disk, and smtpd must go on serving other sessions meanwhile. The spool is
 * meant to be on a local disk (as Postfix's queue is); on a slow network file system these calls
 * would stall the event loop for their duration.
 */
import fs, { close, closeSync, fdatasync, fstatSync, fsync, openSync, readSync, unlink } from 'node:fs';
import { CorruptEntryError } from '../core/index.js';
import type { WriteTarget } from './write.js';

/**
 * writeAll's target for a descriptor (a short write is returned as such: writeAll goes on).
 * Called through the module object, so the full-disk tests can stand in for write(2)
 * (test/helpers/filling-disk.ts).
 */
export function fdTarget(fd: number): WriteTarget {
  return { writev: async (buffers) => ({ bytesWritten: fs.writevSync(fd, buffers) }) };
}

/** fdatasync in the thread pool. */
export function datasyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/** fsync in the thread pool (directories: fdatasync does not cover their entries everywhere). */
export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/**
 * Removing a spool file frees its blocks (on the unlink, or on the last close of an open file),
 * which on ext4 is journal work that may wait for another process's commit: these two stay in
 * the thread pool, where a wait does not stall the event loop.
 */
export function unlinkInPool(path: string): Promise<void> {
  return new Promise((resolve, reject) => unlink(path, (err) => (err ? reject(err) : resolve())));
}

/** As unlinkInPool, for the last close of a file already removed. */
export function closeInPool(fd: number): Promise<void> {
  return new Promise((resolve, reject) => close(fd, (err) => (err ? reject(err) : resolve())));
}

/** Close, ignoring a second close or a descriptor already gone (clean-up after a failure). */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}

/** The whole content of the open file `fd` (`size`: what the caller's fstat found, else taken now). */
export function readAllFd(fd: number, path: string, size = fstatSync(fd).size): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  while (at < size) {
    const n = readSync(fd, buf, at, size - at, at);
    if (n <= 0) throw new CorruptEntryError(path, 'file shorter than its size (changed while in use?)');
    at += n;
  }
  return buf;
}

/** Open `path` with `flags`, run `f` on the descriptor, close it whatever happens. */
export function withFd<T>(path: string, flags: string | number, f: (fd: number) => T): T {
  const fd = openSync(path, flags);
  try {
    return f(fd);
  } finally {
    closeSync(fd);
  }
}
