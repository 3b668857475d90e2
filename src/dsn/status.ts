/**
 * Who gets which notice (RFC 3461 NOTIFY) and the enhanced status code (RFC 3463) of a reply.
 */
import type { Envelope, NotifyValue, Recipient } from '../core/index.js';
import type { DsnKind } from './types.js';

const NOTIFY_FOR: Record<DsnKind, NotifyValue> = { failure: 'FAILURE', delay: 'DELAY', success: 'SUCCESS' };

/**
 * Does this recipient want a notice of this kind? NOTIFY=NEVER: never. NOTIFY absent: failure
 * only, plus delay when `delayByDefault` (RFC 3461 5.1 lets an MTA send delay notices then).
 * An explicit list: as listed. Always false for the null sender, so a bounce never bounces.
 */
export function wantsNotice(envelope: Envelope, rcpt: Recipient, kind: DsnKind, opts: { delayByDefault?: boolean } = {}): boolean {
  if (envelope.sender === '') return false;
  const notify = rcpt.notify;
  if (!notify || notify.length === 0) return kind === 'failure' || (kind === 'delay' && opts.delayByDefault === true);
  if (notify.includes('NEVER')) return false;
  return notify.includes(NOTIFY_FOR[kind]);
}

/** "550", "550-" or "550 " at the start of a reply line. */
const BASIC = /^([245])\d\d(?:[ -]|$)/;
/** An enhanced code right after the basic one (RFC 2034: "550 5.1.1 text"). */
const ENHANCED = /^[245]\d\d[ -]([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)/;
/** Our own reasons may start with the enhanced code alone: "5.7.1 relay denied". */
const BARE_ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)/;

/**
 * The enhanced status of a reply: "550 5.1.1 no such user" → "5.1.1"; "550 no" → "5.0.0";
 * "421 ..." → "4.0.0". The class always follows the basic code, because that is what the client
 * acted on: "550 4.2.2" → "5.2.2" (RFC 3463 3: the class must match). Without any code, the
 * fallback (default "5.0.0") is returned. Multi-line replies are read from their first line.
 */
export function enhancedStatus(reply: string, fallback = '5.0.0'): string {
  const line = reply.trimStart();
  const basic = BASIC.exec(line);
  if (basic) {
    const enh = ENHANCED.exec(line);
    return enh ? `${basic[1]}.${Number(enh[2])}.${Number(enh[3])}` : `${basic[1]}.0.0`;
  }
  const bare = BARE_ENHANCED.exec(line);
  return bare ? `${bare[1]}.${Number(bare[2])}.${Number(bare[3])}` : fallback;
}

const STATUS = /^[245]\.\d{1,3}\.\d{1,3}$/;

/**
 * The status to write, consistent with the action (RFC 3464 2.3.3, RFC 3463 3.1): "delayed" needs
 * class 4 (a 5.x.y becomes 4.x.y), "delivered"/"relayed" class 2 (else 2.0.0), "failed" 5 or 4
 * (4.4.7 is how an expired message is reported, as Postfix does; a 2.x.y becomes 5.0.0). A
 * malformed code becomes the action's X.0.0.
 */
export function statusFor(status: string, action: 'failed' | 'delayed' | 'delivered' | 'relayed'): string {
  const ok = STATUS.test(status);
  if (action === 'delayed') return ok ? `4${status.slice(1)}` : '4.0.0';
  if (action === 'failed') return ok && status[0] !== '2' ? status : '5.0.0';
  return ok && status[0] === '2' ? status : '2.0.0';
}
