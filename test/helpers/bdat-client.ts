/**
 * A CHUNKING client (RFC 3030) for tests: BDAT commands with their chunks, pipelined as a client
 * would (several chunks in one write, or the chunk split over writes), with any bytes in them.
 * No client library here sends BDAT with arbitrary content (swaks and Python's smtplib have no
 * BDAT; Postfix's smtp client is tested separately), so this one builds the bytes itself.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { SmtpTestClient, type Reply } from './smtp-client.js';

export interface Chunk {
  data: Buffer;
  /** Announce this size instead of data.length (a client that lies about it). */
  announce?: number;
}

/** "BDAT <n>[ LAST]\r\n" + the chunk, for every chunk; LAST on the last one when `last`. */
export function bdatBytes(chunks: (Buffer | Chunk)[], last = true): Buffer {
  const parts: Buffer[] = [];
  chunks.forEach((c, i) => {
    const chunk = Buffer.isBuffer(c) ? { data: c } : c;
    const isLast = last && i === chunks.length - 1;
    parts.push(Buffer.from(`BDAT ${chunk.announce ?? chunk.data.length}${isLast ? ' LAST' : ''}\r\n`, 'latin1'), chunk.data);
  });
  return Buffer.concat(parts);
}

export class BdatClient {
  constructor(readonly smtp: SmtpTestClient) {}

  static async connect(port: number, localAddress?: string): Promise<BdatClient> {
    return new BdatClient(await SmtpTestClient.connect(port, '127.0.0.1', localAddress));
  }

  cmd(line: string): Promise<Reply> {
    return this.smtp.cmd(line);
  }

  /** EHLO, MAIL FROM (with `mailParams`) and each RCPT; throws unless all are accepted. */
  async envelope(from: string, to: string[], mailParams = ''): Promise<void> {
    const ehlo = await this.cmd('EHLO bdat.client.test');
    if (ehlo.code !== 250 || !ehlo.lines.includes('CHUNKING')) throw new Error(`no CHUNKING: ${ehlo.raw}`);
    const mail = await this.cmd(`MAIL FROM:<${from}>${mailParams ? ` ${mailParams}` : ''}`);
    if (mail.code !== 250) throw new Error(`MAIL refused: ${mail.raw}`);
    for (const r of to) {
      const rcpt = await this.cmd(`RCPT TO:<${r}>`);
      if (rcpt.code !== 250) throw new Error(`RCPT refused: ${rcpt.raw}`);
    }
  }

  /**
   * Send every chunk pipelined in one write (or one write per chunk when `oneWrite` is false),
   * then read one reply per BDAT.
   */
  async send(chunks: (Buffer | Chunk)[], opts: { last?: boolean; oneWrite?: boolean } = {}): Promise<Reply[]> {
    const last = opts.last ?? true;
    if (opts.oneWrite ?? true) this.smtp.write(bdatBytes(chunks, last));
    else chunks.forEach((c, i) => this.smtp.write(bdatBytes([c], last && i === chunks.length - 1)));
    const replies: Reply[] = [];
    for (let i = 0; i < chunks.length; i++) {
      const r = await this.smtp.read();
      if (!r) break;
      replies.push(r);
    }
    return replies;
  }

  write(data: string | Buffer): void {
    this.smtp.write(data);
  }

  read(): Promise<Reply | null> {
    return this.smtp.read();
  }

  async quit(): Promise<void> {
    this.smtp.write('QUIT\r\n');
    await this.smtp.readUntilClosed();
  }
}

/**
 * EHLO and STARTTLS on a plain connection, then a TLS session on the same socket (certificates
 * not checked: test servers are self-signed). Returns a function that sends one command over TLS
 * and reads its reply, and the TLS socket.
 */
export async function startTls(c: SmtpTestClient): Promise<{ tls: TLSSocket; cmd: (line: string | Buffer) => Promise<string> }> {
  const r = await c.cmd('STARTTLS');
  if (r.code !== 220) throw new Error(`STARTTLS refused: ${r.raw}`);
  c.socket.removeAllListeners('data');
  const tls = tlsConnect({ socket: c.socket, rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => {
    tls.once('secureConnect', () => resolve());
    tls.once('error', reject);
  });
  let buf = '';
  let wake: (() => void) | null = null;
  tls.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    wake?.();
  });
  const cmd = async (line: string | Buffer): Promise<string> => {
    tls.write(typeof line === 'string' ? `${line}\r\n` : line);
    for (;;) {
      const m = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(buf);
      if (m) {
        const end = m.index + m[0].length;
        const out = buf.slice(0, end).replace(/\r\n$/, '').replace(/^\r\n/, '');
        buf = buf.slice(end);
        return out;
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  return { tls, cmd };
}
