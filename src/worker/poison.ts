/**
 * Poison messages: a message whose processing kills its worker (out of memory, a crash in native
 * code, a bug that takes the process down) would otherwise be reclaimed and tried again for ever,
 * taking a worker — and the messages it had in hand — down each time. The spool marks every entry
 * a dead process had claimed (spool/reclaim.ts), so the count survives restarts. A crash is the
 * message's own doing only when it was the one message that worker had claimed; so a message
 * marked once is processed alone from then on, and held with the reason after MAX_CRASHES such
 * crashes. Messages that merely shared a worker with a poison message are never held for it.
 */
import { crashesSinceRelease, type StatusRecord } from '../spool/index.js';

export const MAX_CRASHES = 3;

export type CrashVerdict =
  /** Never seen a crash: process as usual. */
  | { verdict: 'clean' }
  /** A worker died while it had this message: process it alone. */
  | { verdict: 'suspect'; crashes: number }
  /** Crashed its worker MAX_CRASHES times while alone in it: hold it. */
  | { verdict: 'poison'; reason: string };

/** What the crash marks of a claimed entry (its status records) say. */
export function crashVerdict(status: readonly StatusRecord[]): CrashVerdict {
  const { total, alone } = crashesSinceRelease(status);
  if (alone >= MAX_CRASHES) return { verdict: 'poison', reason: `processing crashed the worker ${alone} times` };
  return total > 0 ? { verdict: 'suspect', crashes: total } : { verdict: 'clean' };
}
