/**
 * Checked spool writes (issue 14, fault 3). The file handle is made to behave like a file system
 * that fills up: short writes (fewer bytes than asked, no error — what libuv reports when write(2)
 * stops half way) and ENOSPC once a byte budget is spent. Every spool path must then either store
 * the whole file or nothing, and never lose its input.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InsufficientStorageError, SpoolWriteError, newQueueId, type Envelope } from '../../../src/core/index.js';
import { IncomingWriter, Spool, isNoSpace, outputNames, storageError, writeAll, type ClaimedEntry, type WriteTarget } from '../../../src/spool/index.js';
import { decodeEntry } from '../../../src/spool/record.js';
import { tempDir } from '../../helpers/config.js';
import { enospc, fillingDisk, take, type FillingDisk } from '../../helpers/filling-disk.js';

const envelope = (rcpts = ['bob@example.com']): Envelope => ({
  sender: 'alice@example.org',
  recipients: rcpts.map((address) => ({ address })),
  client: { address: '127.0.0.1', port: 1234, helo: 'client', hostname: '[127.0.0.1]', protocol: 'ESMTP', trusted: true },
  receivedAt: new Date().toISOString(),
});

/** A body with no repeating pattern, so a lost or doubled slice cannot go unnoticed. */
const bodyOf = (n: number, seed = 1): Buffer => {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = 0x20 + ((x >>> 16) % 95);
  }
  return b;
};

describe('writeAll with a fake handle', () => {
  /** Stores at most `chunk` bytes per call; after `budget` bytes every call fails with ENOSPC. */
  function fake(chunk: number, budget = Infinity): WriteTarget & { data: Buffer[]; calls: number } {
    const t = {
      data: [] as Buffer[],
      calls: 0,
      async writev(bufs: Buffer[]) {
        t.calls++;
        const left = budget - Buffer.concat(t.data).length;
        if (left <= 0) throw enospc();
        const part = Buffer.concat(take(bufs, Math.min(chunk, left)));
        t.data.push(Buffer.from(part));
        return { bytesWritten: part.length };
      },
    };
    return t;
  }

  it('writes the rest after every short write, across buffer boundaries, in order', async () => {
    const parts = [Buffer.from('header\n'), bodyOf(10_000), Buffer.alloc(0), Buffer.from('\ntrailer\n')];
    const fh = fake(997);
    expect(await writeAll(fh, parts)).toBe(10_016);
    expect(Buffer.concat(fh.data).equals(Buffer.concat(parts))).toBe(true);
    expect(fh.calls).toBe(Math.ceil(10_016 / 997));
  });

  it('fails with the error of the write that could not go on (ENOSPC mid-way)', async () => {
    const fh = fake(4096, 5000);
    const err = await writeAll(fh, [bodyOf(20_000)]).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(Buffer.concat(fh.data).length).toBe(5000);
  });

  it('refuses a write that makes no progress instead of looping', async () => {
    const stuck: WriteTarget = { writev: async () => ({ bytesWritten: 0 }) };
    await expect(writeAll(stuck, [Buffer.from('x')])).rejects.toMatchObject({ code: 'EIO' });
  });

  it('maps no-space errors to 452 4.3.1 and other I/O errors to 451 4.3.0', () => {
    for (const code of ['ENOSPC', 'EDQUOT']) {
      const e = storageError(Object.assign(new Error(code), { code }));
      expect(e).toBeInstanceOf(InsufficientStorageError);
      expect(e.smtpLine).toBe('452 4.3.1 insufficient system storage');
      expect(isNoSpace(e)).toBe(true);
    }
    const eio = storageError(Object.assign(new Error('EIO'), { code: 'EIO' }));
    expect(eio).toBeInstanceOf(SpoolWriteError);
    expect(eio.smtpLine).toBe('451 4.3.0 local error in processing; try again later');
    expect(isNoSpace(eio)).toBe(false);
    expect(isNoSpace(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }))).toBe(true);
  });
});

