/**
 * A reply written on a portal page (PDF reply, webmail) as a mail: built here as RFC 5322/MIME
 * bytes, then written into spool/incoming exactly as smtpd writes a message it accepted, so the
 * worker applies the policy to it like any other inbound mail (it comes from outside).
 *
 * Untrusted input: everything the visitor typed or uploaded — subject, text, file names and
 * media types of attachments — and the client's IP. None of it may add a header field or break
 * the MIME structure: the subject is one line (RFC 2047 when not ASCII), the text is
 * quoted-printable, file names lose any path, control and bidi characters and are bounded (they
 * go out as RFC 2231 parameters), a media type the browser made up becomes
 * application/octet-stream. Addresses come from the portal's own records (the reply link, the
 * account), yet are checked to be canonical all the same.
 * Secrets: the message content, never logged here.
 */
import { randomBytes } from 'node:crypto';
import { AddressNotCanonicalError, BareNewlineError, canonicalAddress, NulByteError, rfc5322Date, type Envelope } from '../core/index.js';
import { field, hostToken, isAscii, oneLine } from '../dsn/index.js';
import { addAttachments, encodeHeaderValue, encodeQuotedPrintable, type Attachment } from '../mime/index.js';
import { distinctNames } from '../pdfmail/file-names.js';
import type { Spool } from '../spool/index.js';

export interface ReplyAttachment {
  /** As the browser sent it: may hold a path, control characters, anything. */
  filename: string;
  /** As the browser sent it (it guesses from the extension, or the visitor's tool chose it). */
  contentType: string;
  content: Buffer;
}

export interface ReplyDraft {
  /** The outside address replying (canonical). */
  from: string;
  /** The internal correspondents (canonical). */
  to: string[];
  subject: string;
  text: string;
  /** The message-id of the mail replied to, with or without its angle brackets. */
  inReplyTo?: string;
  /** The thread's earlier message-ids (the original's References), oldest first. */
  references?: string[];
  attachments: ReplyAttachment[];
  /** The client's IP address as the portal saw it. */
  client: string;
  /** The portal's host name, for Received: and Message-ID:. */
  portalHost: string;
  /** 'HTTPS' unless the portal answered over plain HTTP (loopback only). */
  protocol?: 'HTTP' | 'HTTPS';
  /** The Message-ID to use (with angle brackets); a new one otherwise (see newMessageId). */
  messageId?: string;
  now?: Date;
}

const CRLF = '\r\n';
/** More than any subject a person types; a longer one is cut, not mailed around. */
const MAX_SUBJECT = 500;
/** References kept: the first (thread root) and the latest ones, as RFC 5322 3.6.4 suggests trimming. */
const MAX_REFERENCES = 20;
/** A msg-id as RFC 5322 has it (dot-atom or no-fold-literal sides), bounded. */
const MSG_ID = /^<[\x21-\x3b\x3d\x3f-\x7e]{1,250}@[\x21-\x3b\x3d\x3f-\x7e]{1,250}>$/;
/** type/subtype, tokens only: no parameter from the browser is kept. */
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;
/** Types whose parameters matter to the reader: we would have to trust the browser's; send them as bytes. */
const OPAQUE = /^(multipart|message)\//;

/** A fresh Message-ID under the portal's host name. */
export function newMessageId(portalHost: string, now = new Date()): string {
  return `<${now.getTime().toString(36)}.${randomBytes(9).toString('hex')}.reply@${hostToken(portalHost).replace(/[[\]:]/g, '-')}>`;
}

/** "<id@host>" for a message-id written with or without brackets, or undefined when it is none. */
export function msgId(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  const bracketed = v.startsWith('<') ? v : `<${v}>`;
  return MSG_ID.test(bracketed) ? bracketed : undefined;
}

/** The address, canonical, or a refusal: only our own records should reach here, but never trusted blindly. */
export function checkedAddress(address: string, who: 'sender' | 'recipient'): string {
  const canonical = canonicalAddress(address);
  if (canonical === null || /[\x00-\x20\x7f<>,;]/.test(canonical.replace(/^"[^"]*"/, ''))) {
    throw new AddressNotCanonicalError(who, 'not an address');
  }
  return canonical;
}

/**
 * File names a recipient can save safely: the last component of any path the browser sent
 * (some send C:\fakepath\…, a hostile client "../../.ssh/authorized_keys"), then pdfmail's rules
 * (no control or bidi characters, no leading dots or device names, bounded, distinct).
 */
export function attachmentNames(raw: readonly string[]): string[] {
  return distinctNames(raw.map((n) => n.slice(Math.max(n.lastIndexOf('/'), n.lastIndexOf('\\')) + 1)));
}

/** The browser's media type if it is a plain type/subtype we can pass on, else application/octet-stream. */
export function attachmentType(raw: string): string {
  const t = raw.split(';')[0]!.trim().toLowerCase();
  return MEDIA_TYPE.test(t) && !OPAQUE.test(t) ? t : 'application/octet-stream';
}

/** The text as typed, with CRLF line ends and no control characters a mail reader would choke on. */
function bodyText(text: string): string {
  const lines = text
    .replace(/\r\n|\r|\n/g, '\n')
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, '')
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .split('\n');
  return lines.join(CRLF) + (text.endsWith('\n') ? '' : CRLF);
}

