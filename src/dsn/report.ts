/**
 * The machine-readable part: message/delivery-status (RFC 3464 2.2, 2.3), or its RFC 6533
 * global form, where UTF-8 addresses and text may stand unencoded.
 */
import type { DsnInput, DsnRecipient } from './types.js';
import { decodeOrcpt, decodeXtext } from './xtext.js';
import { statusFor } from './status.js';
import { field, hostToken, isAscii, oneLine, rfc5322Date, validDate } from './fields.js';

/** "rfc822; a@b", or RFC 6533's "utf-8" type for an address that is not ASCII. */
function addressValue(address: string, utf8: boolean, sep: string, type = 'rfc822'): string {
  const a = oneLine(address, utf8);
  return `${utf8 && type === 'rfc822' && !isAscii(a) ? 'utf-8' : type};${sep}${a}`;
}

function recipientFields(r: DsnRecipient, utf8: boolean): string {
  let out = '';
  if (r.orcpt) {
    const o = decodeOrcpt(r.orcpt);
    // RFC 3464 2.3.1: the ORCPT's own addr-type, its address xtext-decoded.
    out += field('Original-Recipient', addressValue(o.address, utf8, '', o.type));
  }
  out += field('Final-Recipient', addressValue(r.address, utf8, ' '));
  out += field('Action', r.action);
  out += field('Status', statusFor(r.status, r.action));
  if (r.remoteMta) out += field('Remote-MTA', `dns; ${hostToken(r.remoteMta)}`);
  const text = r.diagnostic ? oneLine(r.diagnostic.text, utf8) : '';
  if (r.diagnostic && text) out += field('Diagnostic-Code', `${r.diagnostic.type === 'smtp' ? 'smtp' : 'X-Postern'}; ${text}`);
  if (validDate(r.lastAttempt)) out += field('Last-Attempt-Date', rfc5322Date(r.lastAttempt));
  if (r.action === 'delayed' && validDate(r.willRetryUntil)) out += field('Will-Retry-Until', rfc5322Date(r.willRetryUntil));
  return out;
}

/** The content of the delivery-status part: per-message fields, then one group per recipient. */
export function deliveryStatus(input: DsnInput, utf8: boolean): string {
  const env = input.envelope;
  let out = field('Reporting-MTA', `dns; ${hostToken(input.reportingMta)}`);
  out += field('X-Postern-Queue-ID', oneLine(input.queueId, false));
  out += field('X-Postern-Sender', addressValue(env.sender, utf8, ' '));
  if (env.envid) out += field('Original-Envelope-Id', oneLine(decodeXtext(env.envid), utf8));
  const arrival = new Date(env.receivedAt);
  if (validDate(arrival)) out += field('Arrival-Date', rfc5322Date(arrival));
  for (const r of input.recipients) out += '\r\n' + recipientFields(r, utf8);
  return out;
}
