/**
 * The queue directories of DESIGN.md §1 and the only code that creates, moves or removes spool
 * files. Every file is written to tmp/, fsynced, renamed into place, and its directory fsynced
 * (grouped across concurrent callers) before the caller is told it is durable.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, ftruncateSync, openSync, renameSync, rmSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptEntryError, derivedQueueId, newQueueId, type Envelope, type HoldNotes, type OutgoingNotes } from '../core/index.js';
import { DirSyncer } from './dirsync.js';
import { closeInPool, closeQuietly, datasyncFd, fdTarget, readAllFd, unlinkInPool, withFd } from './fd.js';
import { reclaimClaims } from './reclaim.js';
import { IncomingWriter } from './incoming.js';
import {
  decodeEntry,
  decodeHeader,
  decodeStatusFromTail,
  encodeEntry,
  encodeStatus,
  type DecodedEntry,
  type EntryMeta,
  type StatusRecord,
} from './record.js';
import { freeSpace, storageError, writeAll } from './write.js';
import { readRanged, STREAM_THRESHOLD, withLazyBody, writeStreamedEntry, type BodyRange } from './stream.js';

/** `partial`: cut transactions kept for an RFC 1845 resume (partial.ts); never read by the worker. */
export const QUEUES = ['tmp', 'incoming', 'active', 'outgoing', 'delivering', 'deferred', 'hold', 'corrupt', 'partial'] as const;
export type QueueName = (typeof QUEUES)[number];

/** An entry claimed by this process from incoming/ into active/. */
export interface ClaimedEntry extends DecodedEntry {
  id: string;
  /** Path under active/. */
  path: string;
  /**
   * Where the body is in the file, for an entry above STREAM_THRESHOLD: its `body` is then read
   * only when something asks for it (the large-message path streams from here instead).
   */
  range?: BodyRange;
}

/** One output of the worker: the (possibly transformed) message for a group of recipients. */
export interface OutgoingDraft {
  envelope: Envelope;
  body: Buffer;
  /** What the relay must know about this entry (core/notes.ts). */
  notes?: OutgoingNotes;
  /**
   * What this output is (the worker's treatment: "deliver:<plan key>", "copy", "reject", a notice).
   * With the recipients it names the file, so a re-run that decides otherwise replaces outputs
   * instead of adding to them.
   */
  key?: string;
}

/**
 * Output names: "<id>.<12 hex>" from (what the output is, its recipients). Deterministic, so a
 * re-run of the same decision rewrites the same files; content-named, so a re-run that decides
 * differently (a key found meanwhile, a policy reload) writes other names, and the old ones are
 * removed before the input is — the relay never sees a stale copy beside the new one.
 */
export function outputNames(id: string, drafts: readonly Pick<OutgoingDraft, 'envelope' | 'key'>[]): string[] {
  const seen = new Set<string>();
  return drafts.map((d, n) => {
    const what = `${d.key ?? `draft:${n}`}\0${d.envelope.recipients.map((r) => r.address).sort().join('\0')}`;
    let name = `${id}.${createHash('sha256').update(what).digest('hex').slice(0, 12)}`;
    // Two outputs of one message with the same key and recipients would be a worker bug; both kept.
    for (let k = 1; seen.has(name); k++) name = `${name.slice(0, id.length + 13)}-${k}`;
    seen.add(name);
    return name;
  });
}

/**
 * An output written from a stream (the large-message path): `chunks` is called once, when the
 * file is written, and yields the message bytes in order. An error it throws aborts the commit.
 */
export interface StreamedDraft {
  envelope: Envelope;
  chunks: () => AsyncIterable<Buffer>;
  notes?: Record<string, unknown>;
  /** As OutgoingDraft.key: with the recipients it names the file. */
  key?: string;
}

/**
 * Recipients the worker cannot serve now (policy: hold, or encryption that cannot be done): kept
 * in hold/ in the pre-worker form ("<id>", no group), so `queue release` sends them through the
 * worker — and the policy — again, never straight to the relay.
 */
export interface HeldDraft {
  envelope: Envelope;
  body: Buffer;
  reason: string;
  /** Which held outcome this is (core/outcomes.ts), when the worker knows. */
  heldAs?: HoldNotes['heldAs'];
}