function subjectField(subject: string): string {
  let s = oneLine(subject, true);
  if (s.length > MAX_SUBJECT) s = s.slice(0, MAX_SUBJECT).replace(/[\ud800-\udbff]$/, '');
  return isAscii(s) ? field('Subject', s) : `Subject: ${encodeHeaderValue(s)}${CRLF}`;
}

/** The Received: field of a message that came in over the portal's web form. */
function receivedField(r: ReplyDraft, now: Date): string {
  const ip = /^[0-9A-Fa-f.:]{2,45}$/.test(r.client) ? r.client : 'unknown';
  const literal = ip.includes(':') ? `[IPv6:${ip}]` : `[${ip}]`;
  return (
    `Received: from ${literal} (${literal})${CRLF}` +
    `\tby ${hostToken(r.portalHost)} (Postern portal) with ${r.protocol ?? 'HTTPS'};${CRLF}` +
    `\t${rfc5322Date(now)}${CRLF}`
  );
}

/** References: the thread's ids (first and latest kept when long), then the one replied to. */
function referencesOf(r: ReplyDraft, inReplyTo: string | undefined): string[] {
  const ids = (r.references ?? []).map(msgId).filter((x): x is string => x !== undefined);
  if (inReplyTo && ids[ids.length - 1] !== inReplyTo) ids.push(inReplyTo);
  const unique = ids.filter((id, i) => ids.indexOf(id) === i);
  return unique.length > MAX_REFERENCES ? [unique[0]!, ...unique.slice(unique.length - MAX_REFERENCES + 1)] : unique;
}

/**
 * The reply as a message: trace and origin fields, text/plain UTF-8 quoted-printable, and when
 * there are attachments multipart/mixed with each one base64 under an RFC 2231 file name.
 * Throws AddressNotCanonicalError for an address that is none.
 */
export function composeReply(r: ReplyDraft): Buffer {
  const now = r.now ?? new Date();
  const from = checkedAddress(r.from, 'sender');
  const to = r.to.map((a) => checkedAddress(a, 'recipient'));
  if (to.length === 0) throw new AddressNotCanonicalError('recipient', 'no recipient');
  const inReplyTo = msgId(r.inReplyTo);
  const references = referencesOf(r, inReplyTo);
  const messageId = msgId(r.messageId) ?? newMessageId(r.portalHost, now);
  const head =
    receivedField(r, now) +
    field('Date', rfc5322Date(now)) +
    `From: <${from}>${CRLF}` +
    field('To', to.map((a) => `<${a}>,`).join(' ').replace(/,$/, '')) +
    subjectField(r.subject) +
    field('Message-ID', messageId) +
    (inReplyTo ? field('In-Reply-To', inReplyTo) : '') +
    (references.length ? field('References', references.join(' ')) : '') +
    'MIME-Version: 1.0' + CRLF +
    'Content-Type: text/plain; charset=utf-8' + CRLF +
    'Content-Transfer-Encoding: quoted-printable' + CRLF +
    CRLF;
  const text = encodeQuotedPrintable(Buffer.from(bodyText(r.text), 'utf8'));
  // The text ends with a line end; encodeQuotedPrintable gives it back as a final empty line.
  const message = Buffer.from(head + text, 'utf8');
  if (r.attachments.length === 0) return message;
  const names = attachmentNames(r.attachments.map((a) => a.filename));
  const parts: Attachment[] = r.attachments.map((a, i) => ({ filename: names[i]!, contentType: attachmentType(a.contentType), content: a.content }));
  return addAttachments(message, parts);
}

/**
 * The envelope of a portal reply, as smtpd would have built it for an untrusted client: the
 * worker then treats the mail as inbound from outside (never as relayed by a trusted network).
 */
export function replyEnvelope(r: { from: string; to: readonly string[]; client: string; protocol?: 'HTTP' | 'HTTPS'; now?: Date }): Envelope {
  const from = checkedAddress(r.from, 'sender');
  const to = [...new Set(r.to.map((a) => checkedAddress(a, 'recipient')))];
  const utf8 = !isAscii(from) || to.some((a) => !isAscii(a));
  return {
    sender: from,
    recipients: to.map((address) => ({ address })),
    client: { address: r.client, port: 0, helo: '', hostname: `[${r.client}]`, protocol: r.protocol ?? 'HTTPS', trusted: false },
    receivedAt: (r.now ?? new Date()).toISOString(),
    ...(utf8 ? { smtputf8: true, body: '8BITMIME' as const } : {}),
  };
}

/** What smtpd refuses in DATA must not reach the spool by the portal either (the worker trusts it). */
function checkLineEnds(body: Buffer): void {
  for (let i = 0; i < body.length; i++) {
    const b = body[i]!;
    if (b === 0) throw new NulByteError();
    if (b === 0x0d ? body[i + 1] !== 0x0a : b === 0x0a && body[i - 1] !== 0x0d) throw new BareNewlineError();
  }
}

/**
 * Writes the message into spool/incoming through smtpd's IncomingWriter (tmp/, fsync, rename,
 * directory fsync) and returns its queue id once it is durable. Throws InsufficientStorageError
 * or SpoolWriteError as smtpd's commit does; nothing is left behind then.
 */
export async function spoolReply(spool: Spool, envelope: Envelope, body: Buffer): Promise<string> {
  checkLineEnds(body);
  const writer = await spool.createIncoming(envelope);
  try {
    writer.write(body);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer.commit();
}
