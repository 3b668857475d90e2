/**
 * The writer of one partial transaction (partial.ts): the body sink smtpd writes a checkpointed
 * DATA into, with mark() at each point the client can resume from and checkpoint() to make the
 * last mark durable. Its commit finishes the entry as IncomingWriter does.
 */
import type { Hash } from 'node:crypto';
import { closeSync } from 'node:fs';
import type { Envelope } from '../core/index.js';
import { closeQuietly, datasyncFd, fdTarget } from './fd.js';
import type { CheckpointRecord, PartialStore } from './partial.js';
import { encodeTrailer } from './record.js';
import type { Spool } from './spool.js';
import { storageError, writeAll } from './write.js';

/** Bytes held before they are written (as IncomingWriter). */
const BATCH = 256 * 1024;

/** The durable point a checkpoint would record: message octets and file bytes that match. */
interface Mark {
  offset: number;
  stored: number;
  hash: Hash;
}

/**
 * The body sink of a checkpointed transaction: write() as IncomingWriter, plus mark() (the bytes
 * so far end at a point the client can resume from) and checkpoint() (make the last mark
 * durable). keep() is what a lost connection does; abort() what a refused message does.
 */
export class PartialWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written: number;
  private failed: unknown = null;
  private done = false;
  private last: Mark | null = null;
  private durable: number;
  private chain: Promise<unknown> = Promise.resolve();

  /** @internal */
  constructor(
    private readonly store: PartialStore,
    private readonly key: string,
    private readonly meta: Pick<CheckpointRecord, 'transid' | 'owner' | 'id' | 'envelope' | 'bodyOffset'>,
    private readonly path: string,
    private readonly fd: number,
    private readonly hash: Hash,
    /** Body bytes in `hash`. */
    private bodyBytes: number,
    offset: number,
    resumedFrom?: CheckpointRecord,
  ) {
    this.written = resumedFrom ? resumedFrom.stored : 0;
    this.durable = offset;
    this.resumed = resumedFrom !== undefined;
  }

  /** True when this continues an earlier, cut transaction. */
  readonly resumed: boolean;

  get id(): string {
    return this.meta.id;
  }

  get envelope(): Envelope {
    return this.meta.envelope;
  }

  /** The client offset of the last checkpoint written: what a 355 reply may announce. */
  get offset(): number {
    return this.durable;
  }

  /** Body bytes received so far (our Received header included, as IncomingWriter.bytes). */
  get bytes(): number {
    return this.bodyBytes;
  }

  get error(): unknown {
    return this.failed;
  }

  /** @internal */
  append(buf: Buffer, body = true): void {
    if (this.failed || buf.length === 0) return;
    if (body) {
      this.hash.update(buf);
      this.bodyBytes += buf.length;
    }
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (this.pendingBytes >= BATCH) this.flush();
  }

  /** Append message bytes (un-dot-stuffed; our Received header first). */
  write(chunk: Buffer): void {
    if (this.done) throw new Error('write after commit/abort');
    this.append(chunk);
  }

  /**
   * Everything written so far is the message up to client octet `offset`, at a point where the
   * client can start again (the protocol layer marks only the start of a line).
   */
  mark(offset: number): void {
    if (this.failed || this.done) return;
    this.last = { offset, stored: this.written + this.pendingBytes, hash: this.hash.copy() };
  }

  private flush(): void {
    const parts = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.failed || parts.length === 0) return;
    for (const p of parts) this.written += p.length;
    // Chained, so a short write's remainder lands before the next batch (as IncomingWriter).
    this.chain = this.chain.then(async () => {
      if (this.failed) return;
      try {
        await writeAll(fdTarget(this.fd), parts);
      } catch (err) {
        this.failed = err;
      }
    });
  }

  /** Wait until the bytes held so far are on the file (back-pressure on slow disks). */
  async drain(): Promise<void> {
    this.flush();
    await this.chain;
  }

  /**
   * Make the last mark durable and record it. Afterwards `offset` is what a resumed transaction
   * starts from. A write error makes the transaction unrecoverable (thrown as a storage error).
   */
  async checkpoint(): Promise<void> {
    const m = this.last;
    if (!m || m.offset <= this.durable || this.done) return;
    await this.drain();
    if (this.failed) throw storageError(this.failed);
    try {
      await datasyncFd(this.fd);
      const record: CheckpointRecord = {
        v: 1,
        ...this.meta,
        offset: m.offset,
        stored: m.stored,
        sha256: m.hash.copy().digest('hex'),
        at: new Date().toISOString(),
      };
      await this.store.writeRecord(this.key, record);
      this.durable = m.offset;
      this.store.noted(this.key, this.meta.owner.address, Date.now());
    } catch (err) {
      this.failed ??= err;
      throw storageError(err);
    }
  }

  /**
   * The connection was lost: record the last mark and keep the files for a resume. Nothing is
   * kept when no octet of the message could be checkpointed. Never throws.
   */
  async keep(): Promise<number> {
    if (this.done) return this.durable;
    try {
      await this.checkpoint();
    } catch {
      /* the earlier checkpoint, if any, still stands */
    }
    this.done = true;
    await this.chain;
    closeQuietly(this.fd);
    if (this.durable === 0) this.store.dropFiles(this.key);
    this.store.release(this.key);
    return this.durable;
  }

  /**
   * The whole message is here: end marker, fdatasync, rename into incoming/ (durable when this
   * resolves), then the checkpoint goes. Throws InsufficientStorageError or SpoolWriteError (the
   * partial transaction is then kept as it was at its last checkpoint).
   */
  async commit(): Promise<string> {
    if (this.done) throw new Error('commit after keep/abort');
    this.append(encodeTrailer(this.bodyBytes, this.hash.copy().digest('hex')), false);
    await this.drain();
    try {
      if (this.failed) throw this.failed;
      await datasyncFd(this.fd);
      this.done = true;
      closeSync(this.fd);
      await this.spool().publish(this.path, 'incoming', this.meta.id);
    } catch (err) {
      if (!this.done) {
        this.done = true;
        closeQuietly(this.fd);
      }
      // Back to the last checkpoint: the trailer and anything after it are cut off on resume.
      if (this.durable === 0) this.store.dropFiles(this.key);
      this.store.release(this.key);
      throw storageError(err);
    }
    this.store.dropFiles(this.key);
    this.store.release(this.key);
    return this.meta.id;
  }

  /** The message was refused: both files go, checkpoint or not. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.chain;
    closeQuietly(this.fd);
    this.store.dropFiles(this.key);
    this.store.release(this.key);
  }

  private spool(): Spool {
    return this.store.spool;
  }
}
