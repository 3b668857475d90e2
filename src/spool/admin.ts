/**
 * Queue administration, as postsuper does it: plain renames and unlinks that are safe while the
 * gateway runs. Every operation is one atomic rename per entry, so a worker or the relay racing
 * with it either got there first (the admin's rename finds nothing: ENOENT, reported as "moved on")
 * or finds the entry gone and forgets it. The relay notices entries that appear in outgoing/
 * through its directory watch, so release and flush need no signal to the running gateway.
 */
import { rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { QueueName, Spool } from './spool.js';

/** Where an admin may find a message: everything but tmp/ (being written) and active/ (claimed). */
const ADMIN_QUEUES: readonly QueueName[] = ['incoming', 'outgoing', 'deferred', 'hold', 'corrupt'];

export interface AdminResult {
  /** Entries acted on: "queue/name". */
  done: string[];
  /** Entries of that id that are being processed by a worker right now (active/): left alone. */
  busy: string[];
}

const isEnoent = (err: unknown) => (err as NodeJS.ErrnoException)?.code === 'ENOENT';

/** "ALL", a queue id (all its entries), or one entry name "<id>.<group>". */
function matcher(selector: string): (name: string) => boolean {
  if (selector === 'ALL') return () => true;
  return (name) => name === selector || name.startsWith(`${selector}.`);
}

async function entries(spool: Spool, queues: readonly QueueName[], selector: string): Promise<{ q: QueueName; name: string }[]> {
  const match = matcher(selector);
  const out: { q: QueueName; name: string }[] = [];
  for (const q of queues) {
    for (const name of await spool.list(q)) {
      if (q === 'corrupt' && name.endsWith('.reason')) continue;
      if (match(name)) out.push({ q, name });
    }
  }
  return out;
}

async function busy(spool: Spool, selector: string): Promise<string[]> {
  const match = matcher(selector);
  // active/ names are "<id>.<pid>": the id is what the admin knows.
  return (await spool.list('active')).filter((n) => match(n.split('.')[0]!)).map((n) => `active/${n}`);
}

async function moveEach(spool: Spool, list: { q: QueueName; name: string }[], to: (name: string) => QueueName): Promise<string[]> {
  const done: string[] = [];
  for (const { q, name } of list) {
    try {
      await spool.move(q, to(name), name);
      done.push(`${q}/${name}`);
    } catch (err) {
      if (!isEnoent(err)) throw err; // delivered or claimed meanwhile
    }
  }
  return done;
}

/** Put entries on hold: never retried until released (postsuper -h). */
export async function holdEntries(spool: Spool, selector: string): Promise<AdminResult> {
  const list = await entries(spool, ['incoming', 'outgoing', 'deferred'], selector);
  return { done: await moveEach(spool, list, () => 'hold'), busy: await busy(spool, selector) };
}

/**
 * Release held entries (postsuper -H): a message held before a worker processed it ("<id>") goes
 * back to incoming/, an outgoing entry ("<id>.<group>") to outgoing/, due at once. Recipients it
 * already reached are not sent to again (their status records travel with the entry).
 */
export async function releaseEntries(spool: Spool, selector: string): Promise<AdminResult> {
  const list = await entries(spool, ['hold'], selector);
  return { done: await moveEach(spool, list, (name) => (name.includes('.') ? 'outgoing' : 'incoming')), busy: [] };
}

/** Retry every deferred entry now (postqueue -f): they move back to outgoing/, where the relay takes them. */
export async function flushDeferred(spool: Spool, selector = 'ALL'): Promise<AdminResult> {
  const list = await entries(spool, ['deferred'], selector);
  return { done: await moveEach(spool, list, () => 'outgoing'), busy: [] };
}

/** Delete entries for good (postsuper -d). No bounce is sent, as with Postfix. */
export async function deleteEntries(spool: Spool, selector: string): Promise<AdminResult> {
  const done: string[] = [];
  for (const { q, name } of await entries(spool, ADMIN_QUEUES, selector)) {
    try {
      await unlink(join(spool.dir(q), name));
      if (q === 'corrupt') await rm(join(spool.dir(q), `${name}.reason`), { force: true });
      done.push(`${q}/${name}`);
    } catch (err) {
      if (!isEnoent(err)) throw err;
    }
  }
  return { done, busy: await busy(spool, selector) };
}
