/**
 * The message body on its way to the next hop: where it comes from (bytes in memory, or a range
 * of a spool file opened as a stream when it is sent, so a 50 MB message is never held whole by
 * the relay) and the dot-stuffing SMTP needs (RFC 5321 §4.5.2), done chunk by chunk.
 */
import type { Readable } from 'node:stream';

/**
 * A body that is read when it is sent: a spool file range, for instance. `open` is called once
 * per delivery attempt (a retry reads it again); `size` is the exact byte count it yields (SIZE=).
 */
export interface StreamSource {
  readonly size: number;
  open(): Readable;
}

/** What the SMTP client sends as the message: the bytes, unchanged except for dot-stuffing. */
export type MessageSource = Buffer | StreamSource;

export function sourceSize(s: MessageSource): number {
  return Buffer.isBuffer(s) ? s.length : s.size;
}

const DOT = Buffer.from('.');
const END_CRLF = Buffer.from('.\r\n');
const END_BARE = Buffer.from('\r\n.\r\n');

/**
 * Doubles every '.' that starts a line, across chunk boundaries. The common chunk without such a
 * line is passed on as is (no copy). smtpd and the worker end every message with CRLF; should one
 * not, the terminator adds it rather than glue the '.' to the last line.
 */
export class DotStuffer {
  private atLineStart = true;
  private endsCrlf = false;
  private lastCr = false;
  private started = false;

  push(chunk: Buffer): Buffer {
    const n = chunk.length;
    if (n === 0) return chunk;
    this.started = true;
    const parts: Buffer[] = [];
    let from = 0;
    // Each '.' (one byte: memchr; a two-byte "\n." search cost 20 ms per 10 MB, and base64 has
    // no dot at all), doubled when a line starts with it.
    for (let i = chunk.indexOf(0x2e); i >= 0; i = chunk.indexOf(0x2e, i + 1)) {
      if (i === 0 ? !this.atLineStart : chunk[i - 1] !== 0x0a) continue;
      parts.push(chunk.subarray(from, i), DOT);
      from = i;
    }
    this.endsCrlf = chunk[n - 1] === 0x0a && (n >= 2 ? chunk[n - 2] === 0x0d : this.lastCr);
    this.lastCr = chunk[n - 1] === 0x0d;
    this.atLineStart = chunk[n - 1] === 0x0a;
    if (parts.length === 0) return chunk;
    parts.push(chunk.subarray(from));
    return Buffer.concat(parts);
  }

  /** The end-of-data line (with the CRLF the last line lacked, if it did; an empty body has none). */
  end(): Buffer {
    return this.endsCrlf || !this.started ? END_CRLF : END_BARE;
  }
}

/** Where the body goes: a writer that waits while the connection cannot take more. */
export interface BodySink {
  write(data: Buffer): Promise<void>;
}

/** Small bodies go in one write with the terminator: one packet instead of two. */
const ONE_WRITE_MAX = 64 * 1024;

/** Send the body, dot-stuffed, and the end-of-data line. */
export async function sendBody(sink: BodySink, source: MessageSource): Promise<void> {
  const stuffer = new DotStuffer();
  if (Buffer.isBuffer(source)) {
    const out = stuffer.push(source);
    if (out.length <= ONE_WRITE_MAX) return sink.write(Buffer.concat([out, stuffer.end()]));
    await sink.write(out);
    return sink.write(stuffer.end());
  }
  const stream = source.open();
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) await sink.write(stuffer.push(chunk));
  } finally {
    stream.destroy();
  }
  await sink.write(stuffer.end());
}
