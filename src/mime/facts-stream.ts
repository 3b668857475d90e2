/**
 * A message's facts (messageFacts) read from a stream of chunks in one pass, for messages too
 * large to hold: the boundaries of nested multiparts are followed line by line, each part's header
 * is read, and of a part's body only the prefix a decision reads is kept (facts-reader.ts) — the
 * decisions themselves are facts-parts.ts', the same functions messageFacts calls, in the same
 * order. Memory: the open multiparts (MAX_DEPTH at most), one part header, one body prefix.
 *
 * Exactly messageFacts' result, or none: where one pass cannot know what the whole-message reader
 * decides — MAX_PARTS reached (messageFacts counts a multipart's children before it descends,
 * which depends on parts further on), a part header over HEADER_CAP, a delimiter line that the
 * end of its multipart cuts off before its line break, a boundary holding a line break — the
 * answer is `unsure` with the reason, and the caller reads the message whole.
 *
 * Boundaries as multipartLayout() finds them (entity.ts): a delimiter is "--" boundary at the
 * start of a line, then "--" (the close) or white space up to a CR or LF (or the end); the line
 * break before it belongs to the delimiter; an outer multipart's delimiter ends every part inside.
 *
 * Untrusted input: the whole message. Linear in its size; no state grows with it.
 */
import type { MessageFacts } from '../policy/types.js';
import { childFallback, FactsFound, isMangledPgpMime, markChild, mangledCandidate, MAX_PARTS, splits, type FactsPart } from './facts-parts.js';
import { factsFrom } from './facts.js';
import { NotStreamable, PartReader, type ReaderEvents } from './facts-reader.js';
import { delimiterAt, heldBack, NotSplittable } from './split-stream.js';

export type StreamedFacts =
  | { kind: 'facts'; facts: MessageFacts; /** The bytes before the body: the header block and its empty line (splitHeader's bodyOffset of them). */ head: Buffer }
  | { kind: 'unsure'; reason: string };

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const NL_DASHES = Buffer.from('\n--', 'latin1');

interface Level {
  /** "--" and the boundary. */
  delim: Buffer;
  owner: PartReader;
  current: PartReader | null;
  children: number;
  closed: boolean;
}

type Line = { level: number; closing: boolean; next: number } | 'content' | 'wait';

class Scanner implements ReaderEvents {
  readonly found = new FactsFound();
  readonly root: PartReader;
  private readonly stack: Level[] = [];
  private tail: Buffer = Buffer.alloc(0);
  /** The line at the scan position starts right after a delimiter line. */
  private atLineStart = false;
  /** Inside the rest of a delimiter line (up to its LF). */
  private skipping = false;
  /** After the delimiter line's LF, a part of this level opens — unless an outer delimiter comes first. */
  private openAfter: Level | null = null;
  private parts = 0;
  /** Which part is the next of the message's own layers (FactsFound.topLevel). */
  private topNext: { level: number; in: Level } | null = null;
  /** The top-level multipart/mixed may be Exchange's PGP/MIME: its children's types, their parts held back. */
  private mangled: { types: string[]; held: FactsPart[]; first: PartReader | null } | null = null;
  size = 0;

  constructor() {
    this.root = new PartReader(0, 'text/plain', 0, this);
    this.root.topLevel = 0;
  }

  /** Nothing more can change the facts (the caller may stop reading). */
  get settled(): boolean {
    const last = this.stack[this.stack.length - 1];
    return last ? last.owner === this.root && last.closed && this.mangled === null : this.root.settled;
  }

  write(chunk: Buffer): void {
    this.size += chunk.length;
    const buf = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    // Copied: a stream may reuse its buffer once the next chunk is asked for.
    this.tail = Buffer.from(buf.subarray(this.scan(buf, false)));
  }

  end(): void {
    this.scan(this.tail, true);
    if (this.skipping) this.cutOff();
    for (let i = this.stack.length - 1; i >= 0; i--) this.stack[i]!.current?.end();
    this.root.end();
    this.settleMangled();
  }

  private current(): PartReader | null {
    const last = this.stack[this.stack.length - 1];
    return last ? last.current : this.root;
  }

  /** Scans `buf`, gives each part its bytes; returns where the bytes still undecided begin. */
  private scan(buf: Buffer, eof: boolean): number {
    let pos = 0;
    for (;;) {
      if (this.skipping) {
        const nl = buf.indexOf(LF, pos);
        if (nl < 0) return buf.length;
        this.skipping = false;
        this.atLineStart = true;
        pos = nl + 1;
      }
      if (this.atLineStart) {
        const line = this.line(buf, pos, eof);
        if (line === 'wait') return pos;
        this.atLineStart = false;
        this.openPending(line);
        if (line !== 'content') {
          pos = this.delimiter(line);
          continue;
        }
      }
      const c = buf.indexOf(NL_DASHES, pos);
      if (c < 0) {
        const end = eof ? buf.length : heldBack(buf, pos);
        this.current()?.data(buf.subarray(pos, end));
        return end;
      }
      // The line break before the candidate line: the delimiter's if it is one.
      const brk = c > pos && buf[c - 1] === CR ? c - 1 : c;
      this.current()?.data(buf.subarray(pos, brk));
      this.current()?.lineEnd(buf.subarray(brk, c + 1));
      const line = this.line(buf, c + 1, eof);
      if (line === 'wait') return brk;
      if (line === 'content') {
        this.current()?.lineBreak(buf.subarray(brk, c + 1));
        pos = c + 1;
      } else pos = this.delimiter(line);
    }
  }

