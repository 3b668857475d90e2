/**
 * Status records written into an entry by someone other than the relay that delivers it: an
 * admin's hold or release, the crash mark of a reclaim. Appended with O_APPEND like the relay's
 * own records, so each lands whole after the others and travels with the file through every
 * rename; a record that races with a move ends up in the moved file, never in a lost copy.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeStatus, type StatusRecord } from './record.js';
import type { QueueName, Spool } from './spool.js';
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
 * Hold an entry with the reason recorded in it (the gateway's own holds: a message that crashed
 * its worker too often), for `queue show` to print. ENOENT when the entry moved on meanwhile.
 */
export async function holdWithRecord(spool: Spool, from: QueueName, name: string, reason: string): Promise<void> {
  await appendRecords(join(spool.dir(from), name), [{ t: 'hold', at: new Date().toISOString(), reason }]);
  await spool.move(from, 'hold', name);
}