describe('spool on a file system that fills up', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let spool: Spool;
  let disk: FillingDisk;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-write-'));
    spool = await Spool.open(dir);
    disk = await fillingDisk(dir);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await cleanup();
  });

  const files = async (q: Parameters<Spool['dir']>[0]) => readdir(spool.dir(q));

  async function receive(body: Buffer): Promise<{ writer: IncomingWriter; commit: Promise<string> }> {
    const writer = await spool.createIncoming(envelope());
    for (let i = 0; i < body.length; i += 8192) writer.write(body.subarray(i, i + 8192));
    return { writer, commit: writer.commit() };
  }

  async function claimOne(body: Buffer): Promise<ClaimedEntry> {
    const { commit } = await receive(body);
    return (await spool.claim(await commit))!;
  }

  it('short writes everywhere: every file is whole (incoming, outgoing, hold, status, notices)', async () => {
    disk.chunk = 1000;
    const body = bodyOf(50_000);
    const entry = await claimOne(body);
    expect(entry.body.equals(body)).toBe(true);
    const names = await spool.commitOutgoing(
      entry,
      [{ envelope: envelope(['a@example.com']), body: bodyOf(30_001, 2) }, { envelope: envelope(['b@example.com']), body: bodyOf(7, 3) }],
      [{ envelope: envelope(['c@example.com']), body: bodyOf(20_000, 4), reason: 'no key' }],
    );
    expect((await spool.read('outgoing', names[0]!)).body.equals(bodyOf(30_001, 2))).toBe(true);
    expect((await spool.read('outgoing', names[1]!)).body.equals(bodyOf(7, 3))).toBe(true);
    const [held] = await files('hold');
    expect((await spool.read('hold', held!)).body.equals(bodyOf(20_000, 4))).toBe(true);

    const open1 = await spool.openEntry('outgoing', names[0]!);
    const rec = { t: 'rcpt' as const, at: new Date().toISOString(), rcpt: 'a@example.com', status: 'deferred' as const, reply: '451 4.4.1 ' + 'x'.repeat(3000) };
    await open1.append([rec, rec]);
    await open1.close();
    expect(await spool.readStatus('outgoing', names[0]!)).toEqual([rec, rec]);

    const dsn = await spool.inject(newQueueId(), { envelope: envelope(), body: bodyOf(12_345, 5) });
    expect((await spool.read('outgoing', dsn)).body.equals(bodyOf(12_345, 5))).toBe(true);
    // The loop did the work: far more system calls than files.
    expect(disk.calls).toBeGreaterThan(100);
  });

  it('smtpd: ENOSPC in the middle of DATA gives 452 4.3.1 and removes the partial file at once', async () => {
    disk.budget = 20_000;
    const { writer, commit } = await receive(bodyOf(200_000));
    const err = await commit.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsufficientStorageError);
    expect((err as InsufficientStorageError).smtpLine).toBe('452 4.3.1 insufficient system storage');
    expect(isNoSpace(writer.error)).toBe(true);
    expect(await files('tmp')).toEqual([]);
    expect(await files('incoming')).toEqual([]);

    // The space is given back when the write fails, not when the client finishes sending.
    disk.budget = 10_000;
    const w = await spool.createIncoming(envelope());
    w.write(bodyOf(50_000));
    await w.drain();
    expect(w.error).toBeTruthy();
    expect(await files('tmp')).toEqual([]);
    w.write(bodyOf(50_000)); // the rest of the message still arrives; nothing is stored
    await expect(w.commit()).rejects.toBeInstanceOf(InsufficientStorageError);

    disk.budget = Infinity;
    const ok = await receive(bodyOf(200_000));
    expect(decodeEntry('x', await readFile(join(spool.dir('incoming'), await ok.commit))).body.length).toBe(200_000);
  });

  it('worker: a full disk while writing outputs keeps the input and leaves no output behind', async () => {
    const entry = await claimOne(bodyOf(10_000));
    const drafts = [1, 2, 3].map((n) => ({ envelope: envelope([`r${n}@example.com`]), body: bodyOf(40_000, n) }));
    const held = [{ envelope: envelope(['h@example.com']), body: bodyOf(40_000, 9), reason: 'hold' }];
    disk.budget = 100_000; // room for two of the four files
    const err = await spool.commitOutgoing(entry, drafts, held).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsufficientStorageError);
    expect(await files('outgoing')).toEqual([]);
    expect(await files('hold')).toEqual([]);
    expect(await files('tmp')).toEqual([]);
    expect(decodeEntry(entry.path, await readFile(entry.path)).body.equals(bodyOf(10_000))).toBe(true);

    // Space back: the same call succeeds, under the same names, and only then is the input gone.
    disk.budget = Infinity;
    expect(await spool.commitOutgoing(entry, drafts, held)).toEqual(outputNames(entry.id, drafts));
    expect(await files('outgoing')).toHaveLength(3);
    expect(await files('hold')).toHaveLength(1);
    await expect(stat(entry.path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('relay: a status append that does not fit fails and leaves the entry as it was', async () => {
    const entry = await claimOne(bodyOf(5000));
    const [name] = await spool.commitOutgoing(entry, [{ envelope: envelope(), body: entry.body }]);
    const rec = (reply: string) => ({ t: 'rcpt' as const, at: new Date().toISOString(), rcpt: 'bob@example.com', status: 'deferred' as const, reply });
    const e = await spool.openEntry('outgoing', name!);
    await e.append([rec('451 first')]);
    const size = (await stat(join(spool.dir('outgoing'), name!))).size;
    disk.budget = 40; // part of the next record
    await expect(e.append([rec('451 second ' + 'y'.repeat(200))])).rejects.toBeInstanceOf(InsufficientStorageError);
    expect((await stat(join(spool.dir('outgoing'), name!))).size).toBe(size);
    expect(e.status.map((s) => (s.t === 'rcpt' ? s.reply : ''))).toEqual(['451 first']);
    disk.budget = Infinity;
    await e.append([rec('451 third')]);
    await e.close();
    const back = await spool.read('outgoing', name!);
    expect(back.body.equals(bodyOf(5000))).toBe(true);
    expect(back.status.map((s) => (s.t === 'rcpt' ? s.reply : ''))).toEqual(['451 first', '451 third']);
  });

  it('relay: a notice that does not fit is not queued, and nothing is left in tmp/', async () => {
    disk.budget = 1000;
    await expect(spool.inject(newQueueId(), { envelope: envelope(), body: bodyOf(5000) })).rejects.toBeInstanceOf(InsufficientStorageError);
    expect(await files('outgoing')).toEqual([]);
    expect(await files('tmp')).toEqual([]);
  });

  it('a damaged entry is moved to corrupt/ even when its reason cannot be written', async () => {
    const entry = await claimOne(bodyOf(100));
    disk.budget = 0;
    await expect(spool.moveToCorrupt(entry.path, entry.id, 'checksum mismatch')).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(await files('corrupt')).toEqual([entry.id]);
    expect(await files('tmp')).toEqual([]);
  });
});
