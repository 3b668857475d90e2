/**
 * The messages Postern writes itself when policy asks for them: the delivery report to the sender
 * (`notify_sender`: what happened to their message, per recipient) and the alert to an
 * administrator (`alert:`: which rule fired, for whom, and what was done). Both are sent from the
 * null sender <> (RFC 5321 4.5.5), so nothing — no bounce, no vacation reply — can come back and
 * start a loop; both say Auto-Submitted (RFC 3834) for the responders that look at that instead.
 *
 * Untrusted input: the original's header values (subject, date, message id, the whole header
 * block of an alert) and the envelope addresses. Each value is reduced to one printable line
 * before it goes into a header field, so nothing from the original can add a field of its own;
 * the alert carries the original's header block in its text, and never its body: an alert goes
 * to people who are not the recipients, and must not leak the content.
 */
import { randomBytes } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { rfc5322Date } from '../core/index.js';
import { field, hostToken, isAscii, oneLine, quotedPrintable, wrap } from '../dsn/index.js';
import { decodeWords, encodeHeaderValue, parseHeaders, splitHeader } from '../mime/index.js';

export type Delivery = 'sent' | 'held' | 'bounced' | 'deleted';
export type Encryption = 'smime' | 'pgp' | 'pdf' | 'webmail' | null;

/** What became of the message for one recipient. */
export interface RecipientOutcome {
  recipient: string;
  delivery: Delivery;
  /** How it went out, when sent; null = in clear. */
  encryption: Encryption;
  signed: boolean;
  /** Why it was held, bounced or deleted (the policy's reason). */
  reason?: string;
}

/** The original's fields a report refers to: raw values as in the message (RFC 2047 allowed). */
export interface OriginalHeaders {
  subject?: string;
  messageId?: string;
  date?: string;
  autoSubmitted?: string;
}

export interface SenderNoticeInput {
  hostname: string;
  queueId: string;
  /** The envelope sender: the notice goes to this address. */
  sender: string;
  originalHeaders: OriginalHeaders;
  outcomes: readonly RecipientOutcome[];
  now?: Date;
  /** From: of the notice; default "Mail Delivery System <MAILER-DAEMON@hostname>". */
  from?: string;
}

export interface AdminAlertInput {
  hostname: string;
  queueId: string;
  /** The alert's addresses (the policy's `alert:` list). */
  to: readonly string[];
  /** The rules that fired. */
  rules: readonly string[];
  /** What the rule said or why it fired, when there is more to say than its name. */
  reason?: string;
  /** The envelope sender of the original ("" for <>). */
  sender: string;
  /** The recipients the rules fired for; with their outcomes, the alert says what was done. */
  recipients: readonly (string | RecipientOutcome)[];
  /** The original message, or its header block: only the header block is ever used. */
  original: Buffer;
  now?: Date;
  from?: string;
}

/** Text lines of at most 75 octets: quoted-printable (75 and "=") then breaks only lines with non-ASCII. */
export const WIDTH = 75;

/** More than any honest header block; a hostile one is cut rather than mailed around. */
const MAX_HEADER_BYTES = 64 * 1024;

