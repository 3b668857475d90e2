/**
 * Queue administration, as postsuper does it: plain renames and unlinks that are safe while the
 * gateway runs. Every move is one atomic rename per entry, so a worker or the relay racing with it
 * either got there first (the admin's rename finds nothing: ENOENT, and the entry is looked for
 * again) or finds the entry gone and forgets it. An entry the relay is delivering right now sits
 * in delivering/, where only the relay moves it: flush and release leave it alone, hold appends a
 * hold record that the relay honours when the attempt ends, delete reports it busy. The relay
 * notices entries that appear in outgoing/ through its directory watch, so release and flush need
 * no signal to the running gateway.
 */
import { rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalDomain, domainOfAddress } from '../core/index.js';
import { appendRecords } from './marks.js';
import { crashesSinceRelease, holdRequested } from './record.js';
import type { QueueName, Spool } from './spool.js';

/** Where an admin may find a message: everything but tmp/ (being written) and the claimed ones. */
const ADMIN_QUEUES: readonly QueueName[] = ['incoming', 'outgoing', 'deferred', 'hold', 'corrupt'];
/** How often a hold looks for an entry again that moved on under it (relay claim, end of attempt). */
const HOLD_TRIES = 10;

export interface AdminResult {
  /** Entries acted on: "queue/name". */
  done: string[];
  /** Entries being delivered right now, marked to be held when the attempt ends: "delivering/file". */
  marked?: string[];
  /** Entries of that id claimed by a worker (active/) or, for delete, being delivered: left alone. */
  busy: string[];
}

const isEnoent = (err: unknown) => (err as NodeJS.ErrnoException)?.code === 'ENOENT';

/** "ALL", a queue id (all its entries), or one entry name "<id>.<group>". */
function matcher(selector: string): (name: string) => boolean {
  if (selector === 'ALL') return () => true;
  return (name) => name === selector || name.startsWith(`${selector}.`);
}

/** delivering/ names are "<id>.<group>.<pid>": the entry's own name without the claimer's pid. */
const unclaimed = (file: string) => file.slice(0, file.lastIndexOf('.'));

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

async function busy(spool: Spool, selector: string, queues: readonly ('active' | 'delivering')[] = ['active']): Promise<string[]> {
  const match = matcher(selector);
  const out: string[] = [];
  // active/ names are "<id>.<pid>": the id is what the admin knows.
  if (queues.includes('active')) out.push(...(await spool.list('active')).filter((n) => match(n.split('.')[0]!)).map((n) => `active/${n}`));
  if (queues.includes('delivering')) out.push(...(await spool.list('delivering')).filter((n) => match(unclaimed(n))).map((n) => `delivering/${n}`));
  return out;
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

/**
 * Hold one entry wherever it is now: moved to hold/ from a queue, or marked while the relay
 * delivers it. An entry that moves between the two looks (claimed, or given back after its
 * attempt) is looked for again; one found nowhere was delivered.
 */
async function holdOne(spool: Spool, name: string, at: string): Promise<{ done?: string; marked?: string } | null> {
  const queues: QueueName[] = name.includes('.') ? ['outgoing', 'deferred'] : ['incoming'];
  for (let i = 0; i < HOLD_TRIES; i++) {
    for (const q of queues) {
      try {
        await spool.move(q, 'hold', name);
        return { done: `${q}/${name}` };
      } catch (err) {
        if (!isEnoent(err)) throw err;
      }
    }
    if (!name.includes('.')) return null; // claimed by a worker (reported busy) or processed
    const claims = (await spool.list('delivering')).filter((n) => unclaimed(n) === name);
    if (!claims.length) return null;
    for (const file of claims) {
      try {
        await appendRecords(join(spool.dir('delivering'), file), [{ t: 'hold', at, reason: 'held with "postern queue hold" during a delivery attempt' }]);
        return { marked: `delivering/${file}` };
      } catch (err) {
        if (!isEnoent(err)) throw err;
      }
    }
  }
  return null;
}

/** Put entries on hold: never retried until released (postsuper -h). */
export async function holdEntries(spool: Spool, selector: string): Promise<AdminResult> {
  const match = matcher(selector);
  const names = new Set((await entries(spool, ['incoming', 'outgoing', 'deferred'], selector)).map((e) => e.name));
  for (const file of await spool.list('delivering')) if (match(unclaimed(file))) names.add(unclaimed(file));
  const done: string[] = [];
  const marked: string[] = [];
  const at = new Date().toISOString();
  for (const name of names) {
    const r = await holdOne(spool, name, at);
    if (r?.done) done.push(r.done);
    if (r?.marked) marked.push(r.marked);
  }
  return { done, ...(marked.length ? { marked } : {}), busy: await busy(spool, selector) };
}

/**
 * Release held entries (postsuper -H): a message held before a worker processed it ("<id>") goes
 * back to incoming/, an outgoing entry ("<id>.<group>") to outgoing/, due at once. Recipients it
 * already reached are not sent to again (their status records travel with the entry). A release
 * record cancels hold records and the crash count the entry carries.
 */
export async function releaseEntries(spool: Spool, selector: string): Promise<AdminResult> {
  const list = await entries(spool, ['hold'], selector);
  const at = new Date().toISOString();
  for (const { name } of list) {
    const path = join(spool.dir('hold'), name);
    const status = await spool.readStatus('hold', name).catch((err) => {
      if (isEnoent(err)) return [];
      throw err;
    });
    if (holdRequested(status) || crashesSinceRelease(status).total > 0) {
      await appendRecords(path, [{ t: 'release', at }]).catch((err) => {
        if (!isEnoent(err)) throw err;
      });
    }
  }
  return { done: await moveEach(spool, list, (name) => (name.includes('.') ? 'outgoing' : 'incoming')), busy: [] };
}

/**
 * Retry deferred entries now (postqueue -f; with `domain`, postqueue -s / ETRN: those with a
 * recipient in that canonical domain): they move back to outgoing/, where the relay takes them.
 * `domain` "@example.com" (RFC 1985 §5.3) names example.com and every domain below it.
 */
export async function flushDeferred(spool: Spool, selector = 'ALL', domain?: string): Promise<AdminResult> {
  let list = await entries(spool, ['deferred'], selector);
  if (domain !== undefined) {
    const wanted = domainMatcher(domain);
    const deferred = await spool.inspect(['deferred']);
    const forDomain = new Set(deferred.filter((e) => e.meta?.envelope.recipients.some((r) => wanted(domainOfAddress(r.address)))).map((e) => e.name));
    list = list.filter((e) => forDomain.has(e.name));
  }
  // An entry being delivered is not in deferred/: it is being tried now, which is what a flush asks.
  return { done: await moveEach(spool, list, () => 'outgoing'), busy: [] };
}

/** "example.com": that domain; "@example.com": it and its subdomains. Case and a trailing dot ignored. */
export function domainMatcher(pattern: string): (domain: string) => boolean {
  const sub = pattern.startsWith('@');
  const raw = (sub ? pattern.slice(1) : pattern).replace(/\.$/, '');
  // The A-label form, as recipients' domains are stored (one address, one spelling).
  const d = canonicalDomain(raw) ?? raw.toLowerCase();
  return (domain) => {
    const x = domain.toLowerCase();
    return x === d || (sub && x.endsWith(`.${d}`));
  };
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
  return { done, busy: await busy(spool, selector, ['active', 'delivering']) };
}
