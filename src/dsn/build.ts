/**
 * Assembles the notice: a multipart/report (RFC 6522) with the human text, the delivery-status
 * part and the returned original (whole or headers), from the null sender to the original
 * envelope sender. Switches to the RFC 6533 global types when any address is not ASCII.
 */
import { randomBytes } from 'node:crypto';
import type { DsnInput, DsnKind, DsnMessage } from './types.js';
import { decodeOrcpt } from './xtext.js';
import { deliveryStatus } from './report.js';
import { humanText } from './notice.js';
import { field, hasEightBit, hostToken, isAscii, oneLine, quotedPrintable, rfc5322Date, smtpSafe } from './fields.js';

/** Postfix's bounce_size_limit default. */
export const DEFAULT_RETURN_LIMIT = 50_000;

const SUBJECT: Record<DsnKind, string> = {
  failure: 'Undelivered Mail Returned to Sender',
  delay: 'Delayed Mail (still being retried)',
  success: 'Successful Mail Delivery Report',
};

/** Postfix's subject for what reaches the postmaster instead of a sender. */
const POSTMASTER_SUBJECT = 'Postmaster Copy: Undelivered Mail';

const CRLF = Buffer.from('\r\n');

interface Part {
  description: string;
  type: string;
  /** Set when the content is already encoded; otherwise 7bit or 8bit from the bytes. */
  encoding?: 'quoted-printable';
  content: Buffer;
}

/** The original's header block: up to and including the CRLF before the first empty line. */
export function headerBlock(message: Buffer): Buffer {
  if (message.subarray(0, 2).equals(CRLF)) return Buffer.alloc(0); // no header fields at all
  const end = message.indexOf('\r\n\r\n');
  const block = end < 0 ? message : message.subarray(0, end + 2);
  return block.length === 0 || block.subarray(-2).equals(CRLF) ? block : Buffer.concat([block, CRLF]);
}

function needsUtf8(input: DsnInput): boolean {
  const env = input.envelope;
  return (
    env.smtputf8 === true ||
    !isAscii(env.sender) ||
    !isAscii(input.postmaster ?? '') ||
    input.recipients.some((r) => !isAscii(r.address) || (r.orcpt !== undefined && !isAscii(decodeOrcpt(r.orcpt).address)))
  );
}

/**
 * The third part. The whole original only in a failure notice, when RET allows it (RET=FULL or
 * absent), when it fits returnLimit, and when its bytes are SMTP-safe: message/rfc822 may not be
 * transfer-encoded (RFC 2046 5.2.1), so an original that is not must go as headers only.
 */
function returnedPart(input: DsnInput, utf8: boolean): { part: Part; returned: 'message' | 'headers' } {
  const msg = input.message;
  const limit = input.returnLimit ?? DEFAULT_RETURN_LIMIT;
  if (input.kind === 'failure' && !input.headersOnly && input.envelope.ret !== 'HDRS' && msg.length <= limit && smtpSafe(msg)) {
    return { part: { description: 'Undelivered Message', type: utf8 ? 'message/global' : 'message/rfc822', content: msg }, returned: 'message' };
  }
  const description = input.kind === 'failure' ? 'Undelivered Message Headers' : 'Message Headers';
  const headers = headerBlock(msg);
  if (!smtpSafe(headers)) {
    // A text type may be quoted-printable; the global-headers type is not needed once encoded.
    return { part: { description, type: 'text/rfc822-headers', encoding: 'quoted-printable', content: Buffer.from(quotedPrintable(headers)) }, returned: 'headers' };
  }
  return { part: { description, type: utf8 ? 'message/global-headers' : 'text/rfc822-headers', content: headers }, returned: 'headers' };
}

/**
 * A boundary that occurs in none of the parts (RFC 2046 5.1.1); random, so found at once. The
 * "=_" start can never occur in quoted-printable text either.
 */
function pickBoundary(parts: Part[]): string {
  for (;;) {
    const b = `=_postern-dsn-${randomBytes(15).toString('hex')}`;
    if (!parts.some((p) => p.content.includes(`--${b}`))) return b;
  }
}

/** Message-ID pieces: dot-atom characters only, whatever the queue id or hostname holds. */
function atom(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, '-') || 'x';
}
function idDomain(host: string): string {
  return host.split('.').filter(Boolean).map(atom).join('.') || 'localhost';
}

/**
 * Builds the notice. Throws when the envelope sender is the null sender and no postmaster is
 * given (a notice about a notice goes to the postmaster or nowhere: check wantsNotice first), or
 * when there are no recipients to report.
 */
export function buildDsn(input: DsnInput): DsnMessage {
  const env = input.envelope;
  const to = input.postmaster ?? env.sender;
  if (to === '') throw new Error('dsn: no notice is sent to the null sender');
  if (input.recipients.length === 0) throw new Error('dsn: a notice needs at least one recipient');
  const now = input.now ?? new Date();
  const utf8 = needsUtf8(input);
  const host = hostToken(input.reportingMta);
  const { part: third, returned } = returnedPart(input, utf8);
  const statusType = utf8 ? 'global-delivery-status' : 'delivery-status';
  const parts: Part[] = [
    { description: 'Notification', type: 'text/plain; charset=utf-8', content: Buffer.from(humanText(input, utf8, returned), 'utf8') },
    { description: 'Delivery report', type: `message/${statusType}`, content: Buffer.from(deliveryStatus(input, utf8), 'utf8') },
    third,
  ];
  const boundary = pickBoundary(parts);
  const eightBit = parts.some((p) => hasEightBit(p.content));
  const messageId = `<${now.getTime().toString(36)}.${atom(input.queueId)}.${input.kind}.${randomBytes(6).toString('hex')}@${idDomain(host)}>`;

  let head =
    field('From', `Mail Delivery System <MAILER-DAEMON@${host}>`) +
    field('To', `<${oneLine(to, utf8)}>`) +
    field('Subject', input.postmaster !== undefined ? POSTMASTER_SUBJECT : SUBJECT[input.kind]) +
    field('Date', rfc5322Date(now)) +
    field('Message-ID', messageId) +
    // RFC 3834 5: notices are auto-replied, so vacation responders and the like stay quiet.
    field('Auto-Submitted', 'auto-replied') +
    field('MIME-Version', '1.0') +
    field('Content-Type', `multipart/report; report-type=${statusType}; boundary="${boundary}"`) +
    field('Content-Transfer-Encoding', eightBit ? '8bit' : '7bit') +
    '\r\nThis is a MIME-encapsulated message.\r\n';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    head +=
      `\r\n--${boundary}\r\n` +
      field('Content-Description', p.description) +
      field('Content-Type', p.type) +
      field('Content-Transfer-Encoding', p.encoding ?? (hasEightBit(p.content) ? '8bit' : '7bit')) +
      '\r\n';
    chunks.push(Buffer.from(head, 'utf8'), p.content);
    head = '';
  }
  chunks.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return { sender: '', recipient: to, body: Buffer.concat(chunks), eightBit, smtputf8: utf8, messageId, returned };
}
