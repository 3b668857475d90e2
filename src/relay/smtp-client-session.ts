/**
 * One SMTP client session with a next hop (RFC 5321): connect (plain, or implicit TLS for
 * smtps), greeting, EHLO with a HELO fallback, STARTTLS (RFC 3207) per the route's TLS mode, then
 * commands and replies. Replies are read in order, so a caller may write several commands at once
 * (PIPELINING, RFC 2920) and read their replies one by one.
 *
 * The session knows at each moment which reply it is waiting for (its phase), so a lost
 * connection or a time-out is reported the way Postfix reports it ("lost connection with … while
 * sending MAIL FROM") without guessing. Every failure is an SmtpClientError; the session is
 * unusable after one.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { SmtpPhase } from './diagnostic.js';
import { demandsTls, judgePeer, type PeerCheck, type TlsFacts } from './tls-peer.js';

/** One reply, possibly multi-line. `lines` are the raw lines ("250-PIPELINING", "250 SIZE 10240000"). */
export interface SmtpReply {
  code: number;
  /** RFC 3463 enhanced status code at the start of the text ("5.1.1"), when there is one. */
  enhanced?: string;
  lines: string[];
}

/** The reply on one line, as logs, queue records and DSNs show it. */
export function replyText(r: SmtpReply): string {
  return r.lines.join(' ').trim();
}

/**
 * What went wrong on the connection. `reply`: the next hop refused the session (greeting, HELO,
 * STARTTLS) with this reply; the others carry no reply of the next hop.
 */
export type SessionFailure = 'connect' | 'timeout' | 'lost' | 'tls-handshake' | 'tls-not-offered' | 'tls-refused' | 'tls-auth' | 'protocol' | 'reply';

export class SmtpClientError extends Error {
  constructor(
    readonly failure: SessionFailure,
    readonly phase: SmtpPhase | undefined,
    /** `reason`: why the certificate was not good enough (tls-auth), in Postfix's words. */
    readonly detail: { reply?: SmtpReply; errno?: string; address?: string; reason?: string; tls?: TlsFacts } = {},
  ) {
    super(`smtp ${failure}${phase ? ` (${phase})` : ''}${detail.reply ? `: ${replyText(detail.reply)}` : detail.errno ? `: ${detail.errno}` : detail.reason ? `: ${detail.reason}` : ''}`);
    this.name = 'SmtpClientError';
  }
}

export interface SessionOptions {
  /** Where to connect: an address (mx routes) or a name (smtp routes). */
  host: string;
  port: number;
  /** The exchanger's DNS name: TLS SNI. */
  servername?: string;
  /** smtps://: TLS from the first byte. */
  implicitTls: boolean;
  /** STARTTLS: use it when offered (may), insist on it (encrypt), or never (none). */
  tls: 'may' | 'encrypt' | 'none';
  /** What the certificate must prove (verify, dane, sts); implies encrypt. */
  peer?: PeerCheck;
  /** The CAs a chain may end at (PEM); Node's own list when absent. */
  ca?: readonly string[];
  /** Our EHLO name. */
  hostname: string;
  timeouts: { connection: number; greeting: number; socket: number };
}

/**
 * The handshake never rejects by itself: at "may" and "encrypt" (Postfix's levels) a self-signed
 * certificate, the norm between MTAs, is fine, and where a level demands more, judgePeer decides
 * after the handshake with the reason Postfix would give. Node still computes `authorized`
 * against `ca`, which says "trusted" or "untrusted" in the log.
 */
function tlsOptions(opts: SessionOptions): tls.ConnectionOptions {
  // SNI carries names only (RFC 6066 §3); Node refuses an address there.
  const sni = opts.servername && !net.isIP(opts.servername) ? opts.servername : !net.isIP(opts.host) ? opts.host : undefined;
  return {
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    ...(sni ? { servername: sni } : {}),
    ...(opts.ca ? { ca: [...opts.ca] } : {}),
    // Node's default also checks the name and throws from the handshake: judgePeer does it instead.
    checkServerIdentity: () => undefined,
  };
}

