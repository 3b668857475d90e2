/**
 * Free space on the spool, checked at MAIL FROM as Postfix checks queue_minfree: a client is told
 * 452 4.3.1 before it sends a byte of the message, rather than after all of it. The writes
 * themselves are checked too (spool/write.ts); this check only keeps headroom for the messages
 * already accepted (the worker writes its output beside its input) and for the rest of the host.
 */
import { InsufficientStorageError } from '../core/index.js';
import type { Verdict } from './session.js';

/**
 * Refused when the file system has less than `minFree` free, or less than `minFree` plus the
 * size the client declared (RFC 1870 SIZE=). `minFree` 0 turns off the first test, not the second.
 */
export function storageVerdict(free: number, minFree: number, declared: number): Verdict {
  if (free - declared < minFree) {
    return { ok: false, error: new InsufficientStorageError(), reason: 'storage' };
  }
  return { ok: true };
}

/** A MAIL FROM as its parameters: SIZE= as the digit string the client sent. */
export interface MailArgs {
  args?: Record<string, string | boolean> | false;
}

/** The SIZE= a client declared with MAIL FROM (its syntax already checked), or 0. */
export function declaredSize(address: MailArgs): number {
  const v = (address.args || {}).SIZE;
  const n = typeof v === 'string' ? Number(v) : 0;
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/**
 * The verdict for this MAIL FROM, or null when nothing needs to be asked (no threshold, no SIZE=).
 * A file system that cannot say how full it is lets the mail in: the writes are checked, so the
 * worst case is a 452 at the end of DATA instead of here.
 */
export async function checkStorage(
  freeSpace: () => Promise<number>,
  minFree: number,
  declaredOrMail: number | MailArgs,
  onError: (err: unknown) => void,
): Promise<Verdict> {
  const declared = typeof declaredOrMail === 'number' ? declaredOrMail : declaredSize(declaredOrMail);
  if (minFree <= 0 && declared === 0) return { ok: true };
  let free: number;
  try {
    free = await freeSpace();
  } catch (err) {
    onError(err);
    return { ok: true };
  }
  return storageVerdict(free, minFree, declared);
}
