/**
 * Group commit of directory fsyncs. A rename into a spool directory is durable only after the
 * directory itself is fsynced; with many concurrent messages one fsync covers every rename that
 * happened before it started, so callers that arrive while one is running share the next one.
 * Durability is never traded: a caller's promise resolves only after an fsync that began after
 * its rename.
 */
import { closeSync, openSync } from 'node:fs';
import { fsyncFd } from './fd.js';

export class DirSyncer {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(readonly dir: string) {}

  sync(): Promise<void> {
    if (!this.running) {
      this.running = this.fsyncOnce().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    // An fsync is in flight but may have started before our rename: join the next round.
    if (!this.next) {
      this.next = this.running
        .catch(() => undefined)
        .then(() => {
          this.next = null;
          return this.sync();
        });
    }
    return this.next;
  }

  protected async fsyncOnce(): Promise<void> {
    const fd = openSync(this.dir, 'r');
    try {
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
  }
}
