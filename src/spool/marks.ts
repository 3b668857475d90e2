/**
 * Status records written into an entry by someone other than the relay that delivers it: an
 * admin's hold or release, the crash mark of a reclaim. Appended with O_APPEND like the relay's
 * own records, so each lands whole after the others and travels with the file through every
 * rename; a record that races with a move ends up in the moved file, never in a lost copy.
 */
import { constants } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeStatus, type HoldRecord, type StatusRecord } from './record.js';
import type { Spool } from './spool.js';
import { writeAll } from './write.js';

/** Append `records` to the entry at `path` and make them durable. Never creates a file (ENOENT). */
export async function appendRecords(path: string, records: readonly StatusRecord[]): Promise<void> {
  const fh = await open(path, constants.O_WRONLY | constants.O_APPEND);
  try {
    // A torn record (full disk) is skipped by every reader, so nothing needs undoing here.
    await writeAll(fh, [encodeStatus(records)]);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * Hold an entry a worker has claimed (active/<id>.<pid>) under its own id, with the reason
 * recorded in it for `queue show` (the gateway's own holds: a message that crashed its worker too
 * often). `queue release` sends it back to incoming/.
 */
export async function holdClaimed(spool: Spool, entry: { id: string; path: string }, reason: string, heldAs: HoldRecord['heldAs'] = 'held_poison'): Promise<void> {
  await appendRecords(entry.path, [{ t: 'hold', at: new Date().toISOString(), reason, heldAs }]);
  await rename(entry.path, join(spool.dir('hold'), entry.id));
  await spool.syncDir('hold');
}
