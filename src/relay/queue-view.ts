/**
 * What an admin sees of the queue: one row per spool entry (`postern queue list`, GET /api/queue)
 * and the envelope with each recipient's state (`postern queue show`, GET /api/queue/:id), both
 * read from the entries' headers and status records — never their bodies. It lives beside the
 * relay because a recipient's state is what the relay's status records say (state.ts).
 *
 * Untrusted input: the envelopes (addresses, the client's HELO) and the next hops' replies are
 * returned as they were stored; whoever prints them escapes them. The filter's texts come from
 * the admin's caller and are only compared.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { addressKey, canonicalAddress, canonicalDomain, type Envelope } from '../core/index.js';
import { crashesSinceRelease, holdRequested, type QueueEntryInfo, type QueueName, type Spool } from '../spool/index.js';
import { entryState, type RecipientState } from './state.js';

/** The queues an admin lists: all of them but tmp/ (files being written). */
export const LISTED_QUEUES: readonly QueueName[] = ['incoming', 'active', 'outgoing', 'delivering', 'deferred', 'hold', 'corrupt'];

export interface QueueRecipientRow {
  address: string;
  state: RecipientState['state'];
  /** The last reply about this recipient (a next hop's, or Postern's own). */
  reply?: string;
}

export interface QueueRow {
  /** File name in its queue: the queue id, or "<id>.<group>" for an entry of a recipient group. */
  name: string;
  id: string;
  queue: QueueName;
  size: number;
  /** When smtpd accepted the message (the file's time when the header cannot be read). */
  arrival: string;
  age_s: number;
  /** "" for the null sender <> (and for an unreadable entry). */
  sender: string;
  recipients: QueueRecipientRow[];
  attempts?: number;
  next_attempt?: string;
  /** Why it waits: the first deferred recipient's last reply, or the hold's reason. */
  last_error?: string;
  /** The held outcome (core/outcomes.ts) of an entry in hold/, when the gateway recorded it. */
  held_as?: string;
  /** Why the entry could not be read (corrupt/, or it moved while being read). */
  error?: string;
}

export interface QueueFilter {
  queue?: QueueName;
  /** Part of the sender's address (any spelling: compared in canonical, case-folded form). */
  sender?: string;
  /** Part of any recipient's address, likewise. */
  recipient?: string;
  /** At most this many rows, oldest first. */
  limit?: number;
}

/**
 * Why an entry is (to be) held: in hold/, the worker's note or the hold record (an admin's, or the
 * crash count's); elsewhere only a hold record counts (asked for during a delivery attempt).
 */
function holdReasonOf(e: QueueEntryInfo): string | undefined {
  const note = e.meta?.notes?.holdReason;
  if (e.queue === 'hold' && typeof note === 'string') return note;
  return holdRequested(e.status ?? [])?.reason;
}

function heldAsOf(e: QueueEntryInfo): string | undefined {
  if (e.queue !== 'hold') return undefined;
  const note = e.meta?.notes?.heldAs;
  if (typeof note === 'string') return note;
  return holdRequested(e.status ?? [])?.heldAs;
}

/**
 * The forms a search text may take in a stored address: as typed (case-folded, NFKC) and, where
 * it is an address or ends in a domain, canonical — so "Bob@Ｐartner.example" or "bücher.example"
 * finds what the spool stores as "bob@partner.example" or "xn--bcher-kva.example".
 */
function needles(text: string): string[] {
  const folded = text.normalize('NFKC').toLowerCase();
  const out = new Set([folded]);
  const whole = canonicalAddress(text);
  if (whole) out.add(addressKey(whole));
  const at = folded.lastIndexOf('@');
  const domain = canonicalDomain(at < 0 ? folded : folded.slice(at + 1));
  if (domain) out.add(at < 0 ? domain : `${folded.slice(0, at + 1)}${domain}`);
  return [...out].filter(Boolean);
}

function matcher(text: string | undefined): ((address: string) => boolean) | null {
  if (!text) return null;
  const forms = needles(text);
  return (address) => {
    const hay = address ? addressKey(address) : '';
    return forms.some((n) => hay.includes(n));
  };
}

export function queueRow(e: QueueEntryInfo, now = Date.now()): QueueRow {
  const received = e.meta ? Date.parse(e.meta.envelope.receivedAt) : NaN;
  const arrival = Number.isFinite(received) ? received : e.mtime.getTime();
  const state = e.meta ? entryState(e.meta.envelope, e.status ?? []) : undefined;
  const holdReason = holdReasonOf(e);
  const lastError = state?.recipients.find((r) => r.state === 'deferred')?.last?.reply ?? holdReason;
  const heldAs = heldAsOf(e);
  return {
    name: e.name,
    id: e.id,
    queue: e.queue,
    size: e.size,
    arrival: new Date(arrival).toISOString(),
    age_s: Math.max(0, Math.round((now - arrival) / 1000)),
    sender: e.meta?.envelope.sender ?? '',
    recipients: state?.recipients.map((r) => ({ address: r.address, state: r.state, ...(r.last ? { reply: r.last.reply } : {}) })) ?? [],
    ...(state && state.attempts ? { attempts: state.attempts } : {}),
    ...(state && state.nextAttempt && e.queue === 'deferred' ? { next_attempt: new Date(state.nextAttempt).toISOString() } : {}),
    ...(lastError ? { last_error: lastError } : {}),
    ...(heldAs ? { held_as: heldAs } : {}),
    ...(e.error ? { error: e.error } : {}),
  };
}

