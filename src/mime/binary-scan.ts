/**
 * The MIME structure of a BINARYMIME message (RFC 3030) read from a stream of chunks, byte for
 * byte: where each header block, leaf body, preamble and epilogue starts and ends in the message,
 * and what each region holds (NUL, bare CR or LF, lines over 998 octets, 8-bit octets). data-form.ts
 * decides from it what must be re-encoded before the message can go over DATA.
 *
 * Why not the other parsers of mime/: they take bare LF for a line end (right for mail that came
 * by DATA, where smtpd made lines CRLF) and some normalise line ends first; in binary content a
 * bare LF is data, so here only CRLF ends a line and only "CRLF--boundary" delimits a part
 * (RFC 2046 §5.1.1), also when no LF-only message would parse. A header block with a bare CR, a
 * bare LF or NUL is not guessed at: the structure is "unparseable" and nothing is converted.
 *
 * Untrusted input: the whole message. Linear in its size; holds at most one header block
 * (MAX_HEADER) and a few bytes at chunk edges; nesting and part counts are bounded (LIMITS).
 */
import { LIMITS } from '../core/limits.js';
import { contentTypeOf, parseHeaders } from './header-fields.js';

/** What a region's bytes are like, for the question "does it fit DATA as it is?". */
export interface RegionStats {
  nul: boolean;
  bareCr: boolean;
  bareLf: boolean;
  /** A line longer than 998 octets (RFC 5321 §4.5.3.1.6), CRLF not counted. */
  longLine: boolean;
  eightBit: boolean;
  /** Characters of the base64 alphabet (the decoded size of a base64 body follows from it). */
  base64Chars: number;
}

export const fitsData = (s: RegionStats) => !s.nul && !s.bareCr && !s.bareLf && !s.longLine;

export interface HeaderInfo {
  start: number;
  /** After the empty line that ends the block (or the end of the message). */
  end: number;
  bytes: Buffer;
  type: string;
  /** Content-Transfer-Encoding, lower case; "" when absent. */
  cte: string;
  /** How many Content-Transfer-Encoding fields there are. */
  cteFields: number;
  /** The header ended at the end of the message without its empty line. */
  unterminated: boolean;
}

export type Region =
  | { kind: 'leaf'; head: HeaderInfo; start: number; end: number; stats: RegionStats; signed: boolean; top: boolean }
  | { kind: 'composite'; head: HeaderInfo; signed: boolean; top: boolean }
  | { kind: 'filler'; what: 'preamble' | 'epilogue'; start: number; end: number; stats: RegionStats };

export type Layout = { kind: 'parsed'; regions: Region[]; length: number } | { kind: 'unparseable'; reason: string };

/** A header block larger than this is not read (facts-stream.ts holds the same). */
const MAX_HEADER = 256 * 1024;
/** White space allowed after a boundary before the line end (transport padding). */
const MAX_PADDING = 256;
const CR = 0x0d;
const LF = 0x0a;
const CRLF_DASHES = Buffer.from('\r\n--', 'latin1');
const IDENTITY = new Set(['', '7bit', '8bit', 'binary']);

const isB64 = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') isB64[c.charCodeAt(0)] = 1;

class Stats {
  readonly s: RegionStats = { nul: false, bareCr: false, bareLf: false, longLine: false, eightBit: false, base64Chars: 0 };
  private line = 0;
  private prevCr = false;

  add(b: Buffer, from: number, to: number): void {
    const s = this.s;
    let line = this.line;
    let prevCr = this.prevCr;
    let b64 = 0;
    for (let i = from; i < to; i++) {
      const c = b[i]!;
      if (prevCr && c !== LF) s.bareCr = true;
      if (c === LF) {
        if (!prevCr) s.bareLf = true;
        else line--; // the CR was counted
        if (line > 998) s.longLine = true;
        line = 0;
        prevCr = false;
        continue;
      }
      prevCr = c === CR;
      line++;
      b64 += isB64[c]!;
      if (c === 0) s.nul = true;
      else if (c >= 0x80) s.eightBit = true;
    }
    s.base64Chars += b64;
    this.line = line;
    this.prevCr = prevCr;
  }

  done(): RegionStats {
    if (this.prevCr) this.s.bareCr = true;
    if (this.line - (this.prevCr ? 1 : 0) > 998) this.s.longLine = true;
    return this.s;
  }
}

class Unparseable extends Error {}

interface Frame {
  boundary: Buffer;
  signed: boolean;
}

type State =
  | { at: 'header'; start: number; signed: boolean; top: boolean; chunks: Buffer[]; size: number }
  | { at: 'body'; start: number; stats: Stats; finish: (end: number, stats: RegionStats) => void; lineStart: boolean };

