/** Addresses in header fields, as the crypto layers need them: the From: a signature must match. */
import { readEntity, splitMessage, type SplitMessage } from './entity.js';

/** Addresses in a From: (or any address list) header: the addr-specs, lower-cased domain kept as written. */
export function addressesOf(value: string): string[] {
  const angle = [...value.matchAll(/<([^<>\s]+@[^<>\s]+)>/g)].map((m) => m[1]!);
  if (angle.length) return angle;
  return value
    .split(',')
    .map((s) => s.replace(/\(.*?\)/g, '').trim())
    .filter((s) => /^[^\s@]+@[^\s@]+$/.test(s));
}

/**
 * What signature checks bind to, read once: the message split into outer header and body entity,
 * the addresses of the first From: (a second one is what a forger adds), and the Date: when it
 * parses (an unreadable Date: gives no date, so the signing-time rule does not apply).
 */
export function signedMessageContext(message: Buffer): { split: SplitMessage; from: string[]; messageDate?: Date } {
  const split = splitMessage(message);
  const outerFields = readEntity(Buffer.concat([split.outer, Buffer.from('\r\n')])).headers;
  const from = addressesOf(outerFields.get('from')?.[0] ?? '');
  const dateValue = outerFields.get('date')?.[0];
  const messageDate = dateValue && !Number.isNaN(Date.parse(dateValue)) ? new Date(dateValue) : undefined;
  return { split, from, ...(messageDate ? { messageDate } : {}) };
}