/** A reply line longer than this, or a reply of more lines, is not SMTP (RFC 5321 allows 512). */
const MAX_LINE = 8192;
const MAX_LINES = 200;
const REPLY_LINE = /^([2-5]\d\d)([ -]|$)(.*)$/;
const ENHANCED = /^([245]\.\d{1,3}\.\d{1,3})(?:\s|$)/;

interface Waiter {
  phase: SmtpPhase;
  resolve: (r: SmtpReply) => void;
  reject: (e: SmtpClientError) => void;
}

export class SmtpSession {
  /** EHLO keywords (upper case) and their parameters. */
  readonly extensions = new Map<string, string>();
  /** The session runs over TLS (smtps or STARTTLS). */
  secure = false;
  /** The plaintext EHLO reply announced STARTTLS. */
  starttlsOffered = false;
  /** Version, cipher and verification of the TLS session, once it is up. */
  tls: TlsFacts | undefined;
  /** What a report-only check (MTA-STS testing) would have refused. */
  tlsReport: string | undefined;
  /** The address we are connected to. */
  address: string;
  /** Messages sent on this session (a reused connection may have gone stale meanwhile). */
  messages = 0;
  /** What the session is doing when no reply is awaited (writing the body). */
  phase: SmtpPhase = 'greeting';
  private socket!: net.Socket;
  private get required(): boolean {
    return this.opts.tls === 'encrypt' || demandsTls(this.opts.peer);
  }
  private partial = '';
  private lines: string[] = [];
  private readonly replies: SmtpReply[] = [];
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private failure: SmtpClientError | undefined;
  /** The next hop said 421: it closes the connection after this reply. */
  private closing = false;
  private readonly closeListeners: (() => void)[] = [];

  private constructor(private readonly opts: SessionOptions) {
    this.address = opts.host;
  }

  /** Connect, read the greeting, say EHLO and do STARTTLS as the route asks. */
  static async open(opts: SessionOptions): Promise<SmtpSession> {
    const s = new SmtpSession(opts);
    await s.connect();
    try {
      s.expectCode(await s.read('greeting'), 220, 'greeting');
      await s.hello();
      if (opts.implicitTls) s.judge(s.socket as tls.TLSSocket);
      else if (opts.tls !== 'none' || demandsTls(opts.peer)) await s.startTls();
      s.phase = 'mail';
      return s;
    } catch (e) {
      s.destroy();
      throw e;
    }
  }

  /** Usable for another transaction: connected, no failure, not told to go away (421). */
  get usable(): boolean {
    return !this.failure && !this.closing && !this.socket.destroyed;
  }

  /** Nothing unasked arrived (an idle connection must not hold a reply the next MAIL would take). */
  get clean(): boolean {
    return this.replies.length === 0 && this.lines.length === 0 && this.partial === '' && this.waiters.length === 0;
  }

  /** Called once when the connection ends for whatever reason (a cache drops the session). */
  onClose(fn: () => void): void {
    this.closeListeners.push(fn);
  }

