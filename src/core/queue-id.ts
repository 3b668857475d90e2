import { createHash, randomFillSync } from 'node:crypto';

/**
 * Queue ids, like Postfix's long queue ids: sortable by acceptance time, unique across processes
 * without coordination, and safe as file names. 10 chars of millisecond time (base 32) + 10 random.
 */
const ALPHABET = '0123456789BCDFGHJKLMNPQRSTVWXYZ'; // no vowels: ids never spell words
const BASE = BigInt(ALPHABET.length);

function encode(n: bigint, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = ALPHABET[Number(n % BASE)] + out;
    n /= BASE;
  }
  return out;
}

/**
 * Random bytes drawn 4 KB at a time: one call into the CSPRNG per 512 ids instead of one per
 * message (the same generator's output, only fetched in bulk — a per-message cost the smtpd
 * profile showed).
 */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function random64(): bigint {
  if (poolAt + 8 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const n = pool.readBigUInt64BE(poolAt);
  poolAt += 8;
  return n;
}

export function newQueueId(now = Date.now()): string {
  const rnd = random64();
  return encode(BigInt(now), 9) + encode(rnd, 11);
}

const QUEUE_ID = /^[0-9BCDFGHJKLMNPQRSTVWXYZ]{20}$/;

export function isQueueId(s: string): boolean {
  return QUEUE_ID.test(s);
}

/**
 * A spool entry's name: a queue id, or "<id>.<group>" for one output of a message (spool.ts
 * outputNames: 12 hex digits, "-k" on a clash; "0" for a notice the relay writes). The pattern
 * is also the admin API's schema for ids in URLs, which come from outside.
 */
export const QUEUE_ENTRY_NAME_PATTERN = '^[0-9BCDFGHJKLMNPQRSTVWXYZ]{20}(\\.[0-9a-f]{1,12}(-[0-9]{1,4})?)?$';
const QUEUE_ENTRY_NAME = new RegExp(QUEUE_ENTRY_NAME_PATTERN);

export function isQueueEntryName(s: string): boolean {
  return QUEUE_ENTRY_NAME.test(s);
}

/**
 * A queue id derived from another and a label (e.g. the bounce for attempt 3 of an entry): the
 * same inputs give the same id, so a step repeated after a crash replaces its first output
 * instead of adding a second. Keeps the parent's time prefix, so listings stay in order.
 */
export function derivedQueueId(parent: string, label: string): string {
  const h = createHash('sha256').update(`${parent}\0${label}`).digest().readBigUInt64BE();
  return parent.slice(0, 9) + encode(h, 11);
}
