/**
 * From the session and its transaction to Postern's Envelope (core/envelope.ts), which travels
 * with the message through the spool.
 */
import { addressKey, canonicalAddress, type Envelope, type Recipient } from '../core/index.js';
import type { SessionState, Transaction } from './session.js';

/**
 * xtext (RFC 3461 4): path.ts hands us ENVID and ORCPT decoded, the Envelope stores them as
 * received, so they are encoded again (canonically: "+", "=" and non-visible bytes as +XX).
 */
export function xtextEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    // "+XX" decodes to the single char U+00XX, so chars below 256 are one byte each;
    // anything above can only have come from raw (invalid) UTF-8 and is encoded byte by byte.
    const bytes = c < 0x100 ? [c] : [...Buffer.from(ch, 'utf8')];
    for (const b of bytes) {
      out += b < 0x21 || b > 0x7e || b === 0x2b || b === 0x3d ? '+' + b.toString(16).toUpperCase().padStart(2, '0') : String.fromCharCode(b);
    }
  }
  return out;
}

/**
 * An address in its canonical wire form (A-labels, which every next hop reads, SMTPUTF8 or not);
 * address literals and the null sender stay as they are.
 */
export function wireAddress(address: string, smtputf8: boolean): string {
  const at = address.lastIndexOf('@');
  if (at < 0 || address[at + 1] === '[') return address;
  return canonicalAddress(address, { utf8: smtputf8 }) ?? address;
}

/** The "with" protocol of the Received header: RFC 3848 (ESMTP, ESMTPS) and RFC 6531 (UTF8SMTP…). */
export function protocolName(esmtp: boolean, secure: boolean, smtputf8: boolean): string {
  const base = esmtp ? (smtputf8 ? 'UTF8SMTP' : 'ESMTP') : 'SMTP';
  return base + (secure ? 'S' : '');
}

export function buildEnvelope(state: SessionState, tx: Transaction, now: Date): Envelope {
  // One mailbox, one recipient: spellings that canonicalise to the same key (BOB@ and "bob"@, a
  // full-width domain) are delivered once, as Postfix's cleanup drops duplicate recipients; the
  // first spelling's DSN parameters are kept.
  const recipients: Recipient[] = [];
  const seen = new Set<string>();
  for (const rcpt of tx.recipients) {
    const key = addressKey(rcpt.address);
    if (seen.has(key)) continue;
    seen.add(key);
    recipients.push(rcpt);
  }
  const envelope: Envelope = {
    sender: tx.sender,
    recipients,
    client: {
      address: state.remoteAddress,
      port: state.remotePort,
      helo: state.helo ?? '',
      hostname: state.clientHostname ?? `[${state.remoteAddress}]`,
      protocol: protocolName(state.esmtp, !!state.tls, tx.smtputf8),
      trusted: state.trusted,
    },
    receivedAt: now.toISOString(),
  };
  if (state.tls) envelope.client.tls = { protocol: state.tls.protocol, cipher: state.tls.cipher };
  if (tx.ret) envelope.ret = tx.ret;
  if (tx.envid !== undefined) envelope.envid = tx.envid;
  if (tx.body) envelope.body = tx.body;
  if (tx.smtputf8) envelope.smtputf8 = true;
  if (tx.requireTls) envelope.requireTls = true;
  return envelope;
}
