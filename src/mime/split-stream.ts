/**
 * One multipart body split as multipartLayout() splits it (entity.ts), from a stream of chunks:
 * the bytes of its preamble, of each part and of its epilogue, handed on as they come, for a
 * body too large to hold. Only this multipart's own boundary counts (multipartLayout does not
 * look inside its parts either). Where the layout takes a part twice (a delimiter line at the
 * very end, without its line break, after an earlier part) the splitter throws NotSplittable.
 *
 * Untrusted input: the body. Linear in its size; it holds a few bytes at chunk edges.
 */
export type Region = 'preamble' | 'epilogue' | number;

export class NotSplittable extends Error {}

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const NL_DASHES = Buffer.from('\n--', 'latin1');
/** White space after a delimiter waited for before it is taken as not one. */
const WS_CAP = 4096;

export class MultipartSplitter {
  /** Parts begun so far (the index of the next one). */
  parts = 0;
  closed = false;
  private region: Region = 'preamble';
  private readonly delim: Buffer;
  private tail: Buffer = Buffer.alloc(0);
  /** Inside a delimiter line, up to its LF. */
  private skipping = false;
  /** The scan position is the start of a line whose LF a delimiter line took. */
  private atLineStart = true;

  constructor(
    boundary: string,
    /** Bytes of a region, in order; a region with no bytes may not be named at all. */
    private readonly on: (region: Region, bytes: Buffer) => void,
  ) {
    this.delim = Buffer.from(`--${boundary}`, 'latin1');
  }

  write(chunk: Buffer): void {
    const buf = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    this.tail = Buffer.from(buf.subarray(this.scan(buf, false)));
  }

  end(): void {
    this.scan(this.tail, true);
    // multipartLayout: no line end after the last delimiter — the part before it is taken again, to the end.
    if (this.skipping && !this.closed && this.parts > 0) throw new NotSplittable('a delimiter line without its line end at the end');
  }

  private emit(buf: Buffer, from: number, to: number): void {
    if (to > from) this.on(this.region, buf.subarray(from, to));
  }

  private scan(buf: Buffer, eof: boolean): number {
    let pos = 0;
    for (;;) {
      if (this.skipping) {
        const nl = buf.indexOf(LF, pos);
        if (nl < 0) return buf.length;
        this.skipping = false;
        pos = nl + 1;
        if (this.closed) this.region = 'epilogue';
        else {
          this.region = this.parts++;
          this.atLineStart = true;
        }
      }
      if (this.region === 'epilogue') {
        this.emit(buf, pos, buf.length);
        return buf.length;
      }
      if (this.atLineStart) {
        const line = this.line(buf, pos, eof);
        if (line === 'wait') return pos;
        this.atLineStart = false;
        if (line !== null) {
          pos = this.delimiter(line);
          continue;
        }
      }
      const c = buf.indexOf(NL_DASHES, pos);
      if (c < 0) {
        const end = eof ? buf.length : heldBack(buf, pos);
        this.emit(buf, pos, end);
        return end;
      }
      const brk = c > pos && buf[c - 1] === CR ? c - 1 : c;
      const line = this.line(buf, c + 1, eof);
      if (line === 'wait') {
        this.emit(buf, pos, brk);
        return brk;
      }
      if (line === null) {
        this.emit(buf, pos, c + 1);
        pos = c + 1;
      } else {
        this.emit(buf, pos, brk);
        pos = this.delimiter(line);
      }
    }
  }

  private line(buf: Buffer, p: number, eof: boolean): Delimiter | null | 'wait' {
    return delimiterAt(buf, p, this.delim, eof);
  }

  private delimiter(line: Delimiter): number {
    this.skipping = true;
    if (line.closing) this.closed = true;
    return line.next;
  }
}

export interface Delimiter {
  closing: boolean;
  /** Where the rest of its line begins. */
  next: number;
}

/**
 * Is the line at `p` the delimiter `delim` ("--" boundary), as multipartLayout takes it: then "--"
 * (the close), or white space up to a CR, an LF or the end? 'wait': more bytes are needed to know.
 */
export function delimiterAt(buf: Buffer, p: number, delim: Buffer, eof: boolean): Delimiter | null | 'wait' {
  const have = Math.min(buf.length - p, delim.length);
  if (buf.compare(delim, 0, have, p, p + have) !== 0) return null;
  if (have < delim.length) return eof ? null : 'wait';
  let a = p + delim.length;
  if (!eof && a + 2 > buf.length) return 'wait';
  if (buf[a] === DASH && buf[a + 1] === DASH) return { closing: true, next: a + 2 };
  while (buf[a] === 0x20 || buf[a] === 0x09) a++;
  if (a === buf.length) {
    if (eof) return { closing: false, next: a };
    if (a - p > WS_CAP) throw new NotSplittable('a delimiter line of white space without end');
    return 'wait';
  }
  return buf[a] === CR || buf[a] === LF ? { closing: false, next: a } : null;
}

/** Where content may safely end in `buf`: a final "\n" or "\n-" may begin a delimiter line, with its CR; a final CR may be a line break's. */
export function heldBack(buf: Buffer, pos: number): number {
  let end = buf.length;
  if (end - 1 >= pos && buf[end - 1] === LF) end -= 1;
  else if (end - 2 >= pos && buf[end - 2] === LF && buf[end - 1] === DASH) end -= 2;
  if (end - 1 >= pos && buf[end - 1] === CR) end -= 1;
  return end;
}