export interface QueueEntryInfo {
  /** File name in its queue: the queue id, or "<id>.<group>" in outgoing/deferred/hold. */
  name: string;
  id: string;
  queue: QueueName;
  size: number;
  mtime: Date;
  meta?: EntryMeta;
  /** The relay's status records (outgoing, deferred and hold entries; with `inspect(…, true)`). */
  status?: StatusRecord[];
  /** Why the header could not be read (corrupt/ entries, races). */
  error?: string;
}

/**
 * An entry opened by the relay for one delivery attempt. Status records are appended through the
 * open descriptor, so they land in the same file even if an admin moves it (hold, flush) meanwhile.
 */
export interface OpenEntry extends DecodedEntry {
  name: string;
  queue: QueueName;
  /** Where the body is in the file, for an entry above STREAM_THRESHOLD (its `body` is then loaded on first use). */
  range?: BodyRange;
  /** Append status records and make them durable before resolving. */
  append(records: readonly StatusRecord[]): Promise<void>;
  close(): Promise<void>;
}

export class Spool {
  readonly root: string;
  private readonly syncers = new Map<QueueName, DirSyncer>();
  /** This process's mark on the entries it claims (active/, delivering/) and its tmp/ files. */
  readonly tag: string;

  private constructor(root: string) {
    this.root = root;
    // tmp/ names carry the pid so the supervisor can clear a dead process's leftovers.
    this.tag = String(process.pid);
    for (const q of QUEUES) this.syncers.set(q, new DirSyncer(join(root, q)));
  }

  /** Open (and create when missing) the spool under `dataDir/spool`. */
  static async open(dataDir: string): Promise<Spool> {
    const root = join(dataDir, 'spool');
    for (const q of QUEUES) await mkdir(join(root, q), { recursive: true, mode: 0o700 });
    return new Spool(root);
  }

  dir(q: QueueName): string {
    return join(this.root, q);
  }

  /** @internal fsync a queue directory (grouped across concurrent callers). */
  syncDir(q: QueueName): Promise<void> {
    return this.syncers.get(q)!.sync();
  }

  /** tmp/ names: unique in this process by the counter, across a reused pid by the nonce. */
  private readonly tmpNonce = randomBytes(4).toString('hex');
  private tmpCount = 0;

  private tmpName(): string {
    return join(this.dir('tmp'), `${this.tag}.${this.tmpNonce}${(this.tmpCount++).toString(36)}`);
  }

  // ---- smtpd: accepting a message ------------------------------------------------------------