  private connect(): Promise<void> {
    const { host, port, timeouts } = this.opts;
    return new Promise<void>((resolve, reject) => {
      let tcpUp = false;
      const socket = this.opts.implicitTls ? tls.connect({ host, port, ...tlsOptions(this.opts) }) : net.connect({ host, port });
      this.socket = socket;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(tcpUp ? new SmtpClientError('tls-handshake', undefined) : new SmtpClientError('connect', undefined, { errno: 'ETIMEDOUT' }));
      }, timeouts.connection);
      const onError = (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        // smtps: the TCP connection stood, the handshake on it did not.
        reject(
          tcpUp && this.opts.implicitTls
            ? new SmtpClientError('tls-handshake', undefined)
            : new SmtpClientError('connect', undefined, { errno: err.code, ...((err as { address?: string }).address ? { address: (err as { address?: string }).address } : {}) }),
        );
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        tcpUp = true;
        this.address = socket.remoteAddress ?? host;
      });
      socket.once(this.opts.implicitTls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        this.secure = this.opts.implicitTls;
        this.attach(socket);
        resolve();
      });
    });
  }

  private attach(socket: net.Socket): void {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('error', this.onEnd);
    socket.on('close', this.onEnd);
  }

  private detach(): net.Socket {
    const socket = this.socket;
    socket.off('data', this.onData);
    socket.off('error', this.onEnd);
    socket.off('close', this.onEnd);
    return socket;
  }

  private readonly onEnd = () => this.fail(new SmtpClientError('lost', this.waiters[0]?.phase ?? this.phase));

  private readonly onData = (chunk: Buffer) => {
    const text = this.partial + chunk.toString('latin1');
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.onLine(text.slice(start, end));
      start = nl + 1;
      if (this.failure) return;
    }
    this.partial = text.slice(start);
    if (this.partial.length > MAX_LINE) this.fail(new SmtpClientError('protocol', this.waiters[0]?.phase ?? this.phase));
  };

  private onLine(line: string): void {
    const m = REPLY_LINE.exec(line);
    // A continuation line must carry the code the reply started with (RFC 5321 §4.2.1).
    if (!m || line.length > MAX_LINE || (this.lines.length && !this.lines[0]!.startsWith(m[1]!)) || this.lines.length >= MAX_LINES) {
      this.fail(new SmtpClientError('protocol', this.waiters[0]?.phase ?? this.phase));
      return;
    }
    this.lines.push(line);
    if (m[2] === '-') return;
    const lines = this.lines;
    this.lines = [];
    const code = Number(m[1]);
    if (code === 421) this.closing = true;
    const enhanced = ENHANCED.exec(m[3]!.trimStart())?.[1];
    const reply: SmtpReply = { code, lines, ...(enhanced && enhanced[0] === m[1]![0] ? { enhanced } : {}) };
    const w = this.waiters.shift();
    if (w) {
      this.disarm();
      w.resolve(reply);
      this.arm();
    } else this.replies.push(reply); // ahead of its read (or unasked, like a 421 on an idle line)
  }

  /** The next reply, in order. A 421 leaves the session unusable (the next hop is closing it). */
  read(phase: SmtpPhase): Promise<SmtpReply> {
    if (this.failure) return Promise.reject(this.failure);
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise<SmtpReply>((resolve, reject) => {
      this.waiters.push({ phase, resolve, reject });
      if (this.waiters.length === 1) this.arm();
    });
  }

  /** The time-out runs for the oldest reply awaited (the greeting has its own). */
  private arm(): void {
    const w = this.waiters[0];
    if (!w || this.timer) return;
    const ms = w.phase === 'greeting' ? this.opts.timeouts.greeting : this.opts.timeouts.socket;
    this.timer = setTimeout(() => this.fail(new SmtpClientError('timeout', w.phase)), ms);
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Write commands (CRLF added to each); with PIPELINING several go in one write. */
  send(...commands: string[]): void {
    if (this.failure) return;
    this.socket.write(commands.length === 1 ? commands[0] + '\r\n' : commands.join('\r\n') + '\r\n');
  }

  /** Write raw bytes (the message body); resolves when the socket can take more. */
  async write(data: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.socket.write(data)) return;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(t);
        this.socket.off('drain', done);
        this.socket.off('close', done);
        if (this.failure) reject(this.failure);
        else resolve();
      };
      // A next hop that stops reading the body: as Postfix's smtp_data_xfer_timeout.
      const t = setTimeout(() => {
        this.fail(new SmtpClientError('timeout', this.phase));
        done();
      }, this.opts.timeouts.socket);
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  async command(command: string, phase: SmtpPhase): Promise<SmtpReply> {
    this.send(command);
    return this.read(phase);
  }

  private expectCode(r: SmtpReply, code: number, phase: SmtpPhase): SmtpReply {
    if (r.code !== code) throw this.fail(new SmtpClientError('reply', phase, { reply: r }));
    return r;
  }

  /** EHLO, or HELO when the next hop refuses EHLO with 5xx (RFC 5321 §4.1.4 fallback). */
  private async hello(): Promise<void> {
    const name = this.opts.hostname;
    let r = await this.command(`EHLO ${name}`, 'ehlo');
    this.extensions.clear();
    if (r.code >= 500) {
      r = await this.command(`HELO ${name}`, 'helo');
      if (r.code !== 250) throw this.fail(new SmtpClientError('reply', 'helo', { reply: r }));
      return;
    }
    if (r.code !== 250) throw this.fail(new SmtpClientError('reply', 'ehlo', { reply: r }));
    for (const line of r.lines.slice(1)) {
      const [kw, ...params] = line.slice(4).trim().split(/\s+/);
      if (kw) this.extensions.set(kw.toUpperCase(), params.join(' '));
    }
  }

  private async startTls(): Promise<void> {
    const offered = this.extensions.has('STARTTLS');
    this.starttlsOffered = offered;
    if (!offered) {
      if (this.required) throw this.fail(new SmtpClientError('tls-not-offered', 'starttls'));
      return;
    }
    const r = await this.command('STARTTLS', 'starttls');
    if (r.code !== 220) {
      // Postfix's "may" level carries on in clear when STARTTLS is refused; "encrypt" defers.
      if (this.required) throw this.fail(new SmtpClientError('tls-refused', 'starttls', { reply: r }));
      return;
    }
    if (this.replies.length || this.partial || this.lines.length) throw this.fail(new SmtpClientError('protocol', 'starttls')); // RFC 3207 §5: nothing may follow the 220 in clear
    const plain = this.detach();
    await new Promise<void>((resolve, reject) => {
      const secure = tls.connect({ socket: plain, ...tlsOptions(this.opts) });
      const timer = setTimeout(() => fail(), this.opts.timeouts.socket);
      const fail = () => {
        clearTimeout(timer);
        secure.destroy();
        plain.destroy();
        reject(this.fail(new SmtpClientError('tls-handshake', 'starttls')));
      };
      secure.once('error', fail);
      plain.once('close', fail);
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        secure.off('error', fail);
        plain.off('close', fail);
        this.secure = true;
        this.attach(secure);
        resolve();
      });
    });
    this.judge(this.socket as tls.TLSSocket);
    await this.hello();
  }

  /** Record what TLS gave; a certificate the route cannot accept ends the session before EHLO. */
  private judge(socket: tls.TLSSocket): void {
    const v = judgePeer(socket, this.opts.peer);
    this.tls = v.facts;
    if (v.ok) this.tlsReport = v.report;
    else throw this.fail(new SmtpClientError('tls-auth', 'starttls', { reason: v.reason, tls: v.facts }));
  }

  /** Mark the session failed: every reply awaited gets the error; the connection is cut. */
  fail(err: SmtpClientError): SmtpClientError {
    if (this.failure) return this.failure;
    this.failure = err;
    this.disarm();
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.socket?.destroy();
    for (const fn of this.closeListeners.splice(0)) fn();
    return err;
  }

  /** Say QUIT and close, without waiting long for the goodbye. */
  quit(): void {
    if (this.failure) return;
    this.phase = 'quit';
    this.send('QUIT');
    this.read('quit').then(
      () => this.destroy(),
      () => undefined,
    );
    // The next hop may never answer: the connection goes anyway.
    setTimeout(() => this.destroy(), 1000).unref();
  }

  destroy(): void {
    this.fail(new SmtpClientError('lost', 'quit'));
  }
}
