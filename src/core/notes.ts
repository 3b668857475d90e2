/**
 * The notes a spool entry carries beside its envelope: what the worker tells the relay about an
 * outgoing entry (a policy refusal, a decrypted copy, the original to return in a bounce), what
 * the relay records on a notice it queued, and why a held entry is held. Written as JSON in the
 * entry's header line (spool/record.ts).
 *
 * The spool is a contract: entries queued by an older Postern must still be delivered by a newer
 * one. So these keys are never renamed, only added, and readNotes() reads what is on disk
 * defensively — a value of the wrong type is dropped (the relay then does what it does without
 * that note), and keys it does not know are kept as they are.
 */
import { isOutcomeKind, type OutcomeKind } from './outcomes.js';

/** What a bounce may return of a message the worker transformed (dsn/original.ts). */
export interface KeptOriginal {
  /** The whole original, or its header block only. */
  part: 'message' | 'headers';
  /** The bytes, base64 (they need not be UTF-8, and the notes are JSON). */
  data: string;
}

/** Notes on an entry in outgoing/ (and deferred/, delivering/): the worker → relay hand-off. */
export interface OutgoingNotes {
  /**
   * The policy refused these recipients: the relay fails them with this reason and bounces,
   * never delivers. The reply is `rejectAs`'s (550 5.7.1 for both kinds today).
   */
  reject?: string;
  /** Which refusal `reject` is: bounced_policy (also when absent: entries from before), bounced_encryption or bounced_conversion (BINARYMIME). */
  rejectAs?: RejectOutcome;
  /** The body is a copy Postern decrypted: a notice returns headers only, never the plaintext. */
  decrypted?: boolean;
  /** The sender's original, for notices about a transformed copy (dsn/original.ts). */
  original?: KeptOriginal;
  /** A policy copy (archive, supervisor) of message `copyOf`: no notices go back for it. */
  copyOf?: string;
  /** A notify_sender report or admin alert about message `noticeOf`. */
  noticeOf?: string;
  /** A delivery status notification the relay queued: its kind and the message it is about. */
  dsn?: 'failure' | 'delay' | 'success';
  about?: string;
  /** The notice goes to the postmaster about undeliverable null-sender mail (a double bounce): if it fails too, it is dropped. */
  doubleBounce?: boolean;
}

/** Notes on an entry the worker put in hold/. */
export interface HoldNotes {
  /** Why it is held (shown by `postern queue list/show`). */
  holdReason?: string;
  /** How it is held, for the catalogue (absent on entries from before: read the reason). */
  heldAs?: Extract<OutcomeKind, `held_${string}`>;
  /** The queue id of the message the held recipients came from. */
  heldFrom?: string;
}

export type EntryNotes = OutgoingNotes & HoldNotes;

export type RejectOutcome = Extract<OutcomeKind, 'bounced_policy' | 'bounced_encryption' | 'bounced_conversion'>;
const REJECT_OUTCOMES = new Set<RejectOutcome>(['bounced_policy', 'bounced_encryption', 'bounced_conversion']);

const STRINGS = ['reject', 'copyOf', 'noticeOf', 'about', 'holdReason', 'heldFrom'] as const;
const NOTICE_KINDS = new Set(['failure', 'delay', 'success']);

function keptOriginalOf(v: unknown): KeptOriginal | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const k = v as Partial<KeptOriginal>;
  if ((k.part !== 'message' && k.part !== 'headers') || typeof k.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(k.data)) return undefined;
  return { part: k.part, data: k.data };
}

/**
 * The notes of an entry as read from disk (any JSON value): known keys with the right type kept,
 * wrong ones dropped, unknown keys passed through untouched. Undefined when there are none.
 */
export function readNotes(raw: unknown): EntryNotes | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const src = raw as Record<string, unknown>;
  const out: Record<string, unknown> = { ...src };
  for (const k of STRINGS) if (k in src && typeof src[k] !== 'string') delete out[k];
  if ('decrypted' in src && typeof src.decrypted !== 'boolean') delete out.decrypted;
  if ('original' in src) {
    const kept = keptOriginalOf(src.original);
    if (kept) out.original = kept;
    else delete out.original;
  }
  if ('dsn' in src && !NOTICE_KINDS.has(src.dsn as string)) delete out.dsn;
  if ('rejectAs' in src && !REJECT_OUTCOMES.has(src.rejectAs as RejectOutcome)) delete out.rejectAs;
  if ('heldAs' in src && !(isOutcomeKind(src.heldAs) && src.heldAs.startsWith('held_'))) delete out.heldAs;
  return out as EntryNotes;
}

/** The outcome an entry's `reject` note stands for. */
export function rejectOutcome(notes: OutgoingNotes | undefined): RejectOutcome {
  return notes?.rejectAs ?? 'bounced_policy';
}
