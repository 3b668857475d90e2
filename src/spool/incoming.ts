/**
 * A message being received. smtpd writes DATA chunks as they arrive so a 50 MB message never sits
 * in memory; nothing is visible to workers until commit() has fsynced file and directory.
 *
 * Writes are gathered until BATCH bytes (or the commit) and then made in one synchronous writev
 * (fd.ts says why synchronous): a 4 KB message costs one write, a large one a write per BATCH.
 */
import { closeSync, rmSync } from 'node:fs';
import type { Envelope } from '../core/index.js';
import { closeQuietly, datasyncFd, fdTarget } from './fd.js';
import { BodyDigest, encodeHeader } from './record.js';
import type { Spool } from './spool.js';
import { storageError, writeAll } from './write.js';

/** Bytes held before they are written (bounded memory per session, few system calls). */
const BATCH = 256 * 1024;

export class IncomingWriter {
  private readonly digest = new BodyDigest();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The last write, still settling (writeAll is async only in form: its writev is synchronous). */
  private chain: Promise<unknown> = Promise.resolve();
  private failed: unknown = null;
  private done = false;
  private open = true;

  constructor(
    private readonly spool: Spool,
    readonly id: string,
    envelope: Envelope,
    private readonly path: string,
    private readonly fd: number,
  ) {
    this.hold(encodeHeader({ id, envelope }));
  }

  get bytes(): number {
    return this.digest.length;
  }

  /** The first write error, once one happened (the rest of the message is not stored). */
  get error(): unknown {
    return this.failed;
  }

  private hold(buf: Buffer): void {
    if (this.failed || buf.length === 0) return;
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (this.pendingBytes >= BATCH) this.flush();
  }

  private flush(): void {
    const parts = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.failed || parts.length === 0) return;
    this.chain = this.chain.then(async () => {
      if (this.failed) return;
      try {
        await writeAll(fdTarget(this.fd), parts);
      } catch (err) {
        this.failed = err;
        // Give the space back at once: on a full disk other clients' messages need it, and this
        // one can only be refused now, however much of it is still to come.
        this.discard();
      }
    });
  }

  private discard(): void {
    this.pending = [];
    this.pendingBytes = 0;
    if (this.open) {
      this.open = false;
      closeQuietly(this.fd);
    }
    try {
      rmSync(this.path, { force: true });
    } catch {
      /* the supervisor clears tmp/ of a dead process; a live one retries nothing here */
    }
  }

  /** Append message bytes (already un-dot-stuffed). */
  write(chunk: Buffer): void {
    if (this.done) throw new Error('write after commit/abort');
    this.digest.update(chunk);
    this.hold(chunk);
  }

  /** Wait until the bytes held so far are on the file (for back-pressure on slow disks). */
  drain(): Promise<unknown> {
    this.flush();
    return this.chain;
  }

  /**
   * Durable in incoming/ when this resolves. Otherwise the tmp file is removed and it throws
   * InsufficientStorageError (452 4.3.1: the disk is full) or SpoolWriteError (451 4.3.0).
   */
  async commit(): Promise<string> {
    this.done = true;
    this.hold(this.digest.trailer());
    this.flush();
    await this.chain;
    try {
      if (this.failed) throw this.failed;
      await datasyncFd(this.fd);
      this.open = false;
      closeSync(this.fd);
      await this.spool.publish(this.path, 'incoming', this.id);
      return this.id;
    } catch (err) {
      this.discard();
      throw storageError(err);
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.chain;
    this.discard();
  }
}
