/**
 * The relay's claim on an entry for one delivery attempt: an atomic rename from outgoing/ or
 * deferred/ into delivering/<name>.<pid>, as a worker claims into active/. While claimed, no
 * admin command moves the file (flush and release find nothing to move; hold appends a hold
 * record instead, which the relay honours when the attempt ends), so the relay's done marks and
 * the removal of a delivered entry always act on the one file there is: a message cannot be
 * delivered twice because an admin moved it during its delivery.
 */
import { renameSync } from 'node:fs';
import { unlinkInPool } from './fd.js';
import { join } from 'node:path';
import { CorruptEntryError } from '../core/index.js';
import { holdRequested, type HoldRecord } from './record.js';
import type { OpenEntry, QueueName, Spool } from './spool.js';

export interface DeliveryClaim extends OpenEntry {
  /** The queue it was claimed from: outgoing or deferred. (`queue` is delivering.) */
  from: QueueName;
  /** True until remove() or moveTo() gave the entry up. */
  readonly claimed: boolean;
  /** The hold an admin asked for during this claim (read again from the file), or null. */
  holdRequested(): Promise<HoldRecord | null>;
  /** Every recipient has its final answer: remove the entry. Throws when that fails. */
  remove(): Promise<void>;
  /** Give the entry up into `to` (deferred, hold, or back to `from`) under its own name. */
  moveTo(to: QueueName): Promise<void>;
}

/**
 * Claim `from/name`. Throws ENOENT when it is not there (delivered, moved by an admin, claimed by
 * another attempt) and CorruptEntryError after moving an unreadable entry to corrupt/.
 */
export async function claimForDelivery(spool: Spool, from: QueueName, name: string): Promise<DeliveryClaim> {
  const file = `${name}.${spool.tag}`;
  const path = join(spool.dir('delivering'), file);
  // Not fsynced: after a power failure a lost claim leaves the entry where it was, and a kept one
  // is put back into outgoing/ by recover(); either way it is tried again.
  renameSync(join(spool.dir(from), name), path);
  let entry: OpenEntry;
  try {
    // Fresh from a worker (outgoing/), a large entry's body is checked while it is sent — one
    // read of 10 MB instead of two; an entry that comes back (deferred/) is checked before, so a
    // damaged one goes to corrupt/ instead of failing every attempt.
    entry = await spool.openEntry('delivering', file, { checkBody: from !== 'outgoing' });
  } catch (err) {
    const back = async () => {
      try {
        renameSync(path, join(spool.dir(from), name));
      } catch {
        /* recover() puts delivering/ entries back */
      }
    };
    if (!(err instanceof CorruptEntryError)) await back();
    else {
      await spool.moveToCorrupt(path, name, err.message).catch(async (moveErr: unknown) => {
        await back(); // not left claimed: the next attempt finds it where it was
        throw moveErr;
      });
    }
    throw err;
  }
  let claimed = true;
  const check = () => {
    if (!claimed) throw new Error(`the delivery claim on ${name} was given up already`);
  };
  // Added to `entry` itself rather than spread into a copy: a spread would read a lazy body
  // (a large entry's, loaded only when a transport asks for it as a Buffer).
  const methods: Omit<DeliveryClaim, keyof OpenEntry | 'claimed'> & { name: string } = {
    name,
    from,
    async holdRequested() {
      return holdRequested(await spool.readStatus('delivering', file));
    },
    async remove() {
      check();
      // Not fsynced, as Spool.remove: a power failure may bring a delivered entry back.
      await unlinkInPool(path);
      claimed = false;
    },
    async moveTo(to) {
      check();
      renameSync(path, join(spool.dir(to), name));
      claimed = false;
      await spool.syncDir(to);
    },
  };
  const claim = Object.assign(entry, methods);
  Object.defineProperty(claim, 'claimed', { get: () => claimed, enumerable: true });
  return claim as DeliveryClaim;
}
