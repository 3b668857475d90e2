/**
 * The form of a BINARYMIME message (RFC 3030) that fits DATA: what the worker gives a message
 * that arrived by BDAT with BODY=BINARYMIME before anything else reads it, so every later step —
 * the MIME parser, the transforms, the DSN's returned original, the portal's views, the relay's
 * DATA — sees CRLF lines of at most 998 octets without NUL, as they always did.
 *
 * The rule (README "BINARYMIME"):
 * - A leaf part whose body does not fit DATA (NUL, a bare CR or LF, a line over 998 octets) and
 *   has an identity encoding (none, 7bit, 8bit, binary) is re-encoded to base64 from its exact
 *   bytes; one already labelled base64 is decoded and encoded again (same bytes out of any
 *   decoder). Only its Content-Transfer-Encoding field changes (MIME-Version is added to a
 *   message that had none); every other header byte, the multipart structure, the preambles and
 *   epilogues stay as they are.
 * - A "binary" label on content that fits becomes 8bit or 7bit (RFC 6152 has no binary).
 * - Nothing inside a multipart/signed is touched: its signature covers those bytes. If something
 *   there would need it, the message is "prohibited" (5.6.3, RFC 3463: conversion required but
 *   prohibited) — it may go only to a next hop that takes BINARYMIME as it is.
 * - A structure that cannot be read with certainty (binary-scan.ts), a quoted-printable or unknown
 *   encoding with binary content, a preamble or epilogue that does not fit: "unconvertible", the
 *   same fate. Nothing is ever truncated or guessed.
 *
 * Output is produced as a stream from the original's bytes (read by range), so a 50 MB message
 * is never held: base64 goes out in batches of whole 57-byte lines.
 *
 * Untrusted input: the message (through its layout). No I/O: the caller gives the byte reader.
 */
import { base64Lines, base64LinesLength, LINE_BYTES } from './base64-lines.js';
import { fitsData, IDENTITY_ENCODINGS, type HeaderInfo, type Layout, type RegionStats } from './binary-scan.js';

type Edit = { start: number; end: number; put: Buffer } | { start: number; end: number; encode: 'base64' | 'rebase64'; last: boolean; decoded: number };

export type DataForm =
  /** `edits` empty: the message fits DATA as it is. */
  | { kind: 'convertible'; edits: Edit[]; length: number; eightBit: boolean; reencoded: number }
  /** A part under a signature would need conversion (5.6.3). */
  | { kind: 'prohibited'; reason: string }
  /** The structure or an encoding does not allow a faithful conversion (5.6.3 too). */
  | { kind: 'unconvertible'; reason: string };

function what(s: RegionStats): string {
  return s.nul ? 'NUL' : s.bareCr ? 'a bare CR' : s.bareLf ? 'a bare LF' : 'a line over 998 octets';
}

/** The header block with its Content-Transfer-Encoding field set to `cte` (and MIME-Version added on top when asked). */
function withEncoding(head: HeaderInfo, cte: string, mimeVersion: boolean): Buffer {
  const text = head.bytes.toString('latin1');
  const field = `Content-Transfer-Encoding: ${cte}\r\n`;
  const m = /(^|\r\n)content-transfer-encoding[ \t]*:.*\r\n(?:[ \t].*\r\n)*/i.exec(text);
  let out: string;
  if (m) {
    const at = m.index + m[1]!.length;
    out = text.slice(0, at) + field + text.slice(m.index + m[0].length);
  } else {
    // Before the empty line that ends the block.
    const at = text.endsWith('\r\n\r\n') ? text.length - 2 : text === '\r\n' ? 0 : text.length;
    out = text.slice(0, at) + field + text.slice(at);
  }
  if (mimeVersion && !/(^|\r\n)mime-version[ \t]*:/i.test(text)) out = 'MIME-Version: 1.0\r\n' + out;
  return Buffer.from(out, 'latin1');
}

const eightBitBytes = (b: Buffer) => b.some((c) => c >= 0x80);
const decodedOf = (chars: number) => Math.floor(chars / 4) * 3 + [0, 0, 1, 2][chars % 4]!;

