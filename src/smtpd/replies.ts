/**
 * SMTP replies. Postern's typed errors carry their enhanced status code (RFC 3463); smtp-server,
 * with ENHANCEDSTATUSCODES on, prefixes every reply from a table keyed by the basic code alone
 * (554 → 5.6.0, 550 → 5.1.1, 250 after DATA → 2.6.0), which would turn "554 5.7.1 relay access
 * denied" into "554 5.6.0 5.7.1 relay access denied". So our errors put their enhanced code at the
 * start of the message, and a per-connection hook on send() tells smtp-server not to add its own
 * to a reply that already has one. The library's own replies keep its codes.
 */
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { PosternError } from '../core/index.js';

/** An Error as smtp-server's callbacks want it: responseCode plus text (ours starts with X.Y.Z). */
export interface SmtpServerError extends Error {
  responseCode: number;
}

export function toSmtpServerError(e: PosternError): SmtpServerError {
  const err = new Error(`${e.reply.status} ${e.reply.text}`) as SmtpServerError;
  err.responseCode = e.reply.code;
  return err;
}

/** The text of a successful reply, with its own enhanced code. */
export function okText(status: string, text: string): string {
  return `${status} ${text}`;
}

const HAS_ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

/**
 * Wrap `conn.send` so a reply text that starts with an enhanced status code is sent as is, and
 * report every 4xx/5xx reply (the rejection log line).
 */
export function hookReplies(conn: SMTPConnection, onError: (code: number, line: string) => void): void {
  const send = conn.send;
  conn.send = function (this: SMTPConnection, code, data, context) {
    if (typeof data === 'string' && HAS_ENHANCED.test(data)) context = false;
    if (code >= 400) {
      try {
        onError(code, `${code} ${Array.isArray(data) ? data.join(' ') : (data ?? '')}`);
      } catch {
        // logging must never break the session
      }
    }
    return send.call(this, code, data, context);
  };
}