  /**
   * Start writing a new message. The body is streamed to tmp/ as it arrives; `commit` makes it
   * durable in incoming/ and returns only then, `abort` throws it away.
   */
  async createIncoming(envelope: Envelope): Promise<IncomingWriter> {
    const id = newQueueId();
    const path = this.tmpName();
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      throw storageError(err);
    }
    return new IncomingWriter(this, id, envelope, path, fd);
  }

  /** Bytes free for us on the spool's file system (smtpd's min_free_space check). */
  freeSpace(): Promise<number> {
    return freeSpace(this.root);
  }

  /** @internal used by IncomingWriter */
  async publish(tmpPath: string, q: QueueName, name: string): Promise<void> {
    renameSync(tmpPath, join(this.dir(q), name));
    await this.syncDir(q);
  }

  // ---- worker: claim, transform, hand to the relay -------------------------------------------

  async list(q: QueueName): Promise<string[]> {
    const names = await readdir(this.dir(q));
    return names.filter((n) => !n.startsWith('.')).sort();
  }

  /**
   * Claim one incoming entry by atomic rename into active/<id>.<pid>; null when another worker
   * won the race. Unreadable entries go to corrupt/ and null is returned.
   */
  async claim(id: string): Promise<ClaimedEntry | null> {
    const path = join(this.dir('active'), `${id}.${this.tag}`);
    try {
      renameSync(join(this.dir('incoming'), id), path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      // Small entries: open, size, one read, close — synchronously (fd.ts).
      const small = withFd(path, 'r', (fd) => {
        const { size } = fstatSync(fd);
        return size > STREAM_THRESHOLD ? null : readAllFd(fd, path, size);
      });
      if (!small) {
        const r = await readRanged(path);
        return withLazyBody({ id, path, meta: r.meta, status: r.status }, r.range) as ClaimedEntry;
      }
      const decoded = decodeEntry(path, small);
      return { id, path, ...decoded };
    } catch (err) {
      if (err instanceof CorruptEntryError) {
        await this.moveToCorrupt(path, id, err.message);
        return null;
      }
      throw err;
    }
  }

  /**
   * Write every output of a claimed message to outgoing/ as "<id>.<n>" (deterministic, so a
   * re-run after a crash replaces rather than duplicates), make them durable, and only then
   * remove the claimed input. When any output cannot be written (a full disk) nothing of this
   * call stays behind and the input is kept: the error is InsufficientStorageError or
   * SpoolWriteError, both temporary.
   */
  async commitOutgoing(entry: ClaimedEntry, drafts: readonly (OutgoingDraft | StreamedDraft)[], held: HeldDraft[] = []): Promise<string[]> {
    const names: string[] = [];
    const placed: string[] = [];
    const put = async (q: QueueName, name: string, meta: EntryMeta, body: Buffer | StreamedDraft['chunks']) => {
      if (Buffer.isBuffer(body)) await this.place(q, name, encodeEntry(meta, body));
      else await this.placeStreamed(q, name, meta, body());
      placed.push(join(this.dir(q), name));
    };
    // Held parts get ids derived from the message and their recipients: a re-run after a crash
    // replaces them rather than holding a second copy.
    const holding = held.map((h) => {
      const id = derivedQueueId(entry.id, `hold\0${h.envelope.recipients.map((r) => r.address).sort().join('\0')}`);
      return put('hold', id, { id, envelope: h.envelope, notes: { holdReason: h.reason, ...(h.heldAs ? { heldAs: h.heldAs } : {}), heldFrom: entry.id } }, h.body);
    });
    names.push(...outputNames(entry.id, drafts));
    const pending = drafts.map((d, n) => put('outgoing', names[n]!, { id: entry.id, envelope: d.envelope, group: n, notes: d.notes }, 'chunks' in d ? d.chunks : d.body));
    try {
      const failed = (await Promise.allSettled([...pending, ...holding])).find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      await this.syncDir('outgoing');
      if (held.length) await this.syncDir('hold');
    } catch (err) {
      // The retry writes every output again under the same names. Outputs left from this attempt
      // would only take space a full disk needs (the relay does not touch entries of a message
      // that is still in active/).
      for (const p of placed) await rm(p, { force: true }).catch(() => undefined);
      throw storageError(err);
    }
    // Outputs of an earlier run of this message that this run did not write again (it decided
    // otherwise) go before the input does: while the input is in active/ the relay leaves them
    // alone, and once the input is gone nothing could tell them from current ones.
    // Only an entry reclaimed from a dead worker (a crash mark) can have such outputs: a failed
    // run removes its own (above), so the common case costs no listing of outgoing/.
    if (entry.status?.some((r) => r.t === 'crash')) {
      const current = new Set(names);
      for (const n of await this.list('outgoing')) {
        if (n.startsWith(`${entry.id}.`) && !current.has(n)) await rm(join(this.dir('outgoing'), n), { force: true });
      }
    }
    // No directory fsync after the unlink: a process crash cannot undo it, and after a power
    // failure the input may come back and be processed again — a possible duplicate, never a
    // loss (Postfix makes the same trade: one fsync per stage that creates data).
    await unlinkInPool(entry.path);
    return names;
  }

  /** Put a claimed entry back into incoming/ (shutdown with work in hand). */
  async release(entry: ClaimedEntry): Promise<void> {
    // Not fsynced: if the rename is lost, recover() moves active/ back to incoming/ anyway.
    renameSync(entry.path, join(this.dir('incoming'), entry.id));
  }

  /** Ids of messages currently claimed by some worker (the relay waits for those). */
  async activeIds(): Promise<Set<string>> {
    const names = await this.list('active');
    return new Set(names.map((n) => n.slice(0, n.indexOf('.') < 0 ? n.length : n.indexOf('.'))));
  }

  // ---- relay -----------------------------------------------------------------------------------

  async read(q: QueueName, name: string): Promise<DecodedEntry> {
    const path = join(this.dir(q), name);
    return decodeEntry(path, withFd(path, 'r', (fd) => readAllFd(fd, path)));
  }

  /**
   * Open an entry for a delivery attempt. Throws ENOENT when it is gone (delivered, moved by an
   * admin) and CorruptEntryError when it cannot be trusted. Never creates a file.
   * `checkBody: false`: a large entry's SHA-256 is checked while it is sent (stream.ts rangeSource).
   */
  async openEntry(q: QueueName, name: string, opts: { checkBody?: boolean } = {}): Promise<OpenEntry> {
    const path = join(this.dir(q), name);
    // A descriptor and synchronous calls (fd.ts): one open, one fstat and one read for a small entry.
    const fd = openSync(path, constants.O_RDWR | constants.O_APPEND);
    let open = true;
    try {
      const { size } = fstatSync(fd);
      let decoded: DecodedEntry;
      if (size > STREAM_THRESHOLD) {
        const r = await readRanged(path, undefined, opts);
        decoded = withLazyBody({ meta: r.meta, status: r.status }, r.range) as DecodedEntry;
      } else decoded = decodeEntry(path, readAllFd(fd, path, size));
      // Built on `decoded` itself, not a copy: a spread would load a lazy body.
      const handle: Pick<OpenEntry, 'name' | 'queue' | 'append' | 'close'> = {
        name,
        queue: q,
        async append(records) {
          if (!records.length) return;
          const buf = encodeStatus(records);
          // The end as it is now: an admin's hold record may have been appended since the open.
          const end = fstatSync(fd).size;
          try {
            await writeAll(fdTarget(fd), [buf]);
            await datasyncFd(fd);
          } catch (err) {
            // Cut off the torn record so the next append starts on a clean line (the reader
            // skips torn records anyway; this also gives the bytes back to a full disk).
            try {
              ftruncateSync(fd, end);
            } catch {
              /* the reader skips it */
            }
            throw storageError(err);
          }
          decoded.status.push(...records);
        },
        close: async () => {
          if (!open) return;
          open = false;
          await closeInPool(fd);
        },
      };
      return Object.assign(decoded, handle);
    } catch (err) {
      open = false;
      closeQuietly(fd);
      throw err;
    }
  }

  /**
   * A message the relay itself creates (a delivery status notification): written straight to
   * outgoing/ as "<id>.0". A deterministic `id` makes a repeat after a crash replace the first
   * copy instead of queueing a second one.
   */
  async inject(id: string, draft: OutgoingDraft): Promise<string> {
    const name = `${id}.0`;
    const meta: EntryMeta = { id, envelope: draft.envelope, group: 0, notes: draft.notes };
    try {
      await this.place('outgoing', name, encodeEntry(meta, draft.body));
      await this.syncDir('outgoing');
    } catch (err) {
      throw storageError(err);
    }
    return name;
  }

  /**
   * Write a complete file durably under tmp/ and rename it to `q/name` (the caller fsyncs the
   * directory). On failure the tmp file is gone and nothing is in `q`.
   */
  private async place(q: QueueName, name: string, parts: Buffer[]): Promise<void> {
    const tmp = this.tmpName();
    try {
      await writeDurably(tmp, parts);
      renameSync(tmp, join(this.dir(q), name));
    } catch (err) {
      rmQuietly(tmp);
      throw err;
    }
  }

  /** As place(), with the body streamed from `chunks` (the large-message path). */
  private async placeStreamed(q: QueueName, name: string, meta: EntryMeta, chunks: AsyncIterable<Buffer>): Promise<void> {
    const tmp = this.tmpName();
    try {
      await writeStreamedEntry(tmp, meta, chunks);
      renameSync(tmp, join(this.dir(q), name));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** The status records of an entry, read from its end only (no body check): for listings. */
  async readStatus(q: QueueName, name: string): Promise<StatusRecord[]> {
    const path = join(this.dir(q), name);
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      for (let want = 64 * 1024; ; want *= 4) {
        const len = Math.min(size, want);
        const buf = Buffer.alloc(len);
        await fh.read(buf, 0, len, size - len);
        const status = decodeStatusFromTail(path, buf);
        if (status) return status;
        if (len === size) throw new CorruptEntryError(path, 'end marker missing (truncated write?)');
      }
    } finally {
      await fh.close();
    }
  }

  /** Delivered (or bounced): remove the entry for good. */
  async remove(q: QueueName, name: string): Promise<void> {
    // Not fsynced, as in commitOutgoing: at worst a power failure brings a delivered entry back.
    await unlinkInPool(join(this.dir(q), name));
  }

  async move(from: QueueName, to: QueueName, name: string): Promise<void> {
    renameSync(join(this.dir(from), name), join(this.dir(to), name));
    await this.syncDir(to);
    await this.syncDir(from);
  }

  /**
   * Keep a damaged entry for the admin, with the reason beside it. Never deleted. The move comes
   * first and needs no space; on a full disk the reason may be missing (the error says so), the
   * entry never is.
   */
  async moveToCorrupt(path: string, name: string, reason: string): Promise<void> {
    renameSync(path, join(this.dir('corrupt'), name));
    try {
      await this.place('corrupt', `${name}.reason`, [Buffer.from(reason + '\n', 'utf8')]);
    } finally {
      await this.syncDir('corrupt');
    }
  }

  // ---- start-up and crash recovery -----------------------------------------------------------

  /**
   * Called by the supervisor before any role runs: clear tmp/, and put every active/ entry back
   * into incoming/ (its worker is gone; its outputs, if any, are rewritten under the same names)
   * and every delivering/ entry back into outgoing/ (see reclaim.ts).
   */
  async recover(): Promise<{ reclaimed: number; tmpRemoved: number }> {
    const tmp = await this.list('tmp');
    for (const n of tmp) await rm(join(this.dir('tmp'), n), { force: true });
    const reclaimed = await this.reclaim(() => true);
    return { reclaimed, tmpRemoved: tmp.length };
  }

  /** Reclaim the active/ and delivering/ entries of a process that died (by pid), and its tmp/ leftovers. */
  async reclaimFor(pid: number): Promise<number> {
    const suffix = `.${pid}`;
    for (const n of await this.list('tmp')) {
      if (n.startsWith(`${pid}.`)) await rm(join(this.dir('tmp'), n), { force: true });
    }
    return this.reclaim((n) => n.endsWith(suffix));
  }

  private reclaim(match: (name: string) => boolean): Promise<number> {
    return reclaimClaims(this, match);
  }

  // ---- administration ---------------------------------------------------------------------------

  /**
   * Entries of the given queues with their envelope (header only; bodies are not read), and with
   * `withStatus` their status records (the relay's, holds, crash marks).
   */
  async inspect(
    queues: readonly QueueName[] = ['incoming', 'active', 'outgoing', 'delivering', 'deferred', 'hold', 'corrupt'],
    withStatus = false,
    /** Only the entries this accepts are read (a show of one message need not read the whole queue). */
    wanted: (q: QueueName, name: string) => boolean = () => true,
  ): Promise<QueueEntryInfo[]> {
    const out: QueueEntryInfo[] = [];
    for (const q of queues) {
      for (const name of await this.list(q)) {
        if (q === 'corrupt' && name.endsWith('.reason')) continue;
        if (!wanted(q, name)) continue;
        const path = join(this.dir(q), name);
        const info: QueueEntryInfo = { name, id: name.split('.')[0]!, queue: q, size: 0, mtime: new Date(0) };
        try {
          const st = await stat(path);
          info.size = st.size;
          info.mtime = st.mtime;
          info.meta = await readHeader(path);
          if (withStatus && q !== 'corrupt') info.status = await this.readStatus(q, name);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // moved on meanwhile
          info.error = err instanceof Error ? err.message : String(err);
          if (q === 'corrupt') {
            info.error = (await readFile(`${path}.reason`, 'utf8').catch(() => info.error ?? '')).trim();
          }
        }
        out.push(info);
      }
    }
    return out;
  }
}

async function readHeader(path: string): Promise<EntryMeta> {
  const fh = await open(path, 'r');
  try {
    let size = 16 * 1024;
    for (;;) {
      const buf = Buffer.alloc(size);
      const { bytesRead } = await fh.read(buf, 0, size, 0);
      const h = decodeHeader(path, buf.subarray(0, bytesRead));
      if (h) return h.meta;
      if (bytesRead < size) throw new CorruptEntryError(path, 'truncated envelope record');
      size *= 4;
    }
  } finally {
    await fh.close();
  }
}

/** Create `path` with all of `parts`, fsynced; on any failure the file is removed. */
async function writeDurably(path: string, parts: Buffer[]): Promise<void> {
  const fd = openSync(path, 'wx', 0o600);
  try {
    await writeAll(fdTarget(fd), parts);
    await datasyncFd(fd);
  } catch (err) {
    closeQuietly(fd);
    rmQuietly(path);
    throw err;
  }
  closeSync(fd);
}

function rmQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    /* tmp/ leftovers are cleared by recover() */
  }
}
