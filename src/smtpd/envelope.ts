/**
 * From smtp-server's session to Postern's Envelope (core/envelope.ts), which travels with the
 * message through the spool.
 */
import type { SMTPServerSession } from 'smtp-server';
import { addressKey, canonicalAddress, type Envelope, type Recipient } from '../core/index.js';
import type { SessionState } from './session.js';

/**
 * xtext (RFC 3461 4): smtp-server hands us ENVID and ORCPT already decoded, the Envelope stores
 * them as received, so they are encoded again (canonically: "+", "=" and non-visible bytes as +XX).
 */
export function xtextEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    // smtp-server decodes "+XX" to the single char U+00XX, so chars below 256 are one byte each;
    // anything above can only have come from raw (invalid) UTF-8 and is encoded byte by byte.
    const bytes = c < 0x100 ? [c] : [...Buffer.from(ch, 'utf8')];
    for (const b of bytes) {
      out += b < 0x21 || b > 0x7e || b === 0x2b || b === 0x3d ? '+' + b.toString(16).toUpperCase().padStart(2, '0') : String.fromCharCode(b);
    }
  }
  return out;
}

/**
 * smtp-server turns punycode domains into Unicode; the envelope keeps the canonical form
 * (A-labels, which every next hop reads, SMTPUTF8 or not). Only a fallback: the MAIL and RCPT
 * handlers have already canonicalised and refused what has no canonical form.
 */
export function wireAddress(address: string, smtputf8: boolean): string {
  const at = address.lastIndexOf('@');
  if (at < 0 || address[at + 1] === '[') return address;
  return canonicalAddress(address, { utf8: smtputf8 }) ?? address;
}

/** The "with" protocol of the Received header: RFC 3848 (ESMTP, ESMTPS) and RFC 6531 (UTF8SMTP…). */
export function protocolName(session: SMTPServerSession, smtputf8: boolean): string {
  const base = session.openingCommand === 'EHLO' ? (smtputf8 ? 'UTF8SMTP' : 'ESMTP') : 'SMTP';
  return base + (session.secure ? 'S' : '');
}

export function buildEnvelope(session: SMTPServerSession, state: SessionState, now: Date): Envelope {
  const mailFrom = session.envelope.mailFrom;
  const args = (mailFrom && mailFrom.args) || {};
  const smtputf8 = args.SMTPUTF8 === true;
  // One mailbox, one recipient: spellings that canonicalise to the same key (BOB@ and "bob"@, a
  // full-width domain) are delivered once, as Postfix's cleanup drops duplicate recipients.
  // smtp-server already folds repeats that differ only in case; the first spelling's DSN
  // parameters are kept.
  const recipients: Recipient[] = [];
  const seen = new Set<string>();
  for (const r of session.envelope.rcptTo) {
    const rcpt = state.recipients.get(r) ?? { address: wireAddress(r.address, smtputf8) };
    const key = addressKey(rcpt.address);
    if (seen.has(key)) continue;
    seen.add(key);
    recipients.push(rcpt);
  }
  const envelope: Envelope = {
    sender: mailFrom ? (state.sender ?? wireAddress(mailFrom.address, smtputf8)) : '',
    recipients,
    client: {
      address: session.remoteAddress,
      port: session.remotePort,
      helo: session.hostNameAppearsAs || '',
      hostname: session.clientHostname || `[${session.remoteAddress}]`,
      protocol: protocolName(session, smtputf8),
      trusted: state.trusted,
    },
    receivedAt: now.toISOString(),
  };
  if (state.tls) envelope.client.tls = { protocol: state.tls.protocol, cipher: state.tls.cipher };
  if (typeof args.RET === 'string') envelope.ret = args.RET.toUpperCase() === 'HDRS' ? 'HDRS' : 'FULL';
  if (typeof args.ENVID === 'string') envelope.envid = xtextEncode(args.ENVID);
  if (typeof args.BODY === 'string') envelope.body = args.BODY.toUpperCase() === '8BITMIME' ? '8BITMIME' : '7BIT';
  if (smtputf8) envelope.smtputf8 = true;
  return envelope;
}