/** The fields a report needs, from the original message (or its header block). */
export function originalHeadersOf(message: Buffer): OriginalHeaders {
  const h = parseHeaders(splitHeader(message).header);
  const first = (name: string) => h.get(name)?.[0];
  const out: OriginalHeaders = {};
  for (const [k, name] of [['subject', 'subject'], ['messageId', 'message-id'], ['date', 'date'], ['autoSubmitted', 'auto-submitted']] as const) {
    const v = first(name);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/**
 * Whether a delivery report may go to this sender: never to the null sender, and never about a
 * message that was itself automatic (RFC 3834 2: no automatic answers to automatic mail).
 */
export function wantsSenderNotice(sender: string, original: OriginalHeaders): boolean {
  if (!sender) return false;
  const auto = (original.autoSubmitted ?? 'no').trim().toLowerCase().split(/[\s;(]/)[0];
  return auto === 'no' || auto === '';
}

/** A header field with a value from outside: one line, RFC 2047 when not ASCII, folded. */
export function textField(name: string, value: string): string {
  const v = oneLine(value, true);
  return isAscii(v) ? field(name, v) : `${name}: ${encodeHeaderValue(v)}\r\n`;
}

/** An address for To:, in angle brackets; raw UTF-8 (RFC 6532) only when the address is not ASCII. */
export const angle = (address: string) => `<${oneLine(address, true).replace(/[<>,\s]/g, '')}>`;

/** The first msg-id of a Message-ID value, or undefined: nothing else may reach In-Reply-To. */
export function msgId(value: string | undefined): string | undefined {
  return /<[\x21-\x3b\x3d\x3f-\x7e]{1,900}>/.exec(value ?? '')?.[0];
}

function atom(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, '-') || 'x';
}

export function messageIdFor(queueId: string, kind: string, host: string, now: Date): string {
  const domain = host.split('.').filter(Boolean).map(atom).join('.') || 'localhost';
  return `<${now.getTime().toString(36)}.${atom(queueId)}.${kind}.${randomBytes(6).toString('hex')}@${domain}>`;
}

/** The whole message: header fields, then the text as UTF-8, 7bit when it can be, quoted-printable otherwise. */
export function assemble(fields: string, lines: string[]): Buffer {
  const text = lines.join('\r\n') + '\r\n';
  const plain = isAscii(text) && lines.every((l) => l.length <= 998);
  return Buffer.from(
    fields +
      'MIME-Version: 1.0\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Transfer-Encoding: ${plain ? '7bit' : 'quoted-printable'}\r\n` +
      '\r\n' +
      (plain ? text : quotedPrintable(Buffer.from(text, 'utf8')).replace(/(\r\n)?$/, '\r\n')),
    'utf8',
  );
}

const METHOD: Record<Exclude<Encryption, null | 'webmail'>, string> = { smime: 'encrypted (S/MIME)', pgp: 'encrypted (OpenPGP)', pdf: 'as an encrypted PDF' };

/** "sent signed and encrypted (S/MIME) to a@example.net", "held for b@example.org: no key" … */
export function describeOutcome(o: RecipientOutcome): string {
  const to = oneLine(o.recipient, true);
  const why = o.reason ? `: ${oneLine(o.reason, true)}` : '';
  switch (o.delivery) {
    case 'sent': {
      // Nothing of the message travels: a notice with the link does (never signed: nothing to sign).
      if (o.encryption === 'webmail') return `put into the webmail mailbox of ${to} (who was sent a notice with the link)`;
      const how = o.encryption ? METHOD[o.encryption] : 'unencrypted';
      if (!o.signed) return `sent ${how} to ${to}`;
      return o.encryption === 'pdf' ? `sent signed, ${how}, to ${to}` : o.encryption ? `sent signed and ${how} to ${to}` : `sent signed, unencrypted, to ${to}`;
    }
    case 'held':
      return `held for ${to}${why}`;
    case 'bounced':
      return `not delivered to ${to}${why}`;
    case 'deleted':
      return `deleted by policy, not delivered to ${to}${why}`;
  }
}

/** A list item, wrapped at 78 with its continuation lines indented under the text. */
const item = (text: string) => wrap('-', text, '  ', WIDTH);

/** The acknowledgement `notify_sender` asks for: what happened to the sender's message, per recipient. */
export function senderNotice(input: SenderNoticeInput): Buffer {
  if (!input.sender) throw new Error('notices: no report is sent to the null sender');
  const now = input.now ?? new Date();
  const host = hostToken(input.hostname);
  const orig = input.originalHeaders;
  const subject = oneLine(decodeWords(orig.subject ?? ''), true);
  const date = oneLine(orig.date ?? '', true);
  const replyTo = msgId(orig.messageId);
  const fields =
    (input.from ? textField('From', input.from) : field('From', `Mail Delivery System <MAILER-DAEMON@${host}>`)) +
    field('To', angle(input.sender)) +
    textField('Subject', `Delivery report: ${subject || '(no subject)'}`) +
    field('Date', rfc5322Date(now)) +
    field('Message-ID', messageIdFor(input.queueId, 'report', host, now)) +
    (replyTo ? field('In-Reply-To', replyTo) + field('References', replyTo) : '') +
    // RFC 3834 5: an answer to a message (auto-replied), so vacation responders stay quiet.
    field('Auto-Submitted', 'auto-replied');
  const what = `Your message ${subject ? `"${subject}"` : '(no subject)'}${date ? ` (sent ${date})` : ''} was:`;
  const held = input.outcomes.some((o) => o.delivery === 'held');
  const lines = [
    `This is the mail gateway at host ${host}.`,
    '',
    ...wrap('', what, '', WIDTH),
    '',
    ...input.outcomes.flatMap((o) => item(describeOutcome(o))),
    '',
    ...(held ? [...wrap('', 'A held message waits until an administrator releases or deletes it; you need not send it again.', '', WIDTH), ''] : []),
    `Queue ID: ${oneLine(input.queueId, false)}`,
  ];
  return assemble(fields, lines);
}

/**
 * The original's header block as text lines: fields and their continuations only, stopping at
 * the first line that is neither — so a message without the empty line cannot slip its body in —
 * and cut at MAX_HEADER_BYTES.
 */
function headerLines(original: Buffer): string[] {
  const { header } = splitHeader(original);
  const out: string[] = [];
  let size = 0;
  for (const raw of header.toString('latin1').split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '') continue;
    const isField = /^[!-9;-~]+:/.test(line);
    if (!isField && !(/^[ \t]/.test(line) && out.length)) break;
    const bytes = Buffer.from(line, 'latin1');
    size += bytes.length + 2;
    if (size > MAX_HEADER_BYTES) {
      out.push('[... header cut ...]');
      break;
    }
    // Raw UTF-8 (RFC 6532) as text; anything else byte for byte as Latin-1, so it stays visible.
    out.push((isUtf8(bytes) ? bytes.toString('utf8') : line).replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?'));
  }
  return out;
}

/** The message `alert:` sends to an administrator: the rule, the mail it fired for, what was done. */
export function adminAlert(input: AdminAlertInput): Buffer {
  if (!input.to.length) throw new Error('notices: an alert needs at least one address');
  const now = input.now ?? new Date();
  const host = hostToken(input.hostname);
  const rules = input.rules.map((r) => `"${oneLine(r, true)}"`);
  const ruleText = rules.length ? `${rules.length > 1 ? 'rules' : 'rule'} ${rules.join(', ')}` : 'the policy';
  const orig = originalHeadersOf(input.original);
  const subject = oneLine(decodeWords(orig.subject ?? ''), true);
  const fields =
    (input.from ? textField('From', input.from) : field('From', `Postern <MAILER-DAEMON@${host}>`)) +
    field('To', input.to.map(angle).join(', ')) +
    textField('Subject', `Policy alert: ${ruleText} (queue ${oneLine(input.queueId, false)})`) +
    field('Date', rfc5322Date(now)) +
    field('Message-ID', messageIdFor(input.queueId, 'alert', host, now)) +
    // RFC 3834 5: not a reply to anyone, generated by the gateway itself.
    field('Auto-Submitted', 'auto-generated');
  const recipients = input.recipients.flatMap((r) => item(typeof r === 'string' ? oneLine(r, true) : describeOutcome(r)));
  const lines = [
    `This is the mail gateway at host ${host}.`,
    '',
    ...wrap('', `Policy ${ruleText} matched a message.`, '', WIDTH),
    ...(input.reason ? wrap('Reason:', oneLine(input.reason, true), '  ', WIDTH) : []),
    '',
    `Queue ID:  ${oneLine(input.queueId, false)}`,
    `Sender:    ${input.sender ? angle(input.sender) : '<> (the null sender)'}`,
    ...wrap('Subject:  ', subject || '(no subject)', '  ', WIDTH),
    ...(recipients.length ? ['', 'Recipients:', ...recipients] : []),
    '',
    "The message's header follows; its content is not included in this alert.",
    '',
    ...headerLines(input.original),
  ];
  return assemble(fields, lines);
}

export interface PdfPasswordNoticeInput {
  hostname: string;
  queueId: string;
  /** The sender who is told (the envelope sender of the message that needed the password). */
  sender: string;
  /** Whom the PDFs go to; '*' scope: every sender's PDFs to this recipient use it. */
  recipient: string;
  password: string;
  /** One password for this recipient from all senders (pdf.password_scope: recipient). */
  recipientScope: boolean;
  /** A password made again (pdf password reset): the old one no longer opens new mail. */
  reset: boolean;
  /** The message that needed it; absent: an administrator made or set it (postern pdf password reset|set). */
  originalHeaders?: OriginalHeaders;
  now?: Date;
}

/**
 * The header of a password notice to our own sender (PDF mail's, webmail's): from the gateway,
 * threaded to the message that needed the password, automatic (RFC 3834).
 */
export function passwordNoticeFields(o: { host: string; queueId: string; kind: string; sender: string; subject: string; now: Date; original?: OriginalHeaders }): string {
  const replyTo = msgId(o.original?.messageId);
  return (
    field('From', `Postern <MAILER-DAEMON@${o.host}>`) +
    field('To', angle(o.sender)) +
    textField('Subject', o.subject) +
    field('Date', rfc5322Date(o.now)) +
    field('Message-ID', messageIdFor(o.queueId, o.kind, o.host, o.now)) +
    (replyTo ? field('In-Reply-To', replyTo) + field('References', replyTo) : '') +
    field('Auto-Submitted', 'auto-generated')
  );
}

/**
 * PDF mail: the password a recipient needs, told to the sender once (and after a reset), who
 * passes it on by another channel — the telephone, in person — never by e-mail. It goes to our own
 * user through the internal mail server, never outside (the plan only sends PDFs for mail whose
 * sender we can tell: the null sender gets none).
 */
export function pdfPasswordNotice(input: PdfPasswordNoticeInput): Buffer {
  if (!input.sender) throw new Error('notices: no password notice to the null sender');
  const now = input.now ?? new Date();
  const host = hostToken(input.hostname);
  const orig = input.originalHeaders;
  const subject = oneLine(decodeWords(orig?.subject ?? ''), true);
  const to = oneLine(input.recipient, true);
  const fields = passwordNoticeFields({ host, queueId: input.queueId, kind: 'pdf-password', sender: input.sender, subject: `${input.reset ? 'New password' : 'Password'} for encrypted PDF mail to ${to}`, now, ...(orig ? { original: orig } : {}) });
  const scope = input.recipientScope ? `every encrypted PDF sent to ${to}, from anyone here` : `every encrypted PDF you send to ${to}`;
  const lines = [
    `This is the mail gateway at host ${host}.`,
    '',
    ...wrap('', orig ? `Your message ${subject ? `"${subject}"` : '(no subject)'} went to ${to} as an encrypted PDF. ${to} needs this password to open it:` : `An administrator made a new password for the encrypted PDF mail you send to ${to}. ${to} needs it to open the PDFs you send from now on:`, '', WIDTH),
    '',
    `    ${input.password}`,
    '',
    ...wrap('', `Tell it to ${to} by telephone or in person, never by e-mail: whoever reads both the mail and the password can read the message. The password opens ${scope}${input.reset ? '; the previous password opens only the PDFs sent before' : ''}. You will not be sent it again.`, '', WIDTH),
    '',
    ...wrap('', 'Keep this notice, or delete it once you have passed the password on: your administrator can show it again (postern pdf password show).', '', WIDTH),
    '',
    `Queue ID: ${oneLine(input.queueId, false)}`,
  ];
  return assemble(fields, lines);
}
