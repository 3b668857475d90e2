/**
 * The client side of RFC 1845 CHECKPOINT/RESTART, written for the tests (no client library or
 * MTA here speaks it): dot-stuffing of the message from an offset, a transaction cut off after
 * a chosen number of octets of the DATA stream, and the restart that sends the rest after 355.
 */
import { SmtpTestClient, type Reply } from './smtp-client.js';

/**
 * The DATA stream for `message` from `offset` on (which must be a line start, as the server
 * promises): lines that start with "." get another, and the terminating "." line follows.
 */
export function dataStream(message: Buffer, offset = 0): Buffer {
  const rest = message.subarray(offset);
  const parts: Buffer[] = [];
  let lineStart = 0;
  for (;;) {
    if (rest[lineStart] === 0x2e) parts.push(Buffer.from('.'));
    const nl = rest.indexOf('\r\n', lineStart);
    if (nl < 0) {
      parts.push(rest.subarray(lineStart));
      break;
    }
    parts.push(rest.subarray(lineStart, nl + 2));
    lineStart = nl + 2;
    if (lineStart === rest.length) break;
  }
  const body = Buffer.concat(parts);
  const ends = body.length === 0 || body.subarray(-2).equals(Buffer.from('\r\n'));
  return Buffer.concat([body, Buffer.from(ends ? '.\r\n' : '\r\n.\r\n')]);
}

export interface Transaction {
  helo: string;
  sender: string;
  recipients: string[];
  transid?: string;
  /** Extra MAIL FROM parameters (" BODY=8BITMIME", ...). */
  mailParams?: string;
}

/** EHLO, MAIL FROM (with TRANSID), RCPT TO for each recipient; the MAIL reply is returned. */
export async function openTransaction(port: number, tx: Transaction, localAddress?: string): Promise<{ client: SmtpTestClient; ehlo: Reply; mail: Reply }> {
  const client = await SmtpTestClient.connect(port, '127.0.0.1', localAddress);
  const ehlo = await client.cmd(`EHLO ${tx.helo}`);
  const mail = await client.cmd(`MAIL FROM:<${tx.sender}>${tx.transid ? ` TRANSID=${tx.transid}` : ''}${tx.mailParams ?? ''}`);
  if (mail.code === 250) {
    for (const r of tx.recipients) {
      const rr = await client.cmd(`RCPT TO:<${r}>`);
      if (rr.code !== 250) throw new Error(`RCPT TO:<${r}>: ${rr.raw}`);
    }
  }
  return { client, ehlo, mail };
}

/**
 * Send DATA and the first `octets` of the DATA stream, then drop the connection as a failing
 * network would (the socket destroyed, no QUIT). Resolves once the socket is closed.
 */
export async function cutDuringData(client: SmtpTestClient, stream: Buffer, octets: number): Promise<void> {
  const r = await client.cmd('DATA');
  if (r.code !== 354) throw new Error(`DATA: ${r.raw}`);
  await new Promise<void>((resolve) => client.socket.write(stream.subarray(0, octets), () => resolve()));
  // Give the server the bytes before the connection goes (a reset would drop them in flight).
  await new Promise((r) => setTimeout(r, 50));
  client.destroy();
  await client.closed;
}

/** The offset of a "355 <offset> ..." reply (RFC 1845: the first thing on its first line). */
export function transactionOffset(reply: Reply): number {
  const m = /^(\d+)(?:\s|$)/.exec(reply.lines[0] ?? '');
  if (reply.code !== 355 || !m) throw new Error(`not a 355 reply: ${reply.raw}`);
  return Number(m[1]);
}

/** After a 355: DATA, the message from `offset` on, and the final reply. */
export async function sendRest(client: SmtpTestClient, message: Buffer, offset: number): Promise<Reply> {
  const r = await client.cmd('DATA');
  if (r.code !== 354) return r;
  client.write(dataStream(message, offset));
  const done = await client.read();
  if (!done) throw new Error('connection closed before the end-of-data reply');
  return done;
}
