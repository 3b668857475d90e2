/**
 * A tiny SMTP server on 127.0.0.1:0 that plays exactly the replies a test scripts, for the edge
 * cases a real server will not produce on demand (a refused RCPT inside a pipelined batch, a 421
 * in mid-session, a greeting that never comes, a hang-up in the middle of the body). It records
 * every command line and the raw DATA bytes (dot-stuffing still in place) per connection.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface ScriptedConnection {
  /** Command lines received, without CRLF. */
  commands: string[];
  /** Raw bytes of each DATA phase, up to and including the final ".\r\n". */
  data: Buffer[];
  /** The commands that arrived in one read from the socket, per read (pipelining shows here). */
  batches: string[][];
  socket: net.Socket;
}

/**
 * The reply to a command line: a string (lines joined with CRLF are sent as they are, CRLF
 * added), 'close' to hang up without a word, 'stall' to say nothing, or undefined for the
 * default (EHLO with `ehlo`, 250 to the rest, 354 to DATA, 221 and close to QUIT).
 */
export type Reply = string | 'close' | 'stall' | undefined;

export interface ScriptOptions {
  /** The greeting; 'stall' never sends one, 'close' hangs up at once. */
  greeting?: string;
  /** EHLO keywords after the first line (default PIPELINING, 8BITMIME, SIZE, DSN, SMTPUTF8, ENHANCEDSTATUSCODES). */
  ehlo?: string[];
  /** The reply to each command line; `n` is the connection's index (0 for the first). */
  reply?: (line: string, conn: ScriptedConnection, n: number) => Reply;
  /** The reply after the end of data. */
  dataReply?: (raw: Buffer, conn: ScriptedConnection, n: number) => Reply;
  /** Hang up after this many bytes of the body have arrived. */
  closeInBodyAfter?: number;
  /** From MAIL on, hold back replies until a line matching this has arrived (proves pipelining). */
  holdRepliesUntil?: RegExp;
}

export interface ScriptedPeer {
  port: number;
  connections: ScriptedConnection[];
  close(): Promise<void>;
}

export const DEFAULT_EHLO = ['PIPELINING', '8BITMIME', 'SIZE 10240000', 'DSN', 'SMTPUTF8', 'ENHANCEDSTATUSCODES'];

export async function scriptedPeer(opts: ScriptOptions = {}): Promise<ScriptedPeer> {
  const connections: ScriptedConnection[] = [];
  const server = net.createServer((socket) => {
    const n = connections.length;
    const conn: ScriptedConnection = { commands: [], data: [], batches: [], socket };
    connections.push(conn);
    socket.on('error', () => undefined);
    let inData = false;
    let text = '';
    let body: Buffer[] = [];
    let bodyBytes = 0;
    let held: string[] | null = null;
    const send = (r: string) => {
      if (held) held.push(r);
      else socket.write(r + '\r\n');
    };
    const answer = (r: Reply, dflt: string): boolean => {
      if (r === 'close') {
        socket.destroy();
        return false;
      }
      if (r === 'stall') return true;
      send(r ?? dflt);
      return true;
    };
    const greet = opts.greeting ?? '220 scripted.test ESMTP';
    if (greet === 'close') return socket.destroy();
    if (greet !== 'stall') socket.write(greet + '\r\n');
    socket.on('data', (chunk: Buffer) => {
      if (inData) return onBody(chunk);
      text += chunk.toString('latin1');
      const batch: string[] = [];
      conn.batches.push(batch);
      for (let nl = text.indexOf('\r\n'); nl >= 0 && !inData; nl = text.indexOf('\r\n')) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 2);
        conn.commands.push(line);
        batch.push(line);
        if (!onLine(line)) return;
      }
      if (inData && text) {
        const rest = Buffer.from(text, 'latin1');
        text = '';
        onBody(rest);
      }
    });
    function release(): void {
      if (!held) return;
      const out = held;
      held = null;
      for (const r of out) socket.write(r + '\r\n');
    }
    function onLine(line: string): boolean {
      const verb = line.split(/[ :]/)[0]!.toUpperCase();
      if (opts.holdRepliesUntil && verb === 'MAIL') held = [];
      const r = opts.reply?.(line, conn, n);
      let ok = true;
      if (verb === 'EHLO') ok = answer(r, ['250-scripted.test', ...(opts.ehlo ?? DEFAULT_EHLO)].map((l, i, a) => (i === a.length - 1 ? `250 ${l}` : `250-${l}`)).join('\r\n'));
      else if (verb === 'DATA') {
        ok = answer(r, '354 go ahead');
        if (ok && (r === undefined || r.startsWith('354'))) inData = true;
      } else if (verb === 'QUIT') {
        ok = answer(r, '221 bye');
        release();
        socket.end();
        return false;
      } else ok = answer(r, '250 2.0.0 ok');
      if (held && opts.holdRepliesUntil?.test(line)) release();
      return ok;
    }
    function onBody(chunk: Buffer): void {
      body.push(chunk);
      bodyBytes += chunk.length;
      if (opts.closeInBodyAfter !== undefined && bodyBytes >= opts.closeInBodyAfter) {
        socket.destroy();
        return;
      }
      const all = Buffer.concat(body);
      const end = all.indexOf('\r\n.\r\n');
      const atStart = all.subarray(0, 3).equals(Buffer.from('.\r\n'));
      if (end < 0 && !atStart) return;
      const stop = atStart ? 3 : end + 5;
      conn.data.push(all.subarray(0, stop));
      inData = false;
      body = [];
      bodyBytes = 0;
      const rest = all.subarray(stop).toString('latin1');
      answer(opts.dataReply?.(all.subarray(0, stop), conn, n), '250 2.0.0 queued');
      if (rest) socket.emit('data', Buffer.from(rest, 'latin1'));
    }
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((res) => {
        for (const c of connections) c.socket.destroy();
        server.close(() => res());
      }),
  };
}