/**
 * The entries that match `filter`, oldest first, and how many matched before the limit cut the
 * list. With a sender or recipient filter every entry's header and status records are read; without
 * one, only the file times of all and the headers of the page. Bodies are never read.
 */
export async function queueRows(spool: Spool, filter: QueueFilter = {}, now = Date.now()): Promise<{ rows: QueueRow[]; total: number }> {
  const queues = filter.queue ? [filter.queue] : LISTED_QUEUES;
  const bySender = matcher(filter.sender);
  const byRecipient = matcher(filter.recipient);
  const oldestFirst = (a: { mtime: Date }, b: { mtime: Date }) => a.mtime.getTime() - b.mtime.getTime();
  if (!bySender && !byRecipient && filter.limit !== undefined) {
    const { page, total } = await oldestNames(spool, queues, filter.limit);
    const entries = await spool.inspect(queues, true, (q, name) => page.has(`${q}/${name}`));
    return { rows: entries.sort(oldestFirst).map((e) => queueRow(e, now)), total };
  }
  const entries = await spool.inspect(queues, true);
  const rows = entries
    .sort(oldestFirst)
    .filter((e) => !bySender || bySender(e.meta?.envelope.sender ?? ''))
    .filter((e) => !byRecipient || (e.meta?.envelope.recipients ?? []).some((r) => byRecipient(r.address)))
    .map((e) => queueRow(e, now));
  return { rows: filter.limit !== undefined ? rows.slice(0, filter.limit) : rows, total: rows.length };
}

/** "queue/name" of the `limit` oldest entries by file time, and how many there are. */
async function oldestNames(spool: Spool, queues: readonly QueueName[], limit: number): Promise<{ page: Set<string>; total: number }> {
  const stamped: { key: string; mtime: number }[] = [];
  for (const q of queues) {
    for (const name of await spool.list(q)) {
      if (q === 'corrupt' && name.endsWith('.reason')) continue;
      const st = await stat(join(spool.dir(q), name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null; // moved on meanwhile
        throw err;
      });
      if (st) stamped.push({ key: `${q}/${name}`, mtime: st.mtimeMs });
    }
  }
  stamped.sort((a, b) => a.mtime - b.mtime);
  return { page: new Set(stamped.slice(0, limit).map((s) => s.key)), total: stamped.length };
}

export interface QueueRecipientView {
  address: string;
  state: RecipientState['state'];
  notify?: string[];
  orcpt?: string;
  /** The spelling the client used, where it said more than letter case (core/address.ts). */
  written?: string;
  at?: string;
  reply?: string;
  dsn?: string;
  remote?: string;
  /** TLS version, cipher and verification of the session that gave `reply`. */
  tls?: string;
  expired?: true;
  /** Delivery status notifications already queued for this recipient. */
  notices: string[];
}

/** One spool entry of a message, as `queue show` prints it. */
export interface QueueEntryView {
  name: string;
  queue: QueueName;
  size: number;
  error?: string;
  hold_reason?: string;
  held_as?: string;
  /** A hold record outside hold/: asked for during a delivery attempt, acted on when it ends. */
  hold_requested?: string;
  worker_crashes?: number;
  envelope?: Envelope;
  attempts?: number;
  next_attempt?: string;
  recipients?: QueueRecipientView[];
}

function recipientView(s: RecipientState, env: Envelope): QueueRecipientView {
  const rcpt = env.recipients.find((r) => r.address === s.address);
  const last = s.last;
  return {
    address: s.address,
    state: s.state,
    ...(rcpt?.notify ? { notify: [...rcpt.notify] } : {}),
    ...(rcpt?.orcpt ? { orcpt: rcpt.orcpt } : {}),
    ...(rcpt?.original ? { written: rcpt.original } : {}),
    ...(last ? { at: last.at, reply: last.reply, ...(last.dsn ? { dsn: last.dsn } : {}), ...(last.remote ? { remote: last.remote } : {}), ...(last.tls ? { tls: last.tls } : {}), ...(last.expired ? { expired: true as const } : {}) } : {}),
    notices: [...s.notices],
  };
}

export function queueEntryView(e: QueueEntryInfo): QueueEntryView {
  const state = e.meta ? entryState(e.meta.envelope, e.status ?? []) : undefined;
  const holdReason = holdReasonOf(e);
  const heldAs = heldAsOf(e);
  const crashes = crashesSinceRelease(e.status ?? []);
  return {
    name: e.name,
    queue: e.queue,
    size: e.size,
    ...(e.error ? { error: e.error } : {}),
    ...(holdReason && e.queue === 'hold' ? { hold_reason: holdReason } : {}),
    ...(heldAs ? { held_as: heldAs } : {}),
    ...(holdReason && e.queue !== 'hold' ? { hold_requested: holdReason } : {}),
    ...(crashes.total ? { worker_crashes: crashes.total } : {}),
    ...(e.meta ? { envelope: e.meta.envelope } : {}),
    ...(state
      ? {
          attempts: state.attempts,
          ...(state.nextAttempt && e.queue === 'deferred' ? { next_attempt: new Date(state.nextAttempt).toISOString() } : {}),
          recipients: state.recipients.map((r) => recipientView(r, e.meta!.envelope)),
        }
      : {}),
  };
}

/** Every entry of a message (a queue id) or the one entry of that name; empty when none. */
export async function queueEntryViews(spool: Spool, selector: string): Promise<QueueEntryView[]> {
  // active/ and delivering/ names carry the claimer's pid after the id: the id is their first part.
  const mine = await spool.inspect(LISTED_QUEUES, true, (_q, name) => name === selector || name.split('.')[0] === selector);
  return mine.map(queueEntryView);
}