/** Push-style: write() every chunk in order, then end(). */
export class BinaryScanner {
  private readonly regions: Region[] = [];
  private readonly frames: Frame[] = [];
  private state: State = { at: 'header', start: 0, signed: false, top: true, chunks: [], size: 0 };
  /** Offset in the message of pending[0]. */
  private pos = 0;
  private pending: Buffer = Buffer.alloc(0);
  private parts = 0;
  private failed: string | null = null;

  write(chunk: Buffer): void {
    if (this.failed) return;
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.run(false);
  }

  end(): Layout {
    if (!this.failed) this.run(true);
    if (this.failed) return { kind: 'unparseable', reason: this.failed };
    return { kind: 'parsed', regions: this.regions, length: this.pos + this.pending.length };
  }

  private run(eof: boolean): void {
    try {
      while (this.state.at === 'header' ? this.header(eof) : this.body(eof));
    } catch (e) {
      if (!(e instanceof Unparseable)) throw e;
      this.failed = e.message;
    }
  }

  private consume(n: number): void {
    this.pending = this.pending.subarray(n);
    this.pos += n;
  }

  /** Collect a header block; true when it ended and the next state is set. */
  private header(eof: boolean): boolean {
    const st = this.state as Extract<State, { at: 'header' }>;
    const buf = this.pending;
    // The block ends with an empty line; one that starts with it is empty.
    const seen = st.size;
    const all = st.chunks.length ? Buffer.concat([...st.chunks, buf]) : buf;
    let end = all.length >= 2 && all[0] === CR && all[1] === LF ? 2 : -1;
    if (end < 0) {
      const i = all.indexOf('\r\n\r\n', Math.max(0, seen - 3), 'latin1');
      if (i >= 0) end = i + 4;
    }
    if (end < 0 && !eof) {
      if (all.length > MAX_HEADER) throw new Unparseable(`a header block over ${MAX_HEADER} bytes`);
      st.chunks = [Buffer.from(all)];
      st.size = all.length;
      this.consume(buf.length);
      return false;
    }
    const unterminated = end < 0;
    if (unterminated) end = all.length;
    const bytes = Buffer.from(all.subarray(0, end));
    this.consume(end - seen);
    const head = this.describe(bytes, st.start, unterminated);
    this.entity(head, st.signed, st.top);
    return true;
  }

  private describe(bytes: Buffer, start: number, unterminated: boolean): HeaderInfo {
    const stats = new Stats();
    stats.add(bytes, 0, bytes.length);
    const s = stats.done();
    if (s.nul || s.bareCr || s.bareLf) throw new Unparseable(`the header block at offset ${start} holds ${s.nul ? 'NUL' : s.bareCr ? 'a bare CR' : 'a bare LF'}`);
    // A part without its empty line runs into the next delimiter: its "header" is not one.
    for (const f of this.frames) {
      const d = Buffer.concat([Buffer.from('--'), f.boundary]);
      if (bytes.indexOf(d) === 0 || bytes.indexOf(Buffer.concat([Buffer.from('\r\n'), d])) >= 0) throw new Unparseable(`the header block at offset ${start} runs into a delimiter`);
    }
    const fields = parseHeaders(bytes);
    const cteList = fields.get('content-transfer-encoding') ?? [];
    return { start, end: start + bytes.length, bytes, type: contentTypeOf(fields, 'text/plain').type, cte: (cteList[0] ?? '').toLowerCase(), cteFields: cteList.length, unterminated };
  }

  /** An entity's header was read: what its body is. */
  private entity(head: HeaderInfo, signed: boolean, top: boolean): void {
    if (++this.parts > LIMITS.mimeParts) throw new Unparseable(`more than ${LIMITS.mimeParts} parts`);
    const start = this.pos;
    const fields = parseHeaders(head.bytes);
    const ct = contentTypeOf(fields, 'text/plain');
    const boundary = ct.params.get('boundary') ?? '';
    if (ct.type.startsWith('multipart/') && IDENTITY.has(head.cte) && boundary.length >= 1 && boundary.length <= 70) {
      if (this.frames.length >= LIMITS.mimeDepth) throw new Unparseable(`multiparts nested deeper than ${LIMITS.mimeDepth}`);
      this.regions.push({ kind: 'composite', head, signed, top });
      this.frames.push({ boundary: Buffer.from(boundary, 'latin1'), signed: signed || ct.type === 'multipart/signed' });
      this.filler('preamble', start);
      return;
    }
    if ((ct.type === 'message/rfc822' || ct.type === 'message/global') && IDENTITY.has(head.cte)) {
      this.regions.push({ kind: 'composite', head, signed, top });
      this.state = { at: 'header', start, signed, top: false, chunks: [], size: 0 };
      return;
    }
    const at = this.regions.length;
    this.regions.push({ kind: 'leaf', head, start, end: start, stats: new Stats().done(), signed, top });
    this.toBody(start, (end, stats) => {
      const r = this.regions[at] as Extract<Region, { kind: 'leaf' }>;
      r.end = end;
      r.stats = stats;
    });
  }

