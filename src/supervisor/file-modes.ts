/**
 * File modes of what `postern start` keeps on disk. data_dir holds the spool (plaintext mail),
 * the keystore and usually the KEK: it is created 0700, and at every start a looser one is
 * tightened and the change logged, so an install made with a careless umask (or by an older
 * Postern, which left postern.db 0644) is repaired rather than left open.
 *
 * - data_dir: others lose every permission and the group loses write (0755 becomes 0750); group
 *   read is left to the admin (a backup group, say): nothing below it is readable by the group.
 * - spool directories: 0700.
 * - the database and its -wal/-shm/-journal: 0600.
 * The KEK files are not touched here: kek/ refuses to start with a KEK file others could read,
 * since such a key must be considered leaked (the admin decides; see `postern kek rotate`).
 */
import { chmod, lstat, mkdir, stat } from 'node:fs/promises';
import type { Logger } from '../log/index.js';

export interface PrivatePaths {
  dataDir: string;
  /** Directories that must be 0700 (missing ones are skipped). */
  privateDirs: string[];
  /** Files that must be 0600 (missing ones are skipped). */
  privateFiles: string[];
}

/** Mode bits taken away: from data_dir, from private directories, from private files. */
const DATA_DIR_MASK = 0o027;
const PRIVATE_MASK = 0o077;

/** Create data_dir 0700 when missing; tighten the paths that exist. Throws when a chmod fails. */
export async function securePaths(paths: PrivatePaths, log: Logger): Promise<void> {
  // recursive: mode applies to every directory created, parents included.
  await mkdir(paths.dataDir, { recursive: true, mode: 0o700 });
  // data_dir may well be a link to the disk the admin chose: its target is meant.
  await tighten(paths.dataDir, DATA_DIR_MASK, log, true);
  for (const dir of paths.privateDirs) await tighten(dir, PRIVATE_MASK, log, false);
  for (const file of paths.privateFiles) await tighten(file, PRIVATE_MASK, log, false);
}

async function tighten(path: string, mask: number, log: Logger, followLink: boolean): Promise<void> {
  let mode: number;
  try {
    // lstat: a symbolic link has no mode of its own; chmod would change its target, which
    // may be anything (and the admin's business).
    const st = followLink ? await stat(path) : await lstat(path);
    if (st.isSymbolicLink()) return;
    mode = st.mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if ((mode & mask) === 0) return;
  const to = mode & ~mask;
  await chmod(path, to);
  log.warn({ event: 'supervisor.mode_tightened', path, from: octal(mode), to: octal(to) }, `${path}: mode ${octal(mode)} was too open, now ${octal(to)}`);
}

const octal = (m: number): string => m.toString(8).padStart(4, '0');