/** What must change for the message to fit DATA, or why it cannot. */
export function dataFormOf(layout: Layout): DataForm {
  if (layout.kind === 'unparseable') return { kind: 'unconvertible', reason: `the MIME structure cannot be read exactly: ${layout.reason}` };
  const edits: Edit[] = [];
  let eightBit = false;
  let reencoded = 0;
  /** Composites labelled binary: relabelled once the message's 8-bitness is known. */
  const relabel: HeaderInfo[] = [];
  const mimeVersionOf = (top: boolean, h: HeaderInfo) => top && h.cteFields === 0;
  for (const r of layout.regions) {
    if (r.kind === 'filler') {
      if (!fitsData(r.stats)) return { kind: 'unconvertible', reason: `the multipart ${r.what} at offset ${r.start} holds ${what(r.stats)}` };
      eightBit ||= r.stats.eightBit;
      continue;
    }
    eightBit ||= eightBitBytes(r.head.bytes);
    if (r.kind === 'composite') {
      if (r.head.cte !== 'binary') continue;
      if (r.signed) return { kind: 'prohibited', reason: `a part labelled binary at offset ${r.head.start} is inside multipart/signed` };
      relabel.push(r.head);
      continue;
    }
    const { stats, head } = r;
    if (fitsData(stats)) {
      eightBit ||= stats.eightBit;
      if (head.cte !== 'binary') continue;
      if (r.signed) return { kind: 'prohibited', reason: `a part labelled binary at offset ${head.start} is inside multipart/signed` };
      edits.push({ start: head.start, end: head.end, put: withEncoding(head, stats.eightBit ? '8bit' : '7bit', false) });
      continue;
    }
    if (r.signed) return { kind: 'prohibited', reason: `the part at offset ${head.start} holds ${what(stats)} and is inside multipart/signed: re-encoding it would break the signature` };
    if (head.cteFields > 1) return { kind: 'unconvertible', reason: `the part at offset ${head.start} has ${head.cteFields} Content-Transfer-Encoding fields` };
    const last = r.end === layout.length;
    if (IDENTITY_ENCODINGS.has(head.cte)) {
      edits.push({ start: head.start, end: head.end, put: withEncoding(head, 'base64', mimeVersionOf(r.top, head)) });
      edits.push({ start: r.start, end: r.end, encode: 'base64', last, decoded: r.end - r.start });
    } else if (head.cte === 'base64') {
      edits.push({ start: r.start, end: r.end, encode: 'rebase64', last, decoded: decodedOf(stats.base64Chars) });
    } else {
      return { kind: 'unconvertible', reason: `the ${head.cte} part at offset ${head.start} holds ${what(stats)}` };
    }
    reencoded++;
  }
  for (const h of relabel) edits.push({ start: h.start, end: h.end, put: withEncoding(h, eightBit ? '8bit' : '7bit', false) });
  edits.sort((a, b) => a.start - b.start);
  let length = layout.length;
  for (const e of edits) length += ('put' in e ? e.put.length : encodedLength(e)) - (e.end - e.start);
  return { kind: 'convertible', edits, length, eightBit, reencoded };
}

function encodedLength(e: Extract<Edit, { encode: string }>): number {
  const n = base64LinesLength(e.decoded);
  return e.last || n === 0 ? n : n - 2;
}

/** Base64 lines from bytes pushed in any sizes; the CRLF after the last line only when `last`. */
class Base64Out {
  private rest: Buffer = Buffer.alloc(0);
  constructor(private readonly last: boolean) {}

  push(b: Buffer): Buffer | null {
    const all = this.rest.length ? Buffer.concat([this.rest, b]) : b;
    const whole = all.length - (all.length % LINE_BYTES);
    this.rest = Buffer.from(all.subarray(whole));
    if (!whole) return null;
    return base64Lines(all.subarray(0, whole));
  }

  end(): Buffer | null {
    const out = this.rest.length ? base64Lines(this.rest) : null;
    if (this.last) return out;
    // The delimiter that follows brings its own CRLF.
    if (out) return out.subarray(0, out.length - 2);
    return null;
  }
}

const B64 = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') B64[c.charCodeAt(0)] = 1;

/** Base64 text in any sizes → its bytes, every character outside the alphabet skipped (as lenient decoders do). */
class Base64In {
  private chars = '';
  push(b: Buffer): Buffer {
    let s = this.chars;
    const keep: number[] = [];
    for (const c of b) if (B64[c]) keep.push(c);
    s += Buffer.from(keep).toString('latin1');
    const whole = s.length - (s.length % 4);
    this.chars = s.slice(whole);
    return Buffer.from(s.slice(0, whole), 'base64');
  }
  end(): Buffer {
    const s = this.chars.length % 4 === 1 ? this.chars.slice(0, -1) : this.chars;
    return Buffer.from(s, 'base64');
  }
}

/** Reads `length` bytes of the original at `offset`, in chunks. */
export type RangeReader = (offset: number, length: number) => Iterable<Buffer>;

/** One edit's output from the original bytes it replaces. */
function* encoded(e: Extract<Edit, { encode: string }>, read: RangeReader): Generator<Buffer> {
  const out = new Base64Out(e.last);
  const dec = e.encode === 'rebase64' ? new Base64In() : null;
  // Each chunk is held until the next: the last line's CRLF goes when the delimiter brings its own.
  let held: Buffer | null = null;
  for (const c of read(e.start, e.end - e.start)) {
    const b = out.push(dec ? dec.push(c) : c);
    if (!b) continue;
    if (held) yield held;
    held = b;
  }
  const more = dec ? out.push(dec.end()) : null;
  if (more) {
    if (held) yield held;
    held = more;
  }
  const tail = out.end();
  if (tail) {
    if (held) yield held;
    held = tail;
  } else if (held && !e.last) held = held.subarray(0, held.length - 2);
  if (held?.length) yield held;
}

/**
 * The message in its DATA form, as chunks, from the original read by `read`. Synchronous: the
 * reader of a spool file reads one chunk per step (spool readRangeChunks), and the consumer
 * (the spool's writer) awaits between them.
 */
export function* dataFormChunks(form: Extract<DataForm, { kind: 'convertible' }>, total: number, read: RangeReader): Generator<Buffer> {
  let at = 0;
  for (const e of form.edits) {
    if (e.start > at) yield* read(at, e.start - at);
    if ('put' in e) yield e.put;
    else yield* encoded(e, read);
    at = e.end;
  }
  if (total > at) yield* read(at, total - at);
}

/** dataFormChunks of a message in memory, in one Buffer. */
export function dataFormBuffer(form: Extract<DataForm, { kind: 'convertible' }>, message: Buffer): Buffer {
  if (!form.edits.length) return message;
  const parts: Buffer[] = [];
  for (const c of dataFormChunks(form, message.length, (o, l) => [message.subarray(o, o + l)])) parts.push(c);
  return Buffer.concat(parts);
}
