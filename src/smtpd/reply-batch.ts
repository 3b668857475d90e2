/**
 * Replies to pipelined commands (RFC 2920) in one write: smtp-server writes every reply line
 * with its own socket.write, so a client that sends MAIL, RCPT and DATA in one packet costs three
 * syscalls — profiled as the largest single cost of smtpd per message. Each reply corks the
 * socket until the end of the current tick, so the replies produced together leave together.
 *
 * 220 replies are never corked: STARTTLS sends "220 Ready" and then hands the raw socket to TLS
 * in the same tick, and a reply still corked then would be written into the TLS stream.
 * Checked against smtp-server 3.21: send(code, data, context) → this._socket.write(payload).
 */
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

let installed = false;

export function batchReplies(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as { send(code: number, ...rest: unknown[]): void; _socket?: import('node:net').Socket };
  const librarySend = proto.send;
  proto.send = function (this: typeof proto, code: number, ...rest: unknown[]) {
    const sock = this._socket;
    if (code !== 220 && sock && !sock.destroyed && sock.writableCorked === 0) {
      sock.cork();
      process.nextTick(() => sock.uncork());
    }
    return librarySend.call(this, code, ...rest);
  };
}