  /** Is the line at `p` a delimiter, and of which open multipart (the outermost wins, as it splits first)? */
  private line(buf: Buffer, p: number, eof: boolean): Line {
    if (!eof && buf.length - p < 2) return 'wait';
    if (buf[p] !== DASH || buf[p + 1] !== DASH) return 'content';
    for (let level = 0; level < this.stack.length; level++) {
      const { delim, closed } = this.stack[level]!;
      if (closed) continue;
      const d = delimiterAt(buf, p, delim, eof);
      if (d === 'wait') return 'wait';
      if (d) return { level, ...d };
    }
    return 'content';
  }

  /** After a delimiter line: the part it began opens now — it was never one if an outer delimiter follows. */
  private openPending(line: Line): void {
    const level = this.openAfter;
    if (!level) return;
    this.openAfter = null;
    if (typeof line === 'object' && line.level < this.stack.indexOf(level)) return this.cutOff(level);
    if (++this.parts >= MAX_PARTS) throw new NotStreamable(`${MAX_PARTS} MIME parts or more`);
    const owner = level.owner.part!;
    const reader = new PartReader(owner.depth + 1, childFallback(owner.type.type), level.children++, this);
    if (this.topNext?.in === level && reader.index === 0) reader.topLevel = this.topNext.level;
    if (this.mangled && level === this.stack[0] && reader.index === 0) {
      this.mangled.first = reader;
      reader.wantBlank = true;
    }
    level.current = reader;
  }

  /**
   * The end of a multipart came before the line break of its last delimiter line (multipartLayout
   * finds no line end there): after its first delimiter that only means no parts; after a later
   * one multipartLayout takes the part before it again, to the end — not followed here.
   */
  private cutOff(level: Level | null = this.openAfter): void {
    this.skipping = false;
    this.openAfter = null;
    if (level && level.children > 0) throw new NotStreamable('a delimiter line without its line end');
  }

  /** A delimiter of stack[level]: the parts inside it end; returns where scanning goes on. */
  private delimiter(line: Exclude<Line, 'content' | 'wait'>): number {
    while (this.stack.length > line.level + 1) {
      this.stack[this.stack.length - 1]!.current?.end();
      this.stack.pop();
      this.stack[this.stack.length - 1]!.current?.end();
      this.stack[this.stack.length - 1]!.current = null;
    }
    const level = this.stack[line.level]!;
    level.current?.end();
    level.current = null;
    if (line.closing) {
      level.closed = true;
      if (line.level === 0) this.settleMangled();
    } else {
      this.skipping = true;
      this.openAfter = level;
    }
    return line.next;
  }

  header(reader: PartReader, part: FactsPart, open: boolean): boolean {
    const level = this.stack.find((l) => l.current === reader);
    if (level) {
      const parent = level.owner.part!;
      markChild(part, parent, reader.index, FactsFound.cryptoContainer(parent));
      if (this.mangled && level === this.stack[0]) {
        this.mangled.types.push(part.type.type);
        if (!mangledCandidate(this.mangled.types)) this.flushMangled();
      }
    }
    if (!splits(part, this.parts)) return false;
    // A layer of the message itself: looked at now, before any part inside it (as messageFacts does first).
    const inner = reader.topLevel !== null && this.found.topLevel(part, reader.topLevel);
    if (reader.topLevel !== null) this.topNext = null;
    // A multipart that ended with its header has no parts: nothing to follow.
    if (!open) return true;
    const boundary = part.type.params.get('boundary')!;
    if (/[\r\n]/.test(boundary)) throw new NotStreamable('a boundary with a line break');
    const own: Level = { delim: Buffer.from(`--${boundary}`, 'latin1'), owner: reader, current: null, children: 0, closed: false };
    if (inner) this.topNext = { level: reader.topLevel! + 1, in: own };
    if (reader === this.root && part.type.type === 'multipart/mixed') this.mangled = { types: [], held: [], first: null };
    this.stack.push(own);
    return true;
  }

  ended(reader: PartReader): void {
    const part = reader.part!;
    if (reader.split) return;
    if (reader.topLevel !== null) this.found.topLevel(part, reader.topLevel);
    if (this.mangled && reader.depth === 1) this.mangled.held.push(part);
    else this.found.leaf(part);
  }

  private flushMangled(): void {
    const held = this.mangled?.held ?? [];
    this.mangled = null;
    for (const p of held) this.found.leaf(p);
  }

  /** The top-level multipart/mixed has all its children: Exchange's PGP/MIME or not. */
  private settleMangled(): void {
    const m = this.mangled;
    if (!m) return;
    if (isMangledPgpMime(m.types, () => m.first?.blank ?? true)) {
      this.mangled = null;
      this.found.mangled();
    } else this.flushMangled();
  }
}

/**
 * messageFacts of the concatenation of `chunks`, read once. With `size` (the message's length,
 * known beforehand), reading stops as soon as nothing further can change the facts — a single-part
 * message once its header and the prefix its text sniff reads are in.
 */
export async function messageFactsStreamed(chunks: AsyncIterable<Buffer>, size?: number): Promise<StreamedFacts> {
  const s = new Scanner();
  try {
    let stopped = false;
    for await (const chunk of chunks) {
      s.write(chunk);
      if (size !== undefined && s.settled) {
        // The bytes not read cannot change the facts: the end is said now.
        stopped = true;
        break;
      }
    }
    s.end();
    const root = s.root;
    return { kind: 'facts', facts: factsFrom(stopped ? size! : s.size, root.part!.headers, s.found), head: root.head };
  } catch (err) {
    if (err instanceof NotStreamable || err instanceof NotSplittable) return { kind: 'unsure', reason: err.message };
    // A reader bug must not cost the message: the whole-message path reads it instead.
    return { kind: 'unsure', reason: `streamed facts failed: ${(err as Error).message}` };
  }
}
