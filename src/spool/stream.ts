/**
 * Spool entries as file ranges, for messages too large to hold in memory several times: the
 * envelope record and the status region are read from the two ends of the file, and the body is
 * checked against the end marker's length and SHA-256 by streaming it once, never by loading it.
 * Writing is the mirror image: an outgoing entry is written from a stream of chunks, its digest
 * computed on the way, then fsynced and renamed exactly like an entry written from a Buffer. The
 * record format (record.ts) is the same either way: files written by one path read by the other.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, readSync, openSync, closeSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { CorruptEntryError } from '../core/index.js';
import { BodyDigest, decodeHeader, decodeStatusFromTail, encodeHeader, type EntryMeta, type StatusRecord } from './record.js';
import { writeAll } from './write.js';

/**
 * Entries larger than this are read as file ranges; smaller ones are read whole (one read and one
 * hash of a small file is faster than opening streams, and a message of 1 MB held a few times is
 * no memory concern — a 50 MB one held fifteen times is).
 */
export const STREAM_THRESHOLD = 1 << 20;

/** Where a message's bytes are inside a spool file. */
export interface BodyRange {
  path: string;
  offset: number;
  length: number;
  /**
   * The SHA-256 the end marker declares, when the body was not hashed on opening (readRanged's
   * `checkBody: false`): rangeSource and loadRange check it as they read, and fail at the end —
   * before the SMTP client can end the data phase — when it does not match.
   */
  unchecked?: string;
}

const TRAILER_TAG = Buffer.from('\nPOSTERN-END/1 ', 'latin1');
/** Read size of the streamed body check and of body streams (large reads: fewer system calls). */
const CHUNK = 256 * 1024;
/** Read size of the body check (one buffer, reused). */
const CHECK_CHUNK = 1024 * 1024;

/** The body's bytes in order, from the file (a Readable: back-pressure comes with it). */
export function streamRange(range: BodyRange, chunkSize = CHUNK): AsyncIterable<Buffer> {
  if (range.length === 0) return (async function* () {})();
  return createReadStream(range.path, { start: range.offset, end: range.offset + range.length - 1, highWaterMark: chunkSize });
}

/**
 * The body as a source the relay's SMTP client and Maildir writer read when they send (relay
 * MessageSource's StreamSource, by shape): opened once per attempt, `size` bytes exactly.
 */
export function rangeSource(range: BodyRange): { readonly size: number; open(): Readable } {
  return {
    size: range.length,
    open: () => {
      if (range.length === 0) return Readable.from([]);
      const file = createReadStream(range.path, { start: range.offset, end: range.offset + range.length - 1, highWaterMark: CHUNK });
      return range.unchecked === undefined ? file : Readable.from(checkedAsRead(file, range, range.unchecked));
    },
  };
}

/**
 * The chunks of `file`, hashed on the way; after the last one, a CorruptEntryError unless they
 * were exactly the declared length and digest. The consumer has then written every byte but not
 * the end of the message: the SMTP client drops the connection without the final dot (the next
 * hop discards what it got), the Maildir writer removes its tmp file, and the attempt is deferred
 * — the next one, from deferred/, checks before it sends and moves the entry to corrupt/.
 */
async function* checkedAsRead(file: AsyncIterable<Buffer>, range: BodyRange, sha256: string): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let seen = 0;
  for await (const chunk of file) {
    hash.update(chunk);
    seen += chunk.length;
    yield chunk;
  }
  if (seen !== range.length) throw new CorruptEntryError(range.path, `body length ${seen}, end marker says ${range.length}`);
  if (hash.digest('hex') !== sha256) throw new CorruptEntryError(range.path, 'body checksum mismatch');
}

