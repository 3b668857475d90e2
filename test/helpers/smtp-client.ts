/**
 * A raw SMTP client for tests that need byte-exact control (pipelining, bare CR/LF, hanging up
 * mid-DATA), which real client libraries rightly refuse to produce.
 */
import { connect, type Socket } from 'node:net';

export interface Reply {
  code: number;
  /** Text of each line after "NNN-" / "NNN ". */
  lines: string[];
  /** The whole reply as received, lines joined by "\n". */
  raw: string;
}

export class SmtpTestClient {
  private buffer = '';
  private readonly replies: Reply[] = [];
  private waiters: ((r: Reply | null) => void)[] = [];
  private ended = false;
  readonly closed: Promise<void>;
  greeting!: Reply;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d.toString('latin1')));
    socket.on('error', () => undefined); // a reset from the server shows as closed
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        for (const w of this.waiters.splice(0)) w(null);
        resolve();
      }),
    );
  }

  /** `localAddress` picks the source address (all of 127/8 is loopback on Linux: other "clients"). */
  static async connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<SmtpTestClient> {
    const socket = connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new SmtpTestClient(socket);
    const g = await c.read();
    if (!g) throw new Error('connection closed before the greeting');
    c.greeting = g;
    return c;
  }

  private onData(s: string): void {
    this.buffer += s;
    let current: string[] = [];
    for (;;) {
      const nl = this.buffer.indexOf('\r\n');
      if (nl < 0) break;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 2);
      current.push(line);
      if (line.length < 4 || line[3] === ' ') {
        const reply: Reply = { code: Number(line.slice(0, 3)), lines: current.map((l) => l.slice(4)), raw: current.join('\n') };
        current = [];
        const w = this.waiters.shift();
        if (w) w(reply);
        else this.replies.push(reply);
      }
    }
    // An unfinished multi-line reply stays in the buffer until its last line arrives.
    if (current.length) this.buffer = current.join('\r\n') + '\r\n' + this.buffer;
  }

  /** The next reply, or null when the server closed the connection first. */
  read(timeoutMs = 10_000): Promise<Reply | null> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no SMTP reply within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push((reply) => {
        clearTimeout(t);
        resolve(reply);
      });
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** One command; `utf8` sends it as UTF-8 (SMTPUTF8 addresses) instead of Latin-1. */
  async cmd(line: string, utf8 = false): Promise<Reply> {
    this.write(utf8 ? Buffer.from(line + '\r\n', 'utf8') : line + '\r\n');
    const r = await this.read();
    if (!r) throw new Error(`connection closed after ${JSON.stringify(line)}`);
    return r;
  }

  /** Every reply until the server closes the connection (or `timeoutMs` passes). */
  async readUntilClosed(timeoutMs = 10_000): Promise<Reply[]> {
    const out: Reply[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection still open after ${timeoutMs} ms; replies: ${out.map((r) => r.raw).join(' | ')}`);
      const r = await this.read(left);
      if (!r) return out;
      out.push(r);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
