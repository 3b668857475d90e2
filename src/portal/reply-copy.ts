/**
 * The replier's copy of a PDF reply: the reply as they wrote it (text and attachments) rendered
 * as a PDF encrypted with the password they signed in with — the same one that opens the
 * message they answered — in a short mail from the gateway to their own address.
 *
 * It goes through spool/incoming like the reply (the portal may write nowhere else), from the
 * null sender so nothing can bounce back into a loop, to the outside address the PDF was made
 * for: the policy sees an external message with nothing left to protect, and a rule that wants
 * to change it may. The subject says only whom the reply went to; the reply's subject and text
 * are inside the PDF.
 *
 * Untrusted input: the reply (built by compose.ts from what the visitor typed; rendered by
 * pdfmail, which takes any bytes). Secrets: the password (never logged, never stored) and the
 * reply's content.
 */
import { rfc5322Date, type Envelope } from '../core/index.js';
import { field, hostToken, isAscii, oneLine } from '../dsn/index.js';
import { encodeHeaderValue } from '../mime/index.js';
import { carrierMessage } from '../pdfmail/carrier.js';
import type { FontSet } from '../pdfmail/fonts.js';
import { renderMailPdf, type PdfLook } from '../pdfmail/render.js';
import { saveEncrypted } from '../pdfmail/security.js';
import type { PdfConfig } from '../config/types.js';
import { checkedAddress, newMessageId } from './compose.js';
import { t, type Lang } from './i18n.js';
import './reply-texts.js';

export interface CopyInput {
  /** The reply as spooled (compose.ts). */
  reply: Buffer;
  password: string;
  /** The outside address that replied: the copy goes there. */
  replier: string;
  /** Our user the reply went to (named in the subject and text). */
  sender: string;
  pdf: PdfConfig;
  fonts: FontSet;
  /** The gateway's host name (From:, Message-ID:). */
  hostname: string;
  lang: Lang;
  now?: Date;
  /** Logo bytes of pdf.logo, read at start. */
  logo?: Uint8Array;
}

/** A header value from our texts with an address in it: one line, RFC 2047 when not ASCII. */
function textField(name: string, value: string): string {
  const v = oneLine(value, true);
  return isAscii(v) ? field(name, v) : `${name}: ${encodeHeaderValue(v)}\r\n`;
}

/** A display name: quoted when ASCII, RFC 2047 otherwise (never a place for a quote or bracket). */
function displayName(name: string): string {
  const v = oneLine(name, true).replace(/["\\<>]/g, '');
  return isAscii(v) ? `"${v}"` : encodeHeaderValue(v);
}

/**
 * The copy as a message ready for the spool. Throws PdfRenderError past pdfmail's limits and
 * PdfSecurityError when the password cannot be used with pdf.cipher; the caller says the copy was
 * not made (the reply itself is already on its way).
 */
export async function replierCopy(c: CopyInput): Promise<Buffer> {
  const now = c.now ?? new Date();
  const look: PdfLook = {
    organisation: c.pdf.organisation,
    coverText: c.pdf.cover_text,
    instructions: t(c.lang, 'reply.copy.instructions'),
    replyLabel: c.pdf.reply_label,
    ...(c.logo ? { logo: c.logo } : {}),
  };
  const rendered = await renderMailPdf({ message: c.reply, look, replyUrl: null, fonts: c.fonts, now, limits: { maxAttachments: c.pdf.max_attachments } });
  const pdf = await saveEncrypted(rendered.doc, { userPassword: c.password, cipher: c.pdf.cipher });
  const host = hostToken(c.hostname);
  const header =
    field('Date', rfc5322Date(now)) +
    `From: ${displayName(c.pdf.organisation)} <MAILER-DAEMON@${host}>\r\n` +
    `To: <${checkedAddress(c.replier, 'recipient')}>\r\n` +
    textField('Subject', t(c.lang, 'reply.copy.subject', { sender: c.sender })) +
    field('Message-ID', newMessageId(c.hostname, now)) +
    // An automatic mail (RFC 3834): no vacation reply or auto-answer comes back for it.
    'Auto-Submitted: auto-generated\r\n' +
    '\r\n';
  return carrierMessage({
    original: Buffer.from(header, 'utf8'),
    pdf,
    filename: 'reply.pdf',
    // {sender} and {organisation} are filled by carrierMessage.
    text: t(c.lang, 'reply.copy.text'),
    sender: c.sender,
    organisation: c.pdf.organisation,
  });
}

/** From the null sender to the replier, as an untrusted client's mail; no delivery report asked for. */
export function copyEnvelope(replier: string, client: string, protocol: 'HTTP' | 'HTTPS', now = new Date()): Envelope {
  return {
    sender: '',
    recipients: [{ address: replier, notify: ['NEVER'] }],
    client: { address: client, port: 0, helo: '', hostname: `[${client}]`, protocol, trusted: false },
    receivedAt: now.toISOString(),
    ...(isAscii(replier) ? {} : { smtputf8: true, body: '8BITMIME' as const }),
  };
}