  private filler(what: 'preamble' | 'epilogue', start: number): void {
    const at = this.regions.length;
    this.regions.push({ kind: 'filler', what, start, end: start, stats: new Stats().done() });
    this.toBody(start, (end, stats) => {
      const r = this.regions[at] as Extract<Region, { kind: 'filler' }>;
      r.end = end;
      r.stats = stats;
    });
  }

  private toBody(start: number, finish: (end: number, stats: RegionStats) => void): void {
    this.state = { at: 'body', start, stats: new Stats(), finish, lineStart: true };
  }

  /** Scan body bytes for a delimiter of an enclosing multipart; true when the state changed. */
  private body(eof: boolean): boolean {
    const st = this.state as Extract<State, { at: 'body' }>;
    const buf = this.pending;
    // A delimiter right at the start of the region (its CRLF ended the header block or the previous delimiter line).
    if (st.lineStart) {
      if (buf.length < 2 && !eof) return false;
      const d = this.delimiterAt(buf, 0, eof);
      if (d === 'wait') return false;
      st.lineStart = false;
      if (d) return this.delimited(st, 0, 0, d);
    }
    let from = 0;
    for (;;) {
      const i = buf.indexOf(CRLF_DASHES, from);
      if (i < 0) break;
      const d = this.delimiterAt(buf, i + 2, eof);
      if (d === 'wait') {
        st.stats.add(buf, 0, i);
        this.consume(i);
        return false;
      }
      if (d) {
        st.stats.add(buf, 0, i);
        return this.delimited(st, i, 2, d);
      }
      from = i + 2;
    }
    if (eof) {
      st.stats.add(buf, 0, buf.length);
      this.consume(buf.length);
      st.finish(this.pos, st.stats.done());
      return false;
    }
    // The last 3 bytes may start a "\r\n--".
    const keep = Math.min(3, buf.length);
    st.stats.add(buf, 0, buf.length - keep);
    this.consume(buf.length - keep);
    return false;
  }

  /**
   * A delimiter line at `at` ("--boundary" of one of the open multiparts, innermost first), or
   * null, or 'wait' for more bytes. `length` covers the line up to its CRLF (or the "--" of a close).
   */
  private delimiterAt(buf: Buffer, at: number, eof: boolean): { frame: number; close: boolean; length: number } | null | 'wait' {
    if (!this.frames.length) return null;
    if (buf.length - at < 2) return eof ? null : 'wait';
    if (buf[at] !== 0x2d || buf[at + 1] !== 0x2d) return null;
    for (let f = this.frames.length - 1; f >= 0; f--) {
      const b = this.frames[f]!.boundary;
      const after = at + 2 + b.length;
      if (buf.length < after) {
        if (!eof && buf.compare(b, 0, buf.length - at - 2, at + 2) === 0) return 'wait';
        continue;
      }
      if (buf.compare(b, 0, b.length, at + 2, after) !== 0) continue;
      if (buf.length < after + 2 && !eof) return 'wait';
      if (buf[after] === 0x2d && buf[after + 1] === 0x2d) return { frame: f, close: true, length: after + 2 - at };
      let j = after;
      while (j < buf.length && j - after <= MAX_PADDING && (buf[j] === 0x20 || buf[j] === 0x09)) j++;
      if (j + 2 > buf.length) {
        if (!eof && j - after <= MAX_PADDING) return 'wait';
        continue;
      }
      if (buf[j] === CR && buf[j + 1] === LF) return { frame: f, close: false, length: j + 2 - at };
    }
    return null;
  }

  /**
   * The region ends at `at`, where the delimiter starts with its CRLF (`lead` 2) or, at the start
   * of a line already ended, without it (`lead` 0); then what follows the delimiter line.
   */
  private delimited(st: Extract<State, { at: 'body' }>, at: number, lead: number, d: { frame: number; close: boolean; length: number }): boolean {
    this.consume(at);
    st.finish(this.pos, st.stats.done());
    // Multiparts inside the one this delimiter belongs to end here without their close delimiter.
    this.frames.length = d.frame + 1;
    const frame = this.frames[d.frame]!;
    this.consume(lead + d.length);
    if (d.close) {
      this.frames.pop();
      this.filler('epilogue', this.pos);
      (this.state as Extract<State, { at: 'body' }>).lineStart = false;
    } else {
      this.state = { at: 'header', start: this.pos, signed: frame.signed, top: false, chunks: [], size: 0 };
    }
    return true;
  }
}

/** The layout of a message in memory. */
export function scanBinary(message: Buffer): Layout {
  const s = new BinaryScanner();
  s.write(message);
  return s.end();
}

/** The layout of a message read as a stream (a spool file range). */
export async function scanBinaryChunks(chunks: AsyncIterable<Buffer>): Promise<Layout> {
  const s = new BinaryScanner();
  for await (const c of chunks) s.write(c);
  return s.end();
}

export { IDENTITY as IDENTITY_ENCODINGS };
