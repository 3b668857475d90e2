/**
 * Replacing a file so that readers (the gateway reloading the policy, an editor, a crash at any
 * moment) see either the old content or the new, whole: a temporary file in the same directory,
 * fsynced, renamed over the old one, and the directory fsynced so the rename itself survives a
 * power cut.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface DurableWriteOptions {
  /** Mode of a new file; a replaced file keeps its own mode and owner (an admin's chmod stays). */
  mode?: number;
  /** Create the directory with this mode when it is missing. */
  dirMode?: number;
}

export async function writeFileDurably(file: string, bytes: Buffer, opts: DurableWriteOptions = {}): Promise<void> {
  const dir = dirname(file);
  if (opts.dirMode !== undefined) await mkdir(dir, { recursive: true, mode: opts.dirMode });
  const old = await stat(file).catch(() => null);
  // Hidden and unique: the gateway's watcher of the policy directory looks for the policy's own name only.
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', old ? old.mode & 0o7777 : (opts.mode ?? 0o600));
  try {
    if (old) {
      await fh.chmod(old.mode & 0o7777);
      // Only root may give a file away; anyone else writes files of their own (as the old one was).
      if (process.getuid?.() === 0) await fh.chown(old.uid, old.gid);
    }
    await fh.writeFile(bytes);
    await fh.sync();
    await fh.close();
    await rename(tmp, file);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
