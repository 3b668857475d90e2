/**
 * The byte-level MIME steps of entity.ts as streams, for messages too large to hold several
 * times: CRLF line ends, base64 in lines of 76 with CRLF, and the check that an entity is already
 * in canonical form (7-bit, lines of at most 998 characters) — when it is, canonicalEntity() would
 * return it byte for byte after toCrlf(), so a signature over the streamed CRLF bytes is exactly
 * the signature the Buffer path makes.
 *
 * Untrusted input: message bytes; every step is linear with constant state.
 */
import { isAscii } from 'node:buffer';
import { base64Lines, base64LinesLength, LINE_BYTES, writeBase64Lines } from './base64-lines.js';

/** Bare LF and lone CR to CRLF, as toCrlf() does, across chunk borders. */
export async function* crlfChunks(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  /** The previous chunk ended in CR: an LF first in this one belongs to it. */
  let pendingCr = false;
  for await (const chunk of chunks) {
    if (!chunk.length) continue;
    if (!pendingCr && !needsFix(chunk)) {
      pendingCr = chunk[chunk.length - 1] === 0x0d;
      // A final CR may yet be lone: hold it back until the next byte is known.
      if (pendingCr) yield chunk.subarray(0, chunk.length - 1);
      else yield chunk;
      continue;
    }
    const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
    let o = 0;
    let i = 0;
    if (pendingCr) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
      if (chunk[0] === 0x0a) i = 1;
      pendingCr = false;
    }
    for (; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === 0x0d) {
        if (i + 1 === chunk.length) {
          pendingCr = true;
          break;
        }
        out[o++] = 0x0d;
        out[o++] = 0x0a;
        if (chunk[i + 1] === 0x0a) i++;
      } else if (c === 0x0a) {
        out[o++] = 0x0d;
        out[o++] = 0x0a;
      } else out[o++] = c;
    }
    yield out.subarray(0, o);
  }
  if (pendingCr) yield Buffer.from('\r\n');
}

/** True when `chunk` has a bare LF or a CR not followed by LF inside it (a CR at its end is decided later). */
function needsFix(chunk: Buffer): boolean {
  for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) if (i === 0 || chunk[i - 1] !== 0x0d) return true;
  for (let i = chunk.indexOf(0x0d); i >= 0 && i < chunk.length - 1; i = chunk.indexOf(0x0d, i + 1)) if (chunk[i + 1] !== 0x0a) return true;
  return false;
}

/** Input bytes encoded per output chunk at most (a multiple of 57): ~256 KB of output. */
const BATCH = LINE_BYTES * 3400;
const NONE = Buffer.alloc(0);

/**
 * Base64 in lines of 76 characters, each ended by CRLF (withBase64Lines, encodeBase64Lines), of
 * the concatenation of `chunks`. Bytes left over from one chunk (less than a line's 57) are
 * completed from the next one; only they are copied, never a whole chunk.
 */
export async function* base64LineChunks(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let rest: Buffer = NONE;
  for await (const chunk of chunks) {
    let data = chunk;
    let first: Buffer = NONE;
    if (rest.length) {
      const need = LINE_BYTES - rest.length;
      if (data.length < need) {
        rest = Buffer.concat([rest, data]);
        continue;
      }
      first = Buffer.concat([rest, data.subarray(0, need)]);
      data = data.subarray(need);
      rest = NONE;
    }
    while (data.length >= BATCH) {
      yield encodeLines(first, data.subarray(0, BATCH));
      first = NONE;
      data = data.subarray(BATCH);
    }
    const whole = data.length - (data.length % LINE_BYTES);
    if (whole > 0 || first.length) yield encodeLines(first, data.subarray(0, whole));
    // Copied: the source may reuse its buffer once we ask for the next chunk.
    if (whole < data.length) rest = Buffer.from(data.subarray(whole));
  }
  if (rest.length) yield base64Lines(rest);
}

/** One line completed across chunks (or nothing), then whole lines: one output buffer. */
function encodeLines(first: Buffer, lines: Buffer): Buffer {
  if (!first.length) return base64Lines(lines);
  const out = Buffer.allocUnsafeSlow(base64LinesLength(first.length) + base64LinesLength(lines.length));
  writeBase64Lines(lines, out, writeBase64Lines(first, out, 0));
  return out;
}

