/**
 * Partial transactions of RFC 1845 (CHECKPOINT): a message whose DATA was cut off, kept so the
 * client can resume it with the same TRANSID instead of sending it all again.
 *
 * In spool/partial/, per transaction, two files named by a hash of (client, TRANSID), never by
 * the TRANSID itself (the client chose it):
 *   <key>.msg   a spool entry being written: header, envelope, body so far (no end marker yet)
 *   <key>.ckpt  the last checkpoint: how many bytes of <key>.msg are durable, the SHA-256 of
 *               that much of the body, and the client's octet offset they stand for. Replaced
 *               atomically (written beside, fsynced, renamed, directory fsynced).
 * Bytes past the checkpoint may be torn by a crash: a resume truncates them away. Only the
 * offset of a written checkpoint is ever announced, so it is always durable. The worker never
 * sees partial/; commit() finishes the entry exactly as IncomingWriter does and renames it into
 * incoming/. The files count against the spool file system's free space like any other (smtpd's
 * min_free_space check reads that), and a client keeps at most MAX_PER_CLIENT of them.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, fstatSync, ftruncateSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { newQueueId, type Envelope } from '../core/index.js';
import { closeQuietly, datasyncFd, fdTarget, withFd } from './fd.js';
import { PartialWriter } from './partial-writer.js';
import { decodeHeader, encodeHeader } from './record.js';
import type { Spool } from './spool.js';
import { storageError, writeAll } from './write.js';

/**
 * How long a cut transaction is kept after its last checkpoint. A client retries within minutes
 * (RFC 5321 §4.5.4.1 asks for at least 30 minutes between attempts; Postfix's first retries come
 * after 5 to 67 minutes), so a day covers many attempts while bounding what a client that never
 * comes back can leave on the disk.
 */
export const PARTIAL_LIFETIME_MS = 24 * 3600_000;
/** Cut transactions one client address may leave; a new one beyond this drops its oldest. */
export const MAX_PER_CLIENT = 8;
/** Partial transactions in all: beyond this a new transaction is received without checkpoints. */
export const MAX_PARTIALS = 1000;
const MAGIC = 'POSTERN-PARTIAL/1 ';

/** Who may resume a transaction: the same address, EHLO name and TLS state (RFC 1845: TRANSID with the EHLO name). */
export interface PartialOwner {
  address: string;
  helo: string;
  tls: boolean;
}

/** The durable state of a partial transaction (the .ckpt file). */
export interface CheckpointRecord {
  v: 1;
  transid: string;
  owner: PartialOwner;
  /** Queue id the message will have in incoming/. */
  id: string;
  envelope: Envelope;
  /** Octets of message data (as the client has it, before dot-stuffing) stored up to here. */
  offset: number;
  /** Bytes of the .msg file that are durable (header and body). */
  stored: number;
  /** Where the body starts in the .msg file. */
  bodyOffset: number;
  /** SHA-256 of the body bytes [bodyOffset, stored). */
  sha256: string;
  /** ISO 8601 time of this checkpoint. */
  at: string;
}

export type ResumeResult = { ok: true; writer: PartialWriter } | { ok: false; reason: 'none' | 'busy' | 'expired' | 'corrupt' };

export function partialKey(owner: PartialOwner, transid: string): string {
  // NUL cannot occur in any field (an address, an EHLO name, a TRANSID of printable ASCII).
  const material = ['rfc1845', owner.address, owner.helo.toLowerCase(), owner.tls ? 'tls' : 'plain', transid].join('\0');
  return createHash('sha256').update(material).digest('hex').slice(0, 40);
}

export class PartialStore {
  /** Keys a live session is writing or resuming (one smtpd process owns partial/). */
  private readonly busy = new Set<string>();
  /** What is on disk: key → client address and last checkpoint time (ms). */
  private readonly index = new Map<string, { address: string; at: number }>();

  constructor(
    readonly spool: Spool,
    readonly lifetimeMs = PARTIAL_LIFETIME_MS,
  ) {}

  get dir(): string {
    return this.spool.dir('partial');
  }

  /** Number of partial transactions on disk. */
  get size(): number {
    return this.index.size;
  }

