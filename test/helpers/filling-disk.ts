/**
 * A file system that fills up, at the system-call boundary: every FileHandle.writev and
 * fs.writevSync of the test process (the spool writes small files synchronously, spool/fd.ts)
 * stores at most `chunk` bytes per call (a short write, no error: what libuv reports when write(2)
 * stops half way) and fails with ENOSPC once `budget` bytes are spent. Installed on the FileHandle
 * prototype and the fs module object, so the code under test opens its files as usual; vitest
 * runs each test file in its own worker, so no other file sees it. Undo with vi.restoreAllMocks().
 */
import fs from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { vi } from 'vitest';

export interface FillingDisk {
  /** Bytes still taken; Infinity: no limit. */
  budget: number;
  /** Largest write that completes at once. */
  chunk: number;
  /** writev calls so far. */
  calls: number;
}

export const enospc = (): NodeJS.ErrnoException => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });

/** The first `n` bytes of `bufs` (sharing memory). */
export function take(bufs: readonly Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (n <= 0) break;
    out.push(b.subarray(0, n));
    n -= Math.min(n, b.length);
  }
  return out;
}

/** `dir`: any writable directory (a probe file is opened there to reach the prototype). */
export async function fillingDisk(dir: string): Promise<FillingDisk> {
  const disk: FillingDisk = { budget: Infinity, chunk: Infinity, calls: 0 };
  const probe = await open(join(dir, '.probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { writev: FileHandle['writev'] };
  await probe.close();
  await rm(join(dir, '.probe'));
  const real = proto.writev;
  vi.spyOn(proto, 'writev').mockImplementation(async function (this: FileHandle, bufs: readonly NodeJS.ArrayBufferView[]) {
    disk.calls++;
    const total = bufs.reduce((a, b) => a + b.byteLength, 0);
    const allow = Math.min(total, disk.chunk, disk.budget);
    if (allow <= 0 && total > 0) throw enospc();
    disk.budget -= allow; // taken before the await: concurrent writes share the budget
    const r = await real.call(this, take(bufs as Buffer[], allow));
    disk.budget += allow - r.bytesWritten;
    return { bytesWritten: r.bytesWritten, buffers: bufs as NodeJS.ArrayBufferView[] };
  });
  const realSync = fs.writevSync;
  vi.spyOn(fs, 'writevSync').mockImplementation((fd: number, bufs: readonly NodeJS.ArrayBufferView[], position?: number | null) => {
    disk.calls++;
    const total = bufs.reduce((a, b) => a + b.byteLength, 0);
    const allow = Math.min(total, disk.chunk, disk.budget);
    if (allow <= 0 && total > 0) throw enospc();
    const n = position == null ? realSync(fd, take(bufs as Buffer[], allow)) : realSync(fd, take(bufs as Buffer[], allow), position);
    disk.budget -= n;
    return n;
  });
  return disk;
}
