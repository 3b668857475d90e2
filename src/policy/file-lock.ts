/**
 * One writer of the policy file across processes: the admin role and `postern policy activate`
 * may activate at the same moment, and each must see the other's file before it compares hashes
 * and renames. The lock is a file created exclusively beside the policy file, holding the
 * holder's pid; a lock whose holder died (a crash, a kill -9) is taken over.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export class PolicyLockedError extends Error {
  override readonly name = 'PolicyLockedError';
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Run `fn` holding the lock of `file`; waits up to `waitMs` for another holder. */
export async function withFileLock<T>(file: string, fn: () => Promise<T>, waitMs = 10_000): Promise<T> {
  const lock = join(dirname(file), `.${basename(file)}.lock`);
  const until = Date.now() + waitMs;
  for (;;) {
    const fh = await open(lock, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return null;
      throw err;
    });
    if (fh) {
      try {
        await fh.writeFile(String(process.pid));
      } finally {
        await fh.close();
      }
      break;
    }
    const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
    // A holder that died leaves its lock: removed, then raced for again like a free one. (An empty
    // file is a holder between its create and its write: waited for like a live one.)
    if (Number.isInteger(holder) && holder > 0 && !alive(holder)) await rm(lock, { force: true });
    else if (Date.now() >= until) throw new PolicyLockedError(`another activation of ${file} is running (process ${holder || 'unknown'}); try again`);
    else await sleep(50);
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}