/** The body loaded into memory (the Buffer path's fallback for a large entry): one synchronous read. */
export function loadRange(range: BodyRange): Buffer {
  const buf = Buffer.allocUnsafe(range.length);
  const fd = openSync(range.path, 'r');
  try {
    let at = 0;
    while (at < range.length) {
      const n = readSync(fd, buf, at, range.length - at, range.offset + at);
      if (n <= 0) throw new CorruptEntryError(range.path, 'file shorter than its end marker says (changed while in use?)');
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  if (range.unchecked !== undefined && createHash('sha256').update(buf).digest('hex') !== range.unchecked) throw new CorruptEntryError(range.path, 'body checksum mismatch');
  return buf;
}

/**
 * Bytes [offset, offset + length) of the body, read synchronously one chunk per step: a reader
 * for a generator whose consumer awaits between chunks (the worker's DATA form of a BINARYMIME
 * message, mime/data-form.ts, re-encodes parts of the file as it is written to outgoing/).
 */
export function* rangeChunksSync(range: BodyRange, offset: number, length: number, chunkSize = CHUNK): Generator<Buffer> {
  if (offset < 0 || offset + length > range.length) throw new RangeError(`bytes ${offset}+${length} outside a body of ${range.length}`);
  if (length === 0) return;
  const fd = openSync(range.path, 'r');
  try {
    for (let at = 0; at < length; ) {
      const buf = Buffer.allocUnsafe(Math.min(chunkSize, length - at));
      const n = readSync(fd, buf, 0, buf.length, range.offset + offset + at);
      if (n <= 0) throw new CorruptEntryError(range.path, 'file shorter than its end marker says (changed while in use?)');
      at += n;
      yield n === buf.length ? buf : buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

async function readHead(fh: FileHandle, path: string): Promise<{ meta: EntryMeta; bodyOffset: number }> {
  for (let size = 16 * 1024; ; size *= 4) {
    const buf = Buffer.alloc(size);
    const { bytesRead } = await fh.read(buf, 0, size, 0);
    const h = decodeHeader(path, buf.subarray(0, bytesRead));
    if (h) return h;
    if (bytesRead < size) throw new CorruptEntryError(path, 'truncated envelope record');
  }
}

/** The end marker found from the file's end: where the body ends, its declared length and digest, and the status records. */
async function readTail(fh: FileHandle, path: string, size: number, bodyOffset: number): Promise<{ bodyEnd: number; length: number; sha256: string; status: StatusRecord[] }> {
  for (let want = 64 * 1024; ; want *= 4) {
    const len = Math.min(size - bodyOffset, want + TRAILER_TAG.length);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    const at = buf.lastIndexOf(TRAILER_TAG);
    if (at >= 0) {
      const nl = buf.indexOf(0x0a, at + TRAILER_TAG.length);
      if (nl < 0) throw new CorruptEntryError(path, 'end marker missing (truncated write?)');
      const m = /^(\d{1,15}) ([0-9a-f]{64})$/.exec(buf.toString('latin1', at + TRAILER_TAG.length, nl));
      if (!m) throw new CorruptEntryError(path, 'end marker unreadable');
      const status = decodeStatusFromTail(path, buf.subarray(at)) ?? [];
      return { bodyEnd: size - len + at, length: Number(m[1]), sha256: m[2]!, status };
    }
    if (len >= size - bodyOffset) throw new CorruptEntryError(path, 'end marker missing (truncated write?)');
  }
}

export interface RangedEntry {
  meta: EntryMeta;
  status: StatusRecord[];
  range: BodyRange;
}

/**
 * Read an entry without loading its body: envelope from the start, end marker and status records
 * from the end, and the body's length and SHA-256 checked by streaming it. Throws
 * CorruptEntryError for a torn or damaged file, exactly where decodeEntry would.
 * `checkBody: false` leaves the SHA-256 to the one pass that reads the body anyway (the relay's
 * send: range.unchecked); the envelope, the end marker and the length are checked all the same.
 */
export async function readRanged(path: string, fh?: FileHandle, opts: { checkBody?: boolean } = {}): Promise<RangedEntry> {
  const own = fh === undefined;
  const h = fh ?? (await open(path, 'r'));
  try {
    const { size } = await h.stat();
    const head = await readHead(h, path);
    const tail = await readTail(h, path, size, head.bodyOffset);
    const length = tail.bodyEnd - head.bodyOffset;
    if (length !== tail.length) throw new CorruptEntryError(path, `body length ${length}, end marker says ${tail.length}`);
    const range: BodyRange = { path, offset: head.bodyOffset, length };
    if (opts.checkBody === false) return { meta: head.meta, status: tail.status, range: { ...range, unchecked: tail.sha256 } };
    const seen = await digestRange(h, range, createHash('sha256'));
    if (seen.bytes !== length) throw new CorruptEntryError(path, `body length ${seen.bytes}, end marker says ${length}`);
    if (seen.hex !== tail.sha256) throw new CorruptEntryError(path, 'body checksum mismatch');
    return { meta: head.meta, status: tail.status, range };
  } finally {
    if (own) await h.close();
  }
}

/**
 * Hash a range of an open file through one buffer, read again and again: the check only looks at
 * the bytes, so a stream's fresh 256 KB buffer per read (page faults, then garbage) is waste —
 * it made reading cost more than hashing for a 10 MB entry, in the worker and again in the relay.
 */
async function digestRange(fh: FileHandle, range: BodyRange, hash: Hash): Promise<{ bytes: number; hex: string }> {
  const buf = Buffer.allocUnsafeSlow(Math.max(1, Math.min(CHECK_CHUNK, range.length)));
  let seen = 0;
  while (seen < range.length) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, range.length - seen), range.offset + seen);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    seen += bytesRead;
  }
  return { bytes: seen, hex: hash.digest('hex') };
}

/**
 * `target` with a `body` that is read from `range` on first use (and kept): code that needs the
 * whole message as a Buffer still gets it, code that streams never pays for it.
 */
export function withLazyBody<T extends object>(target: T, range: BodyRange): T & { body: Buffer; range: BodyRange } {
  let body: Buffer | undefined;
  Object.defineProperty(target, 'range', { value: range, enumerable: true, writable: false });
  // Enumerable: a copy made with a spread still has the body (loaded then), never silently lacks it.
  Object.defineProperty(target, 'body', {
    enumerable: true,
    configurable: true,
    get: () => (body ??= loadRange(range)),
    set: (b: Buffer) => {
      body = b;
    },
  });
  return target as T & { body: Buffer; range: BodyRange };
}

/**
 * Create `path` holding one entry whose body comes from `chunks`: header, body, trailer with the
 * body's length and SHA-256 as streamed, fdatasync'd. On any failure (of the writer or of the
 * source) the file is removed and the error thrown.
 */
export async function writeStreamedEntry(path: string, meta: EntryMeta, chunks: AsyncIterable<Buffer>): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    await writeAll(fh, [encodeHeader(meta)]);
    const digest = new BodyDigest();
    // Batched into writes of ~1 MB: small chunks from a transform (base64 lines) would otherwise
    // cost one system call each.
    let batch: Buffer[] = [];
    let batched = 0;
    for await (const chunk of chunks) {
      if (!chunk.length) continue;
      digest.update(chunk);
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= 1 << 20) {
        await writeAll(fh, batch);
        batch = [];
        batched = 0;
      }
    }
    await writeAll(fh, [...batch, digest.trailer()]);
    await fh.datasync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(path, { force: true });
    throw err;
  }
  await fh.close();
}
