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
 *
 * Started as root, smtpd and the portal run as the unprivileged account (`user:`). Nothing below
 * data_dir is that account's own: it could otherwise rename or replace what root's roles write.
 * - data_dir and spool/ are root's and the account's group's, which may only pass through them
 *   (g+x; data_dir 0710, or 0750 where the admin gave the group read; spool/ 0710);
 * - spool/tmp and spool/incoming, where smtpd writes, are root's and the group's, group-writable
 *   and sticky (tmp 1730: create, not list; incoming 1770: smtpd fsyncs it): the account renames
 *   and removes only its own files, never the worker's or relay's (their tmp/ files hold
 *   decrypted mail and verdicts on its way to outgoing/; incoming/ holds DSNs and released mail);
 * - everything else stays root's; a private file or directory the account owns (a `chown -R`
 *   done by habit) is given back to root. Each change is logged (`supervisor.owner_changed`,
 *   `supervisor.group_access`).
 */
import { chmod, chown, lstat, mkdir, stat } from 'node:fs/promises';
import type { Logger } from '../log/index.js';

export interface PrivatePaths {
  dataDir: string;
  /** Directories that must be 0700 (missing ones are skipped). */
  privateDirs: string[];
  /** Files that must be 0600 (missing ones are skipped). */
  privateFiles: string[];
  /** Roles run as this account (the supervisor is root): what its group must reach. */
  unprivileged?: {
    uid: number;
    gid: number;
    /** Directories it passes through (spool/): 0710. data_dir is one too. */
    passDirs: string[];
    /** Directories it writes, with their exact mode (sticky, group-writable): spool/tmp, spool/incoming. */
    writeDirs: { path: string; mode: number }[];
  };
}

/** Mode bits taken away: from data_dir, from private directories, from private files. */
const DATA_DIR_MASK = 0o027;
const PRIVATE_MASK = 0o077;
/** Taken from a pass-through directory: all of others', the group's read and write. */
const PASS_MASK = 0o067;

/** Create data_dir 0700 when missing; tighten the paths that exist. Throws when a chmod fails. */
export async function securePaths(paths: PrivatePaths, log: Logger): Promise<void> {
  // recursive: mode applies to every directory created, parents included.
  await mkdir(paths.dataDir, { recursive: true, mode: 0o700 });
  // data_dir may well be a link to the disk the admin chose: its target is meant.
  await tighten(paths.dataDir, DATA_DIR_MASK, log, true);
  for (const dir of paths.privateDirs) await tighten(dir, PRIVATE_MASK, log, false);
  for (const file of paths.privateFiles) await tighten(file, PRIVATE_MASK, log, false);
  const u = paths.unprivileged;
  if (!u) return;
  const root = process.getuid?.() ?? 0;
  // Root's before anything is opened up to the group.
  for (const p of [...paths.privateDirs, ...paths.privateFiles]) await giveBack(p, u.uid, root, log);
  await own(paths.dataDir, root, u.gid, log, true);
  await grant(paths.dataDir, (m) => m | 0o010, log, true);
  for (const dir of u.passDirs) {
    await tighten(dir, PASS_MASK, log, false);
    await own(dir, root, u.gid, log, false);
    await grant(dir, (m) => m | 0o010, log, false);
  }
  for (const { path, mode } of u.writeDirs) {
    // What the exact mode does not give is taken first (and logged as tightened), then given.
    await tighten(path, ~mode & 0o777, log, false);
    await own(path, root, u.gid, log, false);
    await grant(path, () => mode, log, false);
  }
}

async function own(path: string, uid: number, gid: number, log: Logger, followLink: boolean): Promise<void> {
  const st = await (followLink ? stat(path) : lstat(path)).catch(() => null);
  if (!st || st.isSymbolicLink() || (st.uid === uid && st.gid === gid)) return;
  await chown(path, uid, gid);
  log.warn({ event: 'supervisor.owner_changed', path, from: `${st.uid}:${st.gid}`, to: `${uid}:${gid}` }, `${path}: owner ${st.uid}:${st.gid}, now ${uid}:${gid}`);
}

/** A private path the account owns goes back to root (its group stays: the mode keeps it out). */
async function giveBack(path: string, uid: number, root: number, log: Logger): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (!st || st.isSymbolicLink() || st.uid !== uid) return;
  await own(path, root, st.gid, log, false);
}

/** Set the mode `to(mode)` gives, for the unprivileged roles' group; logged when it changes. */
async function grant(path: string, to: (mode: number) => number, log: Logger, followLink: boolean): Promise<void> {
  const st = await (followLink ? stat(path) : lstat(path)).catch(() => null);
  if (!st || st.isSymbolicLink()) return;
  const from = st.mode & 0o7777;
  const next = to(from);
  if (next === from) return;
  await chmod(path, next);
  log.info({ event: 'supervisor.group_access', path, from: octal(from), to: octal(next) }, `${path}: mode ${octal(from)}, now ${octal(next)} for the unprivileged roles' group`);
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