  /**
   * Start-up and periodic clean-up: removes checkpoints past their lifetime, messages without a
   * checkpoint (cut before the first one, or the process died), checkpoints without their
   * message, and unreadable checkpoints. Rebuilds the index. Returns the number of files removed.
   */
  async sweep(now = Date.now()): Promise<number> {
    // readdir, not spool.list: the dot-files are replacement checkpoints a crash left unrenamed.
    const names = await readdir(this.dir);
    const has = new Set(names);
    let removed = 0;
    const drop = (name: string): void => {
      rmSync(join(this.dir, name), { force: true });
      removed++;
    };
    for (const name of names) {
      const m = /^\.?([0-9a-f]{40})\.(msg|ckpt)$/.exec(name);
      if (m && this.busy.has(m[1]!)) continue;
      if (!m || name.startsWith('.')) {
        drop(name);
        continue;
      }
      const key = m[1]!;
      if (m[2] === 'msg') {
        if (!has.has(`${key}.ckpt`)) drop(name);
        continue;
      }
      const rec = this.readRecord(key);
      const msgAlive = has.has(`${key}.msg`);
      if (!rec || !msgAlive || now - rec.mtime > this.lifetimeMs) {
        this.index.delete(key);
        drop(name);
        if (msgAlive) {
          drop(`${key}.msg`);
          has.delete(`${key}.msg`);
        }
        continue;
      }
      this.index.set(key, { address: rec.record.owner.address, at: rec.mtime });
    }
    return removed;
  }

  /**
   * A new checkpointed transaction. Returns null when too many partial transactions are kept
   * (the message is then received the ordinary way, without checkpoints) or when the key is busy.
   */
  begin(owner: PartialOwner, transid: string, envelope: Envelope): PartialWriter | null {
    const key = partialKey(owner, transid);
    if (this.busy.has(key)) return null;
    this.dropFiles(key);
    this.limitClient(owner.address);
    if (this.index.size >= MAX_PARTIALS) return null;
    const id = newQueueId();
    const path = join(this.dir, `${key}.msg`);
    let fd: number;
    try {
      fd = openSync(path, 'w', 0o600);
    } catch (err) {
      throw storageError(err);
    }
    const header = encodeHeader({ id, envelope });
    this.busy.add(key);
    const w = new PartialWriter(this, key, { transid, owner, id, envelope, bodyOffset: header.length }, path, fd, createHash('sha256'), 0, 0);
    w.append(header, false);
    return w;
  }

  /**
   * What a MAIL FROM with this TRANSID would resume, without opening it (the body is checked
   * when DATA resumes it): the stored envelope and the offset of its checkpoint.
   */
  peek(owner: PartialOwner, transid: string, now = Date.now()): { ok: true; record: CheckpointRecord } | { ok: false; reason: 'none' | 'busy' | 'expired' } {
    const key = partialKey(owner, transid);
    if (this.busy.has(key)) return { ok: false, reason: 'busy' };
    const rec = this.readRecord(key);
    if (!rec || !sameOwner(rec.record, owner, transid)) return { ok: false, reason: 'none' };
    if (now - rec.mtime > this.lifetimeMs) {
      this.dropFiles(key);
      return { ok: false, reason: 'expired' };
    }
    return { ok: true, record: rec.record };
  }

  /**
   * The partial transaction of (owner, TRANSID), opened to be continued from its checkpoint:
   * the file is cut back to the durable length and the body checked against the checkpoint's
   * SHA-256. Anything unusable is removed (the client then sends the message again).
   */
  resume(owner: PartialOwner, transid: string, now = Date.now()): ResumeResult {
    const key = partialKey(owner, transid);
    if (this.busy.has(key)) return { ok: false, reason: 'busy' };
    const rec = this.readRecord(key);
    if (!rec) {
      this.dropFiles(key);
      return { ok: false, reason: 'none' };
    }
    const r = rec.record;
    if (!sameOwner(r, owner, transid)) return { ok: false, reason: 'none' };
    if (now - rec.mtime > this.lifetimeMs) {
      this.dropFiles(key);
      return { ok: false, reason: 'expired' };
    }
    const path = join(this.dir, `${key}.msg`);
    let fd: number;
    try {
      // O_APPEND: fdTarget writes at the file position, and the rest goes after the checkpoint.
      fd = openSync(path, constants.O_RDWR | constants.O_APPEND);
    } catch {
      this.dropFiles(key);
      return { ok: false, reason: 'corrupt' };
    }
    try {
      const hash = checkPrefix(fd, path, r);
      if (!hash) throw new Error('does not match its checkpoint');
      // Bytes after the checkpoint were never confirmed to anyone: the client sends them again.
      ftruncateSync(fd, r.stored);
      this.busy.add(key);
      return { ok: true, writer: new PartialWriter(this, key, r, path, fd, hash, r.stored - r.bodyOffset, r.offset, r) };
    } catch {
      closeQuietly(fd);
      this.dropFiles(key);
      return { ok: false, reason: 'corrupt' };
    }
  }

