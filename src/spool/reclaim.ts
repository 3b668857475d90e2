/**
 * Taking back what a dead process had claimed: a worker's active/ entries go back to incoming/
 * with a crash mark (so a message that kills its worker every time is noticed across restarts,
 * not retried for ever), and the relay's delivering/ entries go back to outgoing/, due at once —
 * their status records say which recipients already have them.
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { isQueueId } from '../core/index.js';
import { appendRecords } from './marks.js';
import type { Spool } from './spool.js';

/** "<id>.<pid>" (active/) or "<id>.<group>.<pid>" (delivering/): the claiming process's pid. */
const pidOf = (name: string) => name.slice(name.lastIndexOf('.') + 1);

/** Reclaim the claims whose file names `match`; returns how many were put back. */
export async function reclaimClaims(spool: Spool, match: (name: string) => boolean): Promise<number> {
  const active = (await spool.list('active')).filter((n) => match(n) && isQueueId(n.split('.')[0]!));
  const perProcess = new Map<string, number>();
  for (const n of active) perProcess.set(pidOf(n), (perProcess.get(pidOf(n)) ?? 0) + 1);
  const at = new Date().toISOString();
  for (const n of active) {
    const path = join(spool.dir('active'), n);
    // Best effort: without the mark (a full disk) the message is only tried once more than it
    // should be; it must go back to incoming/ either way.
    await appendRecords(path, [{ t: 'crash', at, alone: perProcess.get(pidOf(n)) === 1 }]).catch(() => undefined);
    await rename(path, join(spool.dir('incoming'), n.split('.')[0]!));
  }
  const delivering = (await spool.list('delivering')).filter((n) => match(n) && n.split('.').length === 3 && isQueueId(n.split('.')[0]!));
  for (const n of delivering) {
    await rename(join(spool.dir('delivering'), n), join(spool.dir('outgoing'), n.slice(0, n.lastIndexOf('.'))));
  }
  if (active.length) {
    await spool.syncDir('incoming');
    await spool.syncDir('active');
  }
  if (delivering.length) {
    await spool.syncDir('outgoing');
    await spool.syncDir('delivering');
  }
  return active.length + delivering.length;
}
