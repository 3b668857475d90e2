/**
 * A message being received. smtpd writes DATA chunks as they arrive so a 50 MB message never sits
 * in memory; nothing is visible to workers until commit() has fsynced file and directory.
 */
import { rm, type FileHandle } from 'node:fs/promises';
import type { Envelope } from '../core/index.js';
import { BodyDigest, encodeHeader } from './record.js';
import type { Spool } from './spool.js';
import { storageError, writeAll } from './write.js';

export class IncomingWriter {
  private readonly digest = new BodyDigest();
  private chain: Promise<unknown>;
  private failed: unknown = null;
  private done = false;

  constructor(
    private readonly spool: Spool,
    readonly id: string,
    envelope: Envelope,
    private readonly path: string,
    private readonly fh: FileHandle,
  ) {
    this.chain = Promise.resolve();
    this.enqueue(encodeHeader({ id, envelope }));
  }

  get bytes(): number {
    return this.digest.length;
  }

  /** The first write error, once one happened (the rest of the message is not stored). */
  get error(): unknown {
    return this.failed;
  }

  private enqueue(buf: Buffer): void {
    this.chain = this.chain.then(async () => {
      if (this.failed) return;
      try {
        await writeAll(this.fh, [buf]);
      } catch (err) {
        this.failed = err;
        // Give the space back at once: on a full disk other clients' messages need it, and this
        // one can only be refused now, however much of it is still to come.
        await this.discard();
      }
    });
  }

  private async discard(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await rm(this.path, { force: true }).catch(() => undefined);
  }

  /** Append message bytes (already un-dot-stuffed). */
  write(chunk: Buffer): void {
    if (this.done) throw new Error('write after commit/abort');
    this.digest.update(chunk);
    this.enqueue(chunk);
  }

  /** Wait until the queued writes are on the file (for back-pressure on slow disks). */
  drain(): Promise<unknown> {
    return this.chain;
  }

  /**
   * Durable in incoming/ when this resolves. Otherwise the tmp file is removed and it throws
   * InsufficientStorageError (452 4.3.1: the disk is full) or SpoolWriteError (451 4.3.0).
   */
  async commit(): Promise<string> {
    this.done = true;
    this.enqueue(this.digest.trailer());
    await this.chain;
    try {
      if (this.failed) throw this.failed;
      await this.fh.datasync();
      await this.fh.close();
      await this.spool.publish(this.path, 'incoming', this.id);
      return this.id;
    } catch (err) {
      await this.discard();
      throw storageError(err);
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.chain;
    await this.discard();
  }
}