  /** @internal */
  release(key: string): void {
    this.busy.delete(key);
  }

  /** @internal */
  noted(key: string, address: string, at: number | null): void {
    if (at === null) this.index.delete(key);
    else this.index.set(key, { address, at });
  }

  /** @internal remove both files of `key` (not fsynced: a leftover is swept). */
  dropFiles(key: string): void {
    rmSync(join(this.dir, `${key}.ckpt`), { force: true });
    rmSync(join(this.dir, `${key}.msg`), { force: true });
    this.index.delete(key);
  }

  /** @internal write the checkpoint record of `key` atomically. */
  async writeRecord(key: string, record: CheckpointRecord): Promise<void> {
    const json = JSON.stringify(record);
    const text = `${MAGIC}${json}\n${createHash('sha256').update(json).digest('hex')}\n`;
    const tmp = join(this.dir, `.${key}.ckpt`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      await writeAll(fdTarget(fd), [Buffer.from(text, 'utf8')]);
      await datasyncFd(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.dir, `${key}.ckpt`));
    await this.spool.syncDir('partial');
  }

  private readRecord(key: string): { record: CheckpointRecord; mtime: number } | null {
    const path = join(this.dir, `${key}.ckpt`);
    try {
      const mtime = statSync(path).mtimeMs;
      const text = withFd(path, 'r', (fd) => {
        const buf = Buffer.alloc(Math.min(fstatSync(fd).size, 1 << 20));
        return buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0));
      });
      const m = /^POSTERN-PARTIAL\/1 (.*)\n([0-9a-f]{64})\n$/s.exec(text);
      if (!m || createHash('sha256').update(m[1]!).digest('hex') !== m[2]) return null;
      const record = JSON.parse(m[1]!) as CheckpointRecord;
      if (record?.v !== 1 || typeof record.transid !== 'string' || !record.owner || !record.envelope || !Number.isSafeInteger(record.stored) || !Number.isSafeInteger(record.offset)) return null;
      return { record, mtime };
    } catch {
      return null;
    }
  }

  /** Keep a client under MAX_PER_CLIENT: its oldest partial transactions go first. */
  private limitClient(address: string): void {
    const mine = [...this.index].filter(([k, v]) => v.address === address && !this.busy.has(k)).sort((a, b) => a[1].at - b[1].at);
    while (mine.length >= MAX_PER_CLIENT) this.dropFiles(mine.shift()![0]);
  }
}

/** The file name is a hash of the key material, but the record says whose it is: checked all the same. */
function sameOwner(r: CheckpointRecord, owner: PartialOwner, transid: string): boolean {
  return r.transid === transid && r.owner.address === owner.address && r.owner.helo.toLowerCase() === owner.helo.toLowerCase() && r.owner.tls === owner.tls;
}

/**
 * Re-read the durable prefix of a partial message: its header must be ours and its body must hash
 * to the checkpoint's SHA-256. Returns the body hash, ready to take the rest of the body.
 */
function checkPrefix(fd: number, path: string, r: CheckpointRecord): Hash | null {
  if (fstatSync(fd).size < r.stored || r.bodyOffset > r.stored) return null;
  const head = Buffer.alloc(r.bodyOffset);
  if (readSync(fd, head, 0, head.length, 0) !== head.length) return null;
  const h = decodeHeader(path, head);
  if (!h || h.bodyOffset !== r.bodyOffset || h.meta.id !== r.id) return null;
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let at = r.bodyOffset; at < r.stored; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, r.stored - at), at);
    if (n <= 0) return null;
    hash.update(buf.subarray(0, n));
    at += n;
  }
  return hash.copy().digest('hex') === r.sha256 ? hash : null;
}
