/**
 * Poison messages: a message whose processing kills its worker (out of memory, a crash in native
 * code, a bug that takes the process down) would otherwise be reclaimed and tried again for ever,
 * taking a worker — and the messages it had in hand — down each time. The spool marks every entry
 * a dead process had claimed (spool/reclaim.ts), so the count survives restarts. A crash is the
 * message's own doing only when it was the one message that worker had claimed; so a message
 * marked once is processed alone from then on, and held with the reason after MAX_CRASHES such
 * crashes. Messages that merely shared a worker with a poison message are never held for it.
 */
import { CorruptEntryError } from '../core/index.js';
import { crashesSinceRelease, holdWithRecord, type Spool } from '../spool/index.js';

export const MAX_CRASHES = 3;

export type Screening =
  /** Never seen a crash: process as usual. */
  | { verdict: 'clean' }
  /** A worker died while it had this message: process it alone. */
  | { verdict: 'suspect'; crashes: number }
  /** Moved to hold/ with the reason recorded in it. */
  | { verdict: 'held'; reason: string }
  /** Not in incoming/ any more (another worker took it). */
  | { verdict: 'gone' };

const isEnoent = (err: unknown) => (err as NodeJS.ErrnoException)?.code === 'ENOENT';

/** Look at an incoming/ entry's crash marks before claiming it (reads only the end of the file). */
export async function screen(spool: Spool, id: string): Promise<Screening> {
  let status;
  try {
    status = await spool.readStatus('incoming', id);
  } catch (err) {
    if (isEnoent(err)) return { verdict: 'gone' };
    // The claim reads the whole entry and moves a damaged one to corrupt/.
    if (err instanceof CorruptEntryError) return { verdict: 'clean' };
    throw err;
  }
  const { total, alone } = crashesSinceRelease(status);
  if (alone >= MAX_CRASHES) {
    const reason = `processing crashed the worker ${alone} times`;
    try {
      await holdWithRecord(spool, 'incoming', id, reason);
    } catch (err) {
      if (isEnoent(err)) return { verdict: 'gone' };
      throw err;
    }
    return { verdict: 'held', reason };
  }
  return total > 0 ? { verdict: 'suspect', crashes: total } : { verdict: 'clean' };
}
