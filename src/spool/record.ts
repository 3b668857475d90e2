/**
 * The on-disk format of a spool entry. One file holds a header line, the envelope as one JSON line,
 * the message bytes verbatim, and a trailer with the body length and SHA-256, so a torn or damaged
 * file is detected on read instead of being delivered half.
 *
 *   POSTERN-SPOOL/1\n
 *   {"id":"…","envelope":{…},…}\n
 *   <message bytes>
 *   \nPOSTERN-END/1 <length> <sha256 hex>\n
 */
import { createHash } from 'node:crypto';
import { CorruptEntryError, type Envelope } from '../core/index.js';

export const MAGIC = 'POSTERN-SPOOL/1\n';
const TRAILER_TAG = '\nPOSTERN-END/1 ';
/** "\nPOSTERN-END/1 " + up to 15 digits + " " + 64 hex + "\n" */
const MAX_TRAILER = TRAILER_TAG.length + 15 + 1 + 64 + 1;

/** Everything in an entry except the message itself. */
export interface EntryMeta {
  /** Queue id of the message as accepted by smtpd. */
  id: string;
  envelope: Envelope;
  /** For outgoing entries: which recipient group of the message this is (0-based). */
  group?: number;
  /** Free-form per-stage annotations (e.g. the policy outcome later). Never secrets. */
  notes?: Record<string, unknown>;
}

export function encodeHeader(meta: EntryMeta): Buffer {
  // JSON.stringify escapes control characters, so the record is exactly one line.
  return Buffer.from(MAGIC + JSON.stringify(meta) + '\n', 'utf8');
}

export function encodeTrailer(length: number, sha256: string): Buffer {
  return Buffer.from(`${TRAILER_TAG}${length} ${sha256}\n`, 'latin1');
}

/** Incremental encoder for a body that arrives in chunks (smtpd streams DATA to disk). */
export class BodyDigest {
  private readonly hash = createHash('sha256');
  length = 0;
  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.length += chunk.length;
  }
  trailer(): Buffer {
    return encodeTrailer(this.length, this.hash.digest('hex'));
  }
}

export function encodeEntry(meta: EntryMeta, body: Buffer): Buffer[] {
  const d = new BodyDigest();
  d.update(body);
  return [encodeHeader(meta), body, d.trailer()];
}

export interface DecodedEntry {
  meta: EntryMeta;
  body: Buffer;
}

/** Parse just the header of an entry (for listings); `head` may be a prefix of the file. */
export function decodeHeader(file: string, head: Buffer): { meta: EntryMeta; bodyOffset: number } | null {
  if (head.length < MAGIC.length || head.toString('latin1', 0, MAGIC.length) !== MAGIC) {
    throw new CorruptEntryError(file, 'not a Postern spool entry (bad magic)');
  }
  const nl = head.indexOf(0x0a, MAGIC.length);
  if (nl < 0) return null; // header longer than the prefix read
  let meta: EntryMeta;
  try {
    meta = JSON.parse(head.toString('utf8', MAGIC.length, nl)) as EntryMeta;
  } catch {
    throw new CorruptEntryError(file, 'envelope record is not valid JSON');
  }
  if (!meta || typeof meta.id !== 'string' || !meta.envelope || !Array.isArray(meta.envelope.recipients)) {
    throw new CorruptEntryError(file, 'envelope record lacks id or recipients');
  }
  return { meta, bodyOffset: nl + 1 };
}

export function decodeEntry(file: string, data: Buffer): DecodedEntry {
  const header = decodeHeader(file, data);
  if (!header) throw new CorruptEntryError(file, 'truncated envelope record');
  const tail = data.subarray(Math.max(header.bodyOffset, data.length - MAX_TRAILER));
  const at = tail.lastIndexOf(TRAILER_TAG, undefined, 'latin1');
  if (at < 0 || tail[tail.length - 1] !== 0x0a) throw new CorruptEntryError(file, 'end marker missing (truncated write?)');
  const m = /^(\d+) ([0-9a-f]{64})$/.exec(tail.toString('latin1', at + TRAILER_TAG.length, tail.length - 1));
  if (!m) throw new CorruptEntryError(file, 'end marker unreadable');
  const bodyEnd = data.length - (tail.length - at);
  const body = data.subarray(header.bodyOffset, bodyEnd);
  if (body.length !== Number(m[1])) throw new CorruptEntryError(file, `body length ${body.length}, end marker says ${m[1]}`);
  const sum = createHash('sha256').update(body).digest('hex');
  if (sum !== m[2]) throw new CorruptEntryError(file, 'body checksum mismatch');
  return { meta: header.meta, body };
}
