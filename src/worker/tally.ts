/**
 * What the worker counts (log/metrics.ts): each recipient's copy by method and direction, the
 * held and dropped outcomes of a decision — counted only once its outputs are durable, so an
 * attempt abandoned at the deadline counts nothing — and crypto that did not succeed, as the
 * result fields state it. Synchronous adds only: nothing here costs the mail path a wait.
 */
import { countCryptoFailure, countOutcome, countProcessed, type ProcessedDirection, type ProcessedMethod } from '../log/index.js';
import type { HeldDraft } from '../spool/index.js';
import type { OpenStep } from './methods/index.js';

/** One delivery group's copy: how it was treated, and for how many recipients. */
export interface ProcessedCopy {
  method: ProcessedMethod;
  direction: ProcessedDirection;
  recipients: number;
}

/** What a decision adds to the counts once it is committed. */
export interface DecisionTally {
  processed: ProcessedCopy[];
  /** Recipients deleted by policy (dropped_policy). */
  dropped: number;
}

/** The method a copy is counted under: the encryption made, else the signature made, else the encryption taken off, else clear. */
export function copyMethod(made: { encryption: ProcessedMethod | null; signedWith: ProcessedMethod | null; decryptedFrom: ProcessedMethod | null }): ProcessedMethod {
  return made.encryption ?? made.signedWith ?? made.decryptedFrom ?? 'clear';
}

/** The direction of a group: its first recipient's, as the policy saw it (all of a group share a treatment). */
export function directionOf(recipients: readonly string[], byRecipient: ReadonlyMap<string, ProcessedDirection>): ProcessedDirection {
  return byRecipient.get(recipients[0] ?? '') ?? 'external';
}

/**
 * After commit: the copies written, the recipients held (hold/) and dropped. It runs between the
 * commit and the relay's announcement, so it must never throw: a counting fault taken for a
 * failure of the message would have the worker retry a message whose outputs are already durable.
 */
export function countCommitted(tally: DecisionTally | undefined, held: readonly HeldDraft[]): void {
  try {
    for (const p of tally?.processed ?? []) countProcessed(p.method, p.direction, p.recipients);
    if (tally?.dropped) countOutcome('dropped_policy', tally.dropped);
    for (const h of held) countOutcome(h.heldAs ?? 'held_policy', h.envelope.recipients.length);
  } catch {
    // A metric lost; the mail is not.
  }
}

/**
 * Opening's findings that are failures: a decryption asked for that did not happen (content left
 * nested on purpose is not one), each signature that is not valid and each that could not be
 * read, under the status token the X-Postern-* fields carry.
 */
export function countOpened(steps: readonly OpenStep[], decrypt: boolean): void {
  for (const s of steps) {
    const method = s.results.method;
    const e = s.opened.encryption;
    if (decrypt && e && e.status !== 'decrypted' && !e.nested) countCryptoFailure('decrypt', method, e.status);
    for (const sig of s.results.signatures) if (sig.status !== 'valid') countCryptoFailure('verify', method, sig.status);
    for (let i = 0; i < s.results.problems.length; i++) countCryptoFailure('verify', method, 'unreadable');
  }
}
