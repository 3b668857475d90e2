/**
 * SMTP replies. Postern's typed errors carry their enhanced status code (RFC 3463); smtp-server,
 * with ENHANCEDSTATUSCODES on, prefixes every reply from a table keyed by the basic code alone
 * (554 → 5.6.0, 550 → 5.1.1, 250 after DATA → 2.6.0), which would turn "554 5.7.1 relay access
 * denied" into "554 5.6.0 5.7.1 relay access denied". So our errors put their enhanced code at the
 * start of the message, and a per-connection hook on send() tells smtp-server not to add its own
 * to a reply that already has one. The library's own replies keep its codes.
 */
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { PosternError } from '../core/index.js';

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

// Replies Postern needs that have no class in core/ yet (see the note in index.ts).

/** NUL in DATA: refused in every mode (see bare-newline.ts). */
export class NulByteError extends PosternError {
  constructor(text = 'NUL character in message data') {
    super({ code: 550, status: '5.6.0', text });
  }
}

/** A MAIL/RCPT parameter we do not implement (RFC 5321 4.1.1.11: 555). */
export class UnsupportedParameterError extends PosternError {
  constructor(text = 'unsupported MAIL FROM/RCPT TO parameter') {
    super({ code: 555, status: '5.5.4', text });
  }
}

export class ParameterSyntaxError extends PosternError {
  constructor(text: string) {
    super({ code: 501, status: '5.5.4', text });
  }
}

export class RecipientSyntaxError extends PosternError {
  constructor(text = 'bad recipient address syntax') {
    super({ code: 501, status: '5.1.3', text });
  }
}

/** Over max_connections: Postfix anvil's reply. */
export class TooManyConnectionsError extends PosternError {
  constructor(hostname: string) {
    super({ code: 421, status: '4.7.0', text: `${hostname} Error: too many connections` });
  }
}

/** A bug or an unexpected failure in our handlers: the client should try again later. */
export class LocalError extends PosternError {
  constructor(cause: unknown) {
    super({ code: 451, status: '4.3.0', text: 'local error in processing; try again later' }, { cause });
  }
}

export class ShuttingDownError extends PosternError {
  constructor(hostname: string) {
    super({ code: 421, status: '4.3.2', text: `${hostname} service shutting down` });
  }
}
