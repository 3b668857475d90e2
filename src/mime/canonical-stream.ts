/**
 * canonicalEntity() (entity.ts) of a multipart entity too large to hold, as a stream: the form a
 * signature is made over when a part is 8-bit — a mail client's UTF-8 text part beside a large
 * base64 attachment. canonicalEntity re-encodes each part that is not 7-bit clean and keeps the
 * others byte for byte; here the body is read twice: once to split it (split-stream.ts) and learn
 * which parts are clean, keeping the small unclean ones, which canonicalEntity itself then
 * re-encodes in memory; again while the result is written, the clean parts and the large ones
 * canonicalEntity keeps as they are (base64, quoted-printable, message/*) streamed through. The
 * same bytes as canonicalEntity(whole) — or null where that would need a large part re-encoded or
 * a nested multipart rebuilt, and the caller takes the in-memory path.
 *
 * Input: the entity's header block (Content-* fields and the empty line) and its body, in CRLF,
 * not 7-bit clean as a whole (canonicalScan said so: else canonicalEntity keeps it as it is).
 * Memory: at most SMALL_PART for the part being read, HELD for the re-encoded ones.
 */
import { canonicalEntity, readEntity, sevenBitClean, withField } from './entity.js';
import { splitHeader } from './header-fields.js';
import { MultipartSplitter, NotSplittable, type Region } from './split-stream.js';
import { MAX_PARTS } from './facts-parts.js';

/** A part up to this size that is not 7-bit clean is re-encoded in memory. */
const SMALL_PART = 1 << 20;
/** Bytes held for re-encoding, all parts together (the preamble and epilogue included). */
const HELD = 4 << 20;
/** The start of a large part read to know how canonicalEntity treats it. */
const PART_START = 64 * 1024;
const CRLF = Buffer.from('\r\n');

/** What one region of the body was like (first pass). */
class Seen {
  clean = true;
  size = 0;
  private line = 0;
  private kept: Buffer[] | null = [];
  private readonly start: Buffer[] = [];
  constructor(private readonly keepUpTo: number) {}

  add(b: Buffer): void {
    if (this.size < PART_START) this.start.push(Buffer.from(b.subarray(0, PART_START - this.size)));
    this.size += b.length;
    if (this.clean) this.clean = this.stillClean(b);
    if (this.kept && this.size <= this.keepUpTo) this.kept.push(Buffer.from(b));
    else this.kept = null;
  }

  /** The region ended: its bytes stay only if it is to be re-encoded; returns how many stay. */
  done(): number {
    if (this.clean) {
      this.kept = null;
      this.start.length = 0;
    }
    return this.kept ? this.size : 0;
  }

  bytes(): Buffer | null {
    return this.kept ? Buffer.concat(this.kept) : null;
  }

  startBytes(): Buffer {
    return Buffer.concat(this.start);
  }

  /** sevenBitClean() across pieces: no 8-bit byte, no NUL, no line over 998 characters. */
  private stillClean(b: Buffer): boolean {
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      if (c >= 0x80 || c === 0) return false;
      if (c === 0x0a) this.line = 0;
      else if (++this.line > 998) return false;
    }
    return true;
  }
}

type Plan = { kind: 'as-is' } | { kind: 'bytes'; bytes: Buffer };

/** canonicalEntity keeps a part as it is (after CRLF) when it is message/*, base64 or quoted-printable, or its header is not 7-bit. */
function keptAsIs(start: Buffer): boolean {
  const { header, bodyOffset } = splitHeader(start);
  if (bodyOffset >= start.length) return false;
  const e = readEntity(start);
  if (e.type.type.startsWith('multipart/') && e.type.params.get('boundary')) return false;
  return e.type.type.startsWith('message/') || e.encoding === 'base64' || e.encoding === 'quoted-printable' || !sevenBitClean(header);
}

/** canonicalEntity(head + body) as chunks, for a multipart entity; null when it cannot be streamed. `body` is read once here and once per use of the result. */
export async function canonicalMultipartChunks(head: Buffer, body: () => AsyncIterable<Buffer>): Promise<(() => AsyncIterable<Buffer>) | null> {
  const e = readEntity(head);
  const boundary = e.type.params.get('boundary');
  if (!e.type.type.startsWith('multipart/') || !boundary) return null;
  const regions = new Map<Region, Seen>();
  let last: Seen | null = null;
  let held = 0;
  const splitter = new MultipartSplitter(boundary, (region, bytes) => {
    let seen = regions.get(region);
    if (!seen) {
      if ((held += last?.done() ?? 0) > HELD) throw new NotSplittable('too much to re-encode');
      regions.set(region, (seen = new Seen(typeof region === 'number' ? SMALL_PART : 0)));
      last = seen;
    }
    seen.add(bytes);
  });
  try {
    for await (const chunk of body()) splitter.write(chunk);
    splitter.end();
  } catch (err) {
    if (err instanceof NotSplittable) return null;
    throw err;
  }
  if (splitter.parts >= MAX_PARTS) return null;
  const plans: Plan[] = [];
  let reencoded = 0;
  for (let i = 0; i < splitter.parts; i++) {
    const seen = regions.get(i);
    if (!seen || seen.clean) plans.push({ kind: 'as-is' });
    else {
      const bytes = seen.bytes();
      if (bytes) {
        const canonical = canonicalEntity(bytes, 1);
        if ((reencoded += canonical.length) > HELD) return null;
        plans.push({ kind: 'bytes', bytes: canonical });
      } else if (keptAsIs(seen.startBytes())) plans.push({ kind: 'as-is' });
      else return null;
    }
  }
  const kept = (r: Seen | undefined) => r !== undefined && r.size > 0 && r.clean;
  const top = Buffer.concat([withField(splitHeader(head).header, 'Content-Transfer-Encoding', null), CRLF]);
  return () => canonicalChunks(top, boundary, kept(regions.get('preamble')), kept(regions.get('epilogue')), plans, body);
}

/** The second pass: `pre`/`epi`: the preamble/epilogue is written (non-empty and clean). */
async function* canonicalChunks(top: Buffer, boundary: string, pre: boolean, epi: boolean, plans: Plan[], body: () => AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const delimiter = Buffer.from(`--${boundary}\r\n`, 'latin1');
  let out: Buffer[] = [top];
  let preOpen = pre;
  let started = 0;
  let finished = false;
  /** The delimiter lines of the parts up to `i` (a CRLF ends the preamble or the part before), and the re-encoded parts. */
  const startUpTo = (i: number) => {
    for (; started <= i; started++) {
      if (started > 0 || preOpen) out.push(CRLF);
      preOpen = false;
      out.push(delimiter);
      const plan = plans[started]!;
      if (plan.kind === 'bytes') out.push(plan.bytes);
    }
  };
  const finish = () => {
    if (finished) return;
    finished = true;
    startUpTo(plans.length - 1);
    if (plans.length || preOpen) out.push(CRLF);
    out.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  };
  const splitter = new MultipartSplitter(boundary, (region, bytes) => {
    if (region === 'preamble') {
      if (pre) out.push(Buffer.from(bytes));
    } else if (region === 'epilogue') {
      finish();
      if (epi) out.push(Buffer.from(bytes));
    } else {
      startUpTo(region);
      if (plans[region]!.kind === 'as-is') out.push(Buffer.from(bytes));
    }
  });
  for await (const chunk of body()) {
    splitter.write(chunk);
    if (out.length) {
      yield* out;
      out = [];
    }
  }
  splitter.end();
  finish();
  yield* out;
}
