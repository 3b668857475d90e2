/**
 * Small files of key material (kek.key, kek.salt): created once, atomically and exclusively,
 * and read back only after checking they are what we wrote.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { link, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { KekError } from './types.js';

function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

function describe(e: unknown): string {
  const code = errCode(e);
  return code ?? (e instanceof Error ? e.message : String(e));
}

/**
 * Write `data` to `path` with mode 0600 unless `path` already exists; returns false if it did.
 *
 * The bytes go to a private temporary file first (O_EXCL, 0600, fsync), so `path` is never seen
 * half-written. It is then hard-linked into place rather than renamed: link() fails when the
 * target exists, so when several roles start at once and race to create the KEK, exactly one
 * wins and the others read the winner's key instead of silently replacing it (rename would
 * overwrite, and the loser would go on wrapping keys under a KEK that is no longer on disk).
 */
export async function createExclusive(path: string, data: Buffer): Promise<boolean> {
  const dir = dirname(path);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new KekError(`cannot create directory ${dir} for ${path}: ${describe(e)}`);
  }
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    let created: boolean;
    try {
      await link(tmp, path);
      created = true;
    } catch (e) {
      const code = errCode(e);
      if (code === 'EEXIST') {
        created = false;
      } else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EOPNOTSUPP') {
        // A filesystem without hard links: fall back to check-then-rename (a narrow race).
        created = !(await exists(path));
        if (created) await rename(tmp, path);
      } else {
        throw e;
      }
    }
    if (created) await syncDir(dir);
    return created;
  } catch (e) {
    if (e instanceof KekError) throw e;
    throw new KekError(`cannot create ${path}: ${describe(e)}`);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Make the new directory entry durable; some platforms cannot fsync a directory (ignored). */
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, fsc.O_RDONLY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort */
  }
}

export interface ReadOptions {
  /** What the file is, for messages ("KEK file", "KEK salt file"). */
  what: string;
  /** Refuse unless the file is exactly this long. */
  exactSize?: number;
  /** Refuse files above this size (default 64 KiB) before reading them. */
  maxSize?: number;
  /** Refuse when group or others have any access (key material). */
  privateMode?: boolean;
}

/**
 * Read a small file after checking, on the open descriptor (no window between check and read),
 * that it is a regular file of the expected size and, for key material, private to its owner.
 * Returns null when the file does not exist.
 */
export async function readCheckedFile(path: string, opts: ReadOptions): Promise<Buffer | null> {
  let fh;
  try {
    fh = await open(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return null;
    throw new KekError(`cannot open ${opts.what} ${path}: ${describe(e)}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new KekError(`${opts.what} ${path} is not a regular file`);
    const mode = st.mode & 0o777;
    if (opts.privateMode && (mode & 0o077) !== 0) {
      throw new KekError(
        `${opts.what} ${path} has mode ${mode.toString(8).padStart(4, '0')}, which lets group or others ` +
          `read or change it; it must be private to its owner: run chmod 600 ${path}`,
      );
    }
    if (opts.exactSize !== undefined && st.size !== opts.exactSize) {
      throw new KekError(`${opts.what} ${path} is ${st.size} bytes, expected exactly ${opts.exactSize}`);
    }
    const max = opts.maxSize ?? 65536;
    if (st.size > max) throw new KekError(`${opts.what} ${path} is ${st.size} bytes, more than ${max}`);
    const buf = Buffer.alloc(st.size);
    const { bytesRead } = await fh.read(buf, 0, st.size, 0);
    if (bytesRead !== st.size) {
      buf.fill(0);
      throw new KekError(`${opts.what} ${path} changed while it was read`);
    }
    return buf;
  } catch (e) {
    if (e instanceof KekError) throw e;
    throw new KekError(`cannot read ${opts.what} ${path}: ${describe(e)}`);
  } finally {
    await fh.close();
  }
}
