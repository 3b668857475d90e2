/**
 * One MIME part as the streamed facts reader (facts-stream.ts) sees it: the bytes the boundary
 * scanner confirms as the part's own arrive in pieces; the reader finds the end of its header
 * exactly as splitHeader() does on the whole part, then keeps of the body only what a decision
 * can read (facts-parts.ts: BODY_PREFIX bytes, and whether it is white space only when that is
 * asked). A part that is itself split into parts tells the scanner at the end of its header, so
 * that its boundary is looked for from the very next line.
 *
 * Untrusted input: part bytes. Memory: the header (up to HEADER_CAP) and the prefix, per part.
 */
import { BODY_PREFIX, CMS_PREFIX, isBlank, partOf, type FactsPart } from './facts-parts.js';

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

/** A part header longer than this is not read as a stream (the in-memory reader takes the message). */
export const HEADER_CAP = 256 * 1024;

/** Something the streamed reader cannot decide exactly as messageFacts would: the caller reads the message whole. */
export class NotStreamable extends Error {}

/** Bytes appended in pieces, in one buffer that doubles (no quadratic copying for 1-byte pieces). */
class Bytes {
  private buf = Buffer.alloc(256);
  length = 0;
  add(b: Buffer): void {
    if (this.length + b.length > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + b.length));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    b.copy(this.buf, this.length);
    this.length += b.length;
  }
  at(i: number): number | undefined {
    return i < this.length ? this.buf[i] : undefined;
  }
  view(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** What the reader tells the scanner about its part. */
export interface ReaderEvents {
  /**
   * The header is read: return true when the part is split (its body belongs to the scanner from
   * now on). `open`: false when the part ended with its header (it has no body to split).
   */
  header(reader: PartReader, part: FactsPart, open: boolean): boolean;
  /** The part ended (a delimiter or the end of the message). */
  ended(reader: PartReader): void;
}

export class PartReader {
  part: FactsPart | null = null;
  split = false;
  /** Top-level look (FactsFound.topLevel) level when this part is one of the message's own layers. */
  topLevel: number | null = null;
  /** The bytes before the body: the header block and its empty line (once the header is read). */
  head: Buffer = EMPTY;
  /** Whether the body is white space only: tracked when `wantBlank` is set before the body starts. */
  wantBlank = false;
  blank = true;
  private pending: Bytes | null = new Bytes();
  private prefix: Bytes | null = null;
  /** Bytes of the body a decision reads: the armour sniff's for a text, the CMS look's for a layer of the message. */
  private prefixMax = 0;
  /** The line break the scanner holds back next is the one of the empty line after the header. */
  private skipBreak = false;

  constructor(
    readonly depth: number,
    readonly fallback: string,
    /** Position among its siblings (0 for the message itself). */
    readonly index: number,
    private readonly events: ReaderEvents,
  ) {}

  /** Bytes that are the part's own. */
  data(b: Buffer): void {
    if (!b.length) return;
    const held = this.pending;
    if (!held) return this.body(b);
    const from = Math.max(0, held.length - 2);
    held.add(b);
    // splitHeader: an empty line first, or the first LF followed by LF or CRLF.
    if (from === 0 && (held.at(0) === LF || (held.at(0) === CR && held.at(1) === LF))) return this.endHeader(0, held.at(0) === LF ? 1 : 2, true);
    const h = held.view();
    for (let nl = h.indexOf(LF, from); nl >= 0; nl = h.indexOf(LF, nl + 1)) {
      if (h[nl + 1] === LF) return this.endHeader(nl + 1, nl + 2, true);
      if (h[nl + 1] === CR && h[nl + 2] === LF) return this.endHeader(nl + 1, nl + 3, true);
    }
    if (held.length > HEADER_CAP) throw new NotStreamable(`a part header of more than ${HEADER_CAP} bytes`);
  }

  /**
   * A line ended and its line break is held back (the next line may be a delimiter, whose line
   * break it would then be): an empty line ends the header here, whatever comes next.
   */
  lineEnd(lineBreak: Buffer): void {
    const held = this.pending;
    if (!held || (held.length > 0 && held.at(held.length - 1) !== LF)) return;
    this.skipBreak = true;
    this.endHeader(held.length, held.length, true, lineBreak);
  }

  /** The held line break is the part's own after all (the next line is not a delimiter). */
  lineBreak(b: Buffer): void {
    if (this.skipBreak && !this.pending) {
      this.skipBreak = false;
      return;
    }
    this.data(b);
  }

  end(): void {
    // No empty line: the whole part is header (splitHeader).
    if (this.pending) this.endHeader(this.pending.length, this.pending.length, false);
    if (this.part && !this.split) this.part.body = this.prefix ? Buffer.from(this.prefix.view()) : EMPTY;
    this.prefix = null;
    this.events.ended(this);
  }

  /** Whether the reader still needs body bytes (the scanner may stop feeding a message whose facts are settled). */
  get settled(): boolean {
    return this.pending === null && (this.split || ((this.prefix === null || this.prefix.length >= this.prefixMax) && !(this.wantBlank && this.blank)));
  }

  /** `heldBreak`: the empty line's break when the scanner holds it back (it is not in the bytes held here). */
  private endHeader(headerEnd: number, bodyStart: number, open: boolean, heldBreak: Buffer = EMPTY): void {
    const h = this.pending!.view();
    const rest = h.subarray(bodyStart);
    this.pending = null;
    this.head = Buffer.concat([h.subarray(0, bodyStart), heldBreak]);
    const part = partOf(this.head.subarray(0, headerEnd), EMPTY, this.depth, this.fallback);
    this.part = part;
    this.split = this.events.header(this, part, open);
    this.prefixMax = this.split ? 0 : part.type.type === 'text/plain' ? BODY_PREFIX : this.topLevel !== null ? CMS_PREFIX : 0;
    if (this.prefixMax) this.prefix = new Bytes();
    this.body(rest);
  }

  private body(b: Buffer): void {
    if (this.split || !b.length) return;
    if (this.prefix && this.prefix.length < this.prefixMax) this.prefix.add(b.subarray(0, this.prefixMax - this.prefix.length));
    if (this.wantBlank && this.blank) this.blank = isBlank(b);
  }
}
