/**
 * The on-disk format of a spool entry. One file holds a header line, the envelope as one JSON line,
 * the message bytes verbatim, and a trailer with the body length and SHA-256, so a torn or damaged
 * file is detected on read instead of being delivered half.
 *
 *   POSTERN-SPOOL/1\n
 *   {"id":"…","envelope":{…},…}\n
 *   <message bytes>
 *   \nPOSTERN-END/1 <length> <sha256 hex>\n
 *   POSTERN-STATUS/1 {"t":"rcpt",…}\n        (zero or more, appended by the relay)
 *
 * Status records are how the relay remembers, durably and inside the entry itself, what happened
 * to each recipient (Postfix marks done recipients in its queue file the same way): they are
 * appended with O_APPEND and fdatasync, so a move between queues carries them along, and the
 * message bytes are never rewritten. They hold no raw newline (JSON escapes it), so the last
 * "\nPOSTERN-END/1 " in a file is always the real end marker even when the body contains that text.
 */
import { createHash } from 'node:crypto';
import { CorruptEntryError, readNotes, type EntryNotes, type Envelope, type HoldNotes } from '../core/index.js';

export const MAGIC = 'POSTERN-SPOOL/1\n';
const TRAILER_TAG = '\nPOSTERN-END/1 ';
const TRAILER_TAG_BYTES = Buffer.from(TRAILER_TAG, 'latin1');
const STATUS_TAG = 'POSTERN-STATUS/1 ';

/** Everything in an entry except the message itself. */
export interface EntryMeta {
  /** Queue id of the message as accepted by smtpd. */
  id: string;
  envelope: Envelope;
  /** For outgoing entries: which recipient group of the message this is (0-based). */
  group?: number;
  /** What one stage tells the next (core/notes.ts), read defensively. Never secrets. */
  notes?: EntryNotes;
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
  // Notes of the wrong shape are dropped, not fatal: the message is still deliverable without them.
  if (meta.notes !== undefined) {
    const notes = readNotes(meta.notes);
    if (notes) meta.notes = notes;
    else delete meta.notes;
  }
  return { meta, bodyOffset: nl + 1 };
}

/** What happened to one recipient in one delivery attempt. */
export interface RecipientRecord {
  t: 'rcpt';
  /** ISO 8601. */
  at: string;
  rcpt: string;
  status: 'delivered' | 'deferred' | 'failed';
  /** The next hop's reply line, or our own reason. */
  reply: string;
  /** The enhanced status code of our own reason (absent: read it from `reply`). */
  dsn?: string;
  /** Host name of the next hop that gave `reply`, when one did. */
  remote?: string;
  /** Failed because max_queue_lifetime ran out while deferred (`reply` is the last one seen). */
  expired?: boolean;
  /** Delivered to a next hop that took the recipient's DSN request over (RFC 3461 §6.2.1). */
  dsnPassed?: boolean;
  /** The TLS of the session the reply came over: "TLSv1.3 TLS_AES_256_GCM_SHA384 verified" (relay/tls-peer.ts). */
  tls?: string;
}

/** An attempt that left recipients deferred, and when the next one is due. */
export interface AttemptRecord {
  t: 'attempt';
  at: string;
  /** 1-based number of this attempt. */
  n: number;
  /** ISO 8601 time of the next attempt. */
  next: string;
}

/** A delivery status notification about these recipients was queued (as message `id`). */
export interface DsnRecord {
  t: 'dsn';
  at: string;
  kind: 'failure' | 'delay' | 'success';
  rcpts: string[];
  id: string;
}

/**
 * An admin's `queue hold` of an entry the relay was delivering at that moment, or a hold by the
 * gateway itself (a message that crashed its worker): the entry goes to hold/ instead of being
 * tried again. Travels with the file, so a hold cannot be lost to a move that races with it.
 */
export interface HoldRecord {
  t: 'hold';
  at: string;
  reason: string;
  /** Which held outcome this is (core/outcomes.ts), for the gateway's own holds: `queue show` names it. */
  heldAs?: HoldNotes['heldAs'];
}

/** `queue release`: cancels earlier hold records and the crash count before it. */
export interface ReleaseRecord {
  t: 'release';
  at: string;
}

/**
 * The process that had claimed this entry died before it was done (written when the entry is
 * reclaimed). `alone`: it was the only entry that process had claimed, so the crash is likely its
 * own doing.
 */
export interface CrashRecord {
  t: 'crash';
  at: string;
  alone: boolean;
}