/** What a pass over an entity found (see canonicalScan). */
export interface CanonicalScan {
  /** 7-bit, no NUL, no line over 998 characters: canonicalEntity() leaves it as it is. */
  canonical: boolean;
  /**
   * Every LF follows a CR and every CR precedes an LF: toCrlf() would not change it (what smtpd
   * stores always is). Only decided while `canonical` holds; false when it does not.
   */
  crlf: boolean;
  /** Some of `needles` occurs in it (a boundary chosen before the content was seen). */
  contains: boolean;
  bytes: number;
}

/**
 * Check bytes against the rules of entity.ts sevenBitClean() and for bare CR or LF, and look for
 * the given strings, in one pass with constant memory. When `crlf` comes out false, the result
 * says nothing about the CRLF form: scan crlfChunks() of the content for that.
 */
export async function canonicalScan(chunks: AsyncIterable<Buffer>, needles: readonly string[] = []): Promise<CanonicalScan> {
  const keys = needles.map((n) => Buffer.from(n, 'latin1'));
  const keep = Math.max(0, ...keys.map((k) => k.length - 1));
  let lineLen = 0;
  let canonical = true;
  let crlf = true;
  let contains = false;
  let bytes = 0;
  /** The previous chunk ended in CR. */
  let prevCr = false;
  let tail: Buffer = Buffer.alloc(0);
  for await (const chunk of chunks) {
    if (!chunk.length) continue;
    bytes += chunk.length;
    if (canonical) {
      if (!isAscii(chunk) || chunk.includes(0)) canonical = false;
      else {
        if (prevCr && chunk[0] !== 0x0a) crlf = false;
        let from = 0;
        for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
          if (lineLen + (nl - from) > 998) canonical = false;
          if (crlf) {
            if (nl > 0 ? chunk[nl - 1] !== 0x0d : !prevCr) crlf = false;
            // Any CR of this line other than the one right before its LF is a lone one.
            const cr = chunk.indexOf(0x0d, from);
            if (cr >= 0 && cr < nl - 1) crlf = false;
          }
          lineLen = 0;
          from = nl + 1;
        }
        lineLen += chunk.length - from;
        if (lineLen > 998) canonical = false;
        if (crlf) {
          const cr = chunk.indexOf(0x0d, from);
          if (cr >= 0 && cr < chunk.length - 1) crlf = false;
        }
        prevCr = chunk[chunk.length - 1] === 0x0d;
      }
    }
    if (keys.length && !contains) {
      // The chunk itself, then the seam with the previous one (no copy of the whole chunk).
      const seam = tail.length ? Buffer.concat([tail, chunk.subarray(0, keep)]) : null;
      contains = keys.some((k) => chunk.includes(k) || (seam !== null && seam.includes(k)));
      const last = chunk.length >= keep ? chunk : Buffer.concat([tail, chunk]);
      tail = Buffer.from(last.subarray(Math.max(0, last.length - keep)));
    }
  }
  if (prevCr) crlf = false;
  return { canonical, crlf: canonical && crlf, contains, bytes };
}

/** Chunks of several sources, one after the other. */
export async function* concatChunks(...sources: (Buffer | AsyncIterable<Buffer>)[]): AsyncGenerator<Buffer> {
  for (const s of sources) {
    if (Buffer.isBuffer(s)) {
      if (s.length) yield s;
    } else yield* s;
  }
}

const MIME_VERSION = Buffer.from('MIME-Version: 1.0\r\n');

/**
 * A whole message as chunks (joinMessage of entity.ts, streamed): `outer` (the header fields other
 * than Content-* and MIME-Version, CRLF-ended), MIME-Version, and the entity, whose first chunk
 * must hold its whole header block. Joined to the outer fields, that is the message's header:
 * `editHeader` (the worker's header edits) gets it as one, with its empty line.
 */
export async function* messageChunks(outer: Buffer, entity: AsyncIterable<Buffer>, editHeader?: (header: Buffer) => Buffer): AsyncGenerator<Buffer> {
  let first = true;
  for await (const chunk of entity) {
    if (!first) {
      yield chunk;
      continue;
    }
    first = false;
    const head = Buffer.concat([outer, MIME_VERSION, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (!editHeader) {
      yield head;
      continue;
    }
    // The plan's header edits (Autocrypt, added or removed fields) must not be dropped quietly.
    if (end < 0) throw new Error('the first chunk of the entity does not hold its whole header block: header edits cannot be made');
    yield editHeader(head.subarray(0, end + 4));
    yield head.subarray(end + 4);
  }
}
