/**
 * What the client sent and we have not read yet, as raw bytes. The connection reads command lines
 * from it (with a hard length limit), and message content in chunks (DATA) or in exact counts
 * (BDAT): the same buffer serves all three, so bytes pipelined behind a command are never lost or
 * read twice, and a STARTTLS can throw away exactly what arrived before the handshake.
 *
 * Memory is bounded: past HIGH_WATER unread bytes the socket is paused (TCP pushes back on the
 * client) until the connection has read them.
 */
import type { Duplex } from 'node:stream';

const LF = 0x0a;
const CR = 0x0d;
const HIGH_WATER = 256 * 1024;

/** A command line longer than the caller's limit: it was read to its end and thrown away. */
export const TOO_LONG = Symbol('line too long');

export class ClientInput {
  private chunks: Buffer[] = [];
  private size = 0;
  private source: Duplex | null = null;
  private ended = false;
  private wake: (() => void) | null = null;
  private paused = false;
  private readonly onData = (d: Buffer) => this.push(d);
  private readonly onEnd = () => this.end();

  /** The input ended and everything was read: no read will return data again. */
  get finished(): boolean {
    return this.ended && this.size === 0;
  }

  /** Bytes received and not read yet. */
  get buffered(): number {
    return this.size;
  }

  /** Read from `socket` from now on (the TCP socket, then the TLS socket after STARTTLS). */
  attach(socket: Duplex): void {
    this.detach();
    this.source = socket;
    this.ended = false;
    socket.on('data', this.onData);
    socket.once('end', this.onEnd);
    socket.once('close', this.onEnd);
  }

  /** Stop reading from the current socket (hang-up, or the socket is handed to TLS). */
  detach(): void {
    const s = this.source;
    if (!s) return;
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.off('close', this.onEnd);
    this.source = null;
    if (this.paused) {
      this.paused = false;
      s.resume();
    }
  }

  /** Forget every unread byte (STARTTLS: plaintext sent before the handshake must not count). */
  discard(): void {
    this.chunks = [];
    this.size = 0;
    this.resumeIfLow();
  }

  /** No more input will come: wakes a pending read, which then reports the end. */
  end(): void {
    this.ended = true;
    this.notify();
  }

  private push(d: Buffer): void {
    if (!d.length) return;
    this.chunks.push(d);
    this.size += d.length;
    if (this.size > HIGH_WATER && this.source && !this.paused) {
      this.paused = true;
      this.source.pause();
    }
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private resumeIfLow(): void {
    if (this.paused && this.size <= HIGH_WATER / 2 && this.source) {
      this.paused = false;
      this.source.resume();
    }
  }

  /** Resolves when more input arrived or the input ended (the caller looks again). */
  private more(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => (this.wake = resolve));
  }

  /** True when a whole line is already buffered (the client pipelined it). */
  hasLine(): boolean {
    return this.chunks.some((c) => c.includes(LF));
  }

  /**
   * The next line without its line ending (CRLF, or a bare LF as many servers accept in
   * commands), TOO_LONG when it exceeds `max` octets with its line ending (consumed to its end), null at end of input.
   * `beforeWait` runs each time the read is about to wait for the client (to flush replies).
   */
  async line(max: number, beforeWait: () => void): Promise<Buffer | typeof TOO_LONG | null> {
    let skipping = false;
    for (;;) {
      const at = this.indexOfLf();
      if (at >= 0) {
        const raw = this.take(at + 1);
        if (skipping || raw.length > max) return TOO_LONG;
        const end = raw.length >= 2 && raw[raw.length - 2] === CR ? raw.length - 2 : raw.length - 1;
        return raw.subarray(0, end);
      }
      if (this.size > max) {
        // Keep nothing of an over-long line: its end is all we are waiting for.
        this.discard();
        skipping = true;
      }
      if (this.ended) return null;
      beforeWait();
      await this.more();
    }
  }

  /** Up to `max` bytes (at least one), or null at end of input. */
  async some(max: number, beforeWait: () => void): Promise<Buffer | null> {
    while (this.size === 0) {
      if (this.ended) return null;
      beforeWait();
      await this.more();
    }
    return this.take(Math.min(max, this.size));
  }

  /** Give back bytes read too far (they are read again first). */
  unread(b: Buffer): void {
    if (!b.length) return;
    this.chunks.unshift(b);
    this.size += b.length;
  }

  private indexOfLf(): number {
    let offset = 0;
    for (const c of this.chunks) {
      const i = c.indexOf(LF);
      if (i >= 0) return offset + i;
      offset += c.length;
    }
    return -1;
  }

  private take(n: number): Buffer {
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const parts: Buffer[] = [];
      let left = n;
      while (left > 0) {
        const c = this.chunks[0]!;
        if (c.length <= left) {
          parts.push(c);
          this.chunks.shift();
          left -= c.length;
        } else {
          parts.push(c.subarray(0, left));
          this.chunks[0] = c.subarray(left);
          left = 0;
        }
      }
      out = Buffer.concat(parts, n);
    }
    this.size -= n;
    this.resumeIfLow();
    return out;
  }
}
