/**
 * SMTP replies: the protocol's own (greeting, 250 OK, 503 bad sequence …) in one table, and the
 * writer that sends them. Postern's typed errors (core/) carry their own code, enhanced status
 * (RFC 3463) and text; every other reply is listed here, with the enhanced code RFC 2034 asks for
 * on every reply but the greeting and the answers to HELO/EHLO.
 *
 * Replies to pipelined commands (RFC 2920) leave together: the writer holds them until the
 * connection is about to wait for the client, then sends them in one write.
 */
import type { Socket } from 'node:net';
import type { PosternError } from '../core/index.js';

export interface Reply {
  code: number;
  /** The text after the code, enhanced status first where there is one; one entry per line. */
  lines: string[];
}

export const reply = (code: number, ...lines: string[]): Reply => ({ code, lines });

export const fromError = (e: PosternError): Reply => reply(e.reply.code, `${e.reply.status} ${e.reply.text}`);

/** The protocol replies (texts as smtp-server wrote them where clients and tests know them). */
export const PROTOCOL = {
  ok: reply(250, '2.0.0 OK'),
  mailOk: reply(250, '2.1.0 Accepted'),
  rcptOk: reply(250, '2.1.5 Accepted'),
  reset: reply(250, '2.0.0 Flushed'),
  bye: reply(221, '2.0.0 Bye'),
  help: reply(214, '2.0.0 See https://tools.ietf.org/html/rfc5321 for details'),
  // RFC 5321 3.5.3: 252 when we will not say whether a mailbox exists (we never do).
  vrfy: reply(252, '2.5.2 Cannot VRFY user, but will accept message and attempt delivery'),
  vrfySyntax: reply(501, '5.5.4 Error: Syntax: VRFY address'),
  startData: reply(354, 'End data with <CR><LF>.<CR><LF>'),
  startTls: reply(220, '2.0.0 Ready to start TLS'),
  tlsActive: reply(503, '5.5.1 Error: TLS already active'),
  startTlsSyntax: reply(501, '5.5.4 Error: syntax: STARTTLS'),
  unknown: reply(500, '5.5.2 Error: command not recognized'),
  tooLong: reply(500, '5.5.2 Error: line too long'),
  heloFirst: reply(503, '5.5.1 Error: send HELO/EHLO first'),
  nestedMail: reply(503, '5.5.1 Error: nested MAIL command'),
  needMail: reply(503, '5.5.1 Error: need MAIL command'),
  needRcpt: reply(503, '5.5.1 Error: need RCPT command'),
  senderSyntax: reply(501, '5.1.7 Error: Bad sender address syntax'),
  recipientSyntax: reply(501, '5.1.3 Error: Bad recipient address syntax'),
  ehloSyntax: reply(501, 'Error: syntax: EHLO hostname'),
  heloSyntax: reply(501, 'Error: Syntax: HELO hostname'),
  heloHostname: reply(501, 'Error: Bad hostname syntax'),
  http: reply(421, '4.7.0 HTTP requests not allowed'),
  internal: reply(451, '4.3.0 Error: internal server error'),
} as const;

/** A Postfix-style 421 that names us. */
export const closing = (hostname: string, status: string, text: string): Reply => reply(421, `${status} ${hostname} ${text}`);

export function format(r: Reply): string {
  return r.lines.map((l, i) => `${r.code}${i < r.lines.length - 1 ? '-' : ' '}${l.replace(/[\x00-\x1f\x7f]/g, ' ')}`).join('\r\n') + '\r\n';
}

/** One reply as a single log line ("554 5.7.1 relay access denied"). */
export const logLine = (r: Reply): string => `${r.code} ${r.lines.join(' ')}`;

/** Holds replies until flush(); never writes to a socket that is gone or being handed to TLS. */
export class ReplyWriter {
  private held: string[] = [];

  constructor(private socket: Socket) {}

  /** The socket replies go to from now on (the TLS socket after STARTTLS). */
  use(socket: Socket): void {
    this.socket = socket;
  }

  queue(r: Reply): void {
    this.held.push(format(r));
  }

  get pending(): boolean {
    return this.held.length > 0;
  }

  /** Write what is held; true when the socket took it without buffering past its high-water mark. */
  flush(): boolean {
    if (!this.held.length) return true;
    const out = this.held.join('');
    this.held = [];
    if (this.socket.destroyed || !this.socket.writable) return true;
    return this.socket.write(out);
  }
}
