/**
 * What the status records of an entry say about it now: per recipient, the final answer (if any)
 * and the last temporary failure; the attempts so far and when the next is due; which notices
 * were sent. The relay decides from this after a restart exactly as it would have before, and
 * `postern queue show` prints it.
 */
import type { Envelope } from '../core/index.js';
import type { RecipientRecord, StatusRecord } from '../spool/index.js';

export interface RecipientState {
  address: string;
  /** delivered / failed are final; deferred had a temporary failure; pending was never tried. */
  state: 'pending' | 'deferred' | 'delivered' | 'failed';
  /** The record that set `state` (absent for pending). */
  last?: RecipientRecord;
  /** Notices already queued for this recipient. */
  notices: Set<'failure' | 'delay' | 'success'>;
}

export interface EntryState {
  recipients: RecipientState[];
  /** Attempts that ended with someone deferred. */
  attempts: number;
  /** When the next attempt is due (ms since epoch); 0 when due now or unknown. */
  nextAttempt: number;
}

/** Unique recipient addresses in envelope order (a client may repeat RCPT TO). */
export function uniqueRecipients(envelope: Envelope): string[] {
  return [...new Set(envelope.recipients.map((r) => r.address))];
}

export function entryState(envelope: Envelope, status: readonly StatusRecord[]): EntryState {
  const byAddress = new Map<string, RecipientState>();
  for (const address of uniqueRecipients(envelope)) byAddress.set(address, { address, state: 'pending', notices: new Set() });
  let attempts = 0;
  let nextAttempt = 0;
  for (const r of status) {
    if (r.t === 'rcpt') {
      const s = byAddress.get(r.rcpt);
      // A final answer is never undone by a later record (there should be none: final recipients
      // are not tried again).
      if (s && s.state !== 'delivered' && s.state !== 'failed') {
        s.state = r.status;
        s.last = r;
      }
    } else if (r.t === 'attempt') {
      attempts = Math.max(attempts, r.n);
      nextAttempt = Date.parse(r.next) || 0;
    } else if (r.t === 'dsn') {
      for (const a of r.rcpts) byAddress.get(a)?.notices.add(r.kind);
    }
  }
  return { recipients: [...byAddress.values()], attempts, nextAttempt };
}

export const isFinal = (s: RecipientState) => s.state === 'delivered' || s.state === 'failed';
