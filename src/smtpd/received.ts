/**
 * The Received: trace header smtpd prepends (RFC 5321 4.4), in the layout Postfix admins read
 * every day, and the small encoders it needs. Everything the client chose (HELO name, recipient)
 * is reduced to printable ASCII before it goes into the header, so a hostile HELO cannot fold
 * in extra header lines.
 */

import { rfc5322Date } from '../core/index.js';
import type { TlsInfo } from './tls-info.js';

export { rfc5322Date };

export interface ReceivedInfo {
  /** HELO/EHLO argument. */
  helo: string;
  /** Verified reverse-DNS name, or null ("unknown", as Postfix writes it). */
  clientName: string | null;
  clientIp: string;
  /** Our hostname. */
  hostname: string;
  /** ESMTP, ESMTPS, UTF8SMTPS, ... (RFC 3848, RFC 6531). */
  protocol: string;
  queueId: string;
  tls?: TlsInfo;
  /** The recipient, only when the message has exactly one (more would leak the Bcc list). */
  recipient?: string;
  /** The message is SMTPUTF8, so UTF-8 may appear in the header. */
  utf8: boolean;
  date: Date;
}


/** Like Postfix's printable(): anything outside visible ASCII becomes "?". */
function printable(s: string): string {
  return s.replace(/[^\x21-\x7e]/g, '?');
}

/** "[192.0.2.1]" or "[IPv6:2001:db8::1]", the address-literal forms of RFC 5321 4.1.3. */
export function addressLiteral(ip: string): string {
  return ip.includes(':') ? `[IPv6:${ip}]` : `[${ip}]`;
}

/**
 * Postfix's TLS comment lines: protocol, cipher and its bits; for TLS 1.3 a continuation with the
 * key exchange and our signature; and that no client certificate was asked for (smtpd asks none).
 */
function tlsLines(t: TlsInfo): string[] {
  const using = `\t(using ${printable(t.protocol)} with cipher ${printable(t.cipher)}${t.bits ? ` (${t.bits[0]}/${t.bits[1]} bits)` : ''}`;
  const more = [
    ...(t.keyExchange ? [`key-exchange ${t.keyExchange}`] : []),
    ...(t.serverSignature ? [`server-signature ${t.serverSignature}`] : []),
    ...(t.serverSignature && t.serverDigest ? [`server-digest ${t.serverDigest}`] : []),
  ].map((s) => s.replace(/[^\x20-\x7e]/g, '?'));
  const head = more.length ? [using, `\t ${more.join(' ')})`] : [`${using})`];
  return [...head, '\t(No client certificate requested)'];
}

export function receivedHeader(r: ReceivedInfo): Buffer {
  const lines: string[] = [];
  lines.push(`Received: from ${printable(r.helo) || 'unknown'} (${r.clientName ? printable(r.clientName) : 'unknown'} ${addressLiteral(r.clientIp)})`);
  if (r.tls) lines.push(...tlsLines(r.tls));
  let rcpt = r.recipient;
  // Outside SMTPUTF8 the header must stay ASCII; a recipient that is not is simply left out.
  if (rcpt !== undefined && !(r.utf8 ? !/[\x00-\x20\x7f]/.test(rcpt) : /^[\x21-\x7e]+$/.test(rcpt))) rcpt = undefined;
  const by = `\tby ${r.hostname} (Postern) with ${r.protocol} id ${r.queueId}`;
  if (rcpt !== undefined) {
    lines.push(by, `\tfor <${rcpt}>; ${rfc5322Date(r.date)}`);
  } else {
    lines.push(`${by};`, `\t${rfc5322Date(r.date)}`);
  }
  return Buffer.from(lines.join('\r\n') + '\r\n', 'utf8');
}