export type StatusRecord = RecipientRecord | AttemptRecord | DsnRecord | HoldRecord | ReleaseRecord | CrashRecord;
const RECORD_TYPES = new Set<string>(['rcpt', 'attempt', 'dsn', 'hold', 'release', 'crash']);

/** The hold asked for by the last hold/release record, if the last one is a hold. */
export function holdRequested(status: readonly StatusRecord[]): HoldRecord | null {
  for (let i = status.length - 1; i >= 0; i--) {
    const r = status[i]!;
    if (r.t === 'release') return null;
    if (r.t === 'hold') return r;
  }
  return null;
}

/** Crashes recorded since the last release: all of them, and those where the entry was alone. */
export function crashesSinceRelease(status: readonly StatusRecord[]): { total: number; alone: number } {
  let total = 0;
  let alone = 0;
  for (let i = status.length - 1; i >= 0; i--) {
    const r = status[i]!;
    if (r.t === 'release') break;
    if (r.t !== 'crash') continue;
    total++;
    if (r.alone) alone++;
  }
  return { total, alone };
}

export function encodeStatus(records: readonly StatusRecord[]): Buffer {
  return Buffer.from(records.map((r) => STATUS_TAG + JSON.stringify(r) + '\n').join(''), 'utf8');
}

/**
 * Parse the status region after the end marker. A record torn by a crash or power loss (half a
 * line, zero bytes) is skipped: it was never confirmed durable, so nothing relied on it.
 */
export function decodeStatus(region: Buffer): StatusRecord[] {
  const out: StatusRecord[] = [];
  for (const line of region.toString('utf8').split('\n')) {
    // Normally the tag starts the line; after a torn record the next one shares its line. The
    // first occurrence that parses to the end of the line wins, so a reply quoting the tag inside
    // a record's JSON string cannot hide or forge anything.
    for (let at = line.indexOf(STATUS_TAG); at >= 0; at = line.indexOf(STATUS_TAG, at + 1)) {
      try {
        const r = JSON.parse(line.slice(at + STATUS_TAG.length)) as StatusRecord;
        if (r && typeof r === 'object' && RECORD_TYPES.has(r.t)) out.push(r);
        break;
      } catch {
        /* torn record: try the next occurrence */
      }
    }
  }
  return out;
}

export interface DecodedEntry {
  meta: EntryMeta;
  body: Buffer;
  /** Status records appended by the relay, oldest first (empty for a fresh entry). */
  status: StatusRecord[];
}

/** Parse the end marker at `at`: the body length and checksum, and where the status region starts. */
function parseTrailer(file: string, data: Buffer, at: number): { length: number; sha256: string; statusStart: number } {
  const nl = data.indexOf(0x0a, at + TRAILER_TAG_BYTES.length);
  if (nl < 0) throw new CorruptEntryError(file, 'end marker missing (truncated write?)');
  const m = /^(\d{1,15}) ([0-9a-f]{64})$/.exec(data.toString('latin1', at + TRAILER_TAG_BYTES.length, nl));
  if (!m) throw new CorruptEntryError(file, 'end marker unreadable');
  return { length: Number(m[1]), sha256: m[2]!, statusStart: nl + 1 };
}

export function decodeEntry(file: string, data: Buffer): DecodedEntry {
  const header = decodeHeader(file, data);
  if (!header) throw new CorruptEntryError(file, 'truncated envelope record');
  const at = data.lastIndexOf(TRAILER_TAG_BYTES);
  if (at < header.bodyOffset) throw new CorruptEntryError(file, 'end marker missing (truncated write?)');
  const t = parseTrailer(file, data, at);
  const body = data.subarray(header.bodyOffset, at);
  if (body.length !== t.length) throw new CorruptEntryError(file, `body length ${body.length}, end marker says ${t.length}`);
  const sum = createHash('sha256').update(body).digest('hex');
  if (sum !== t.sha256) throw new CorruptEntryError(file, 'body checksum mismatch');
  return { meta: header.meta, body, status: decodeStatus(data.subarray(t.statusStart)) };
}

/**
 * The status records from the last bytes of an entry, without reading (or checking) the body:
 * for listings. `tail` is the file's suffix; null when the end marker is not inside it.
 */
export function decodeStatusFromTail(file: string, tail: Buffer): StatusRecord[] | null {
  const at = tail.lastIndexOf(TRAILER_TAG_BYTES);
  if (at < 0) return null;
  return decodeStatus(tail.subarray(parseTrailer(file, tail, at).statusStart));
}
