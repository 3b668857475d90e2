/**
 * One client connection: the greeting, the command loop, replies (held while the client
 * pipelines, RFC 2920), STARTTLS on the same socket, the idle and session clocks, and the
 * hang-up. The commands themselves are in commands.ts and transfer.ts; this module owns the
 * socket, so that after a hang-up nothing the client sent is read or answered.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { ShuttingDownError, SmtpTimeLimitError, TooManyClientConnectionsError, TooManyConnectionsError, type PosternError } from '../core/index.js';
import { countConnection, countRefused, type Logger } from '../log/index.js';
import type { PartialStore, Spool } from '../spool/index.js';
import type { SessionSlots } from './client-limits.js';
import { dispatch } from './commands.js';
import { clientName } from './fcrdns.js';
import { ClientInput, TOO_LONG } from './input.js';
import { disconnectFailure, timeoutFailure, type IncomingMessage } from './message.js';
import { closing, fromError, logLine, PROTOCOL, ReplyWriter, reply, type Reply } from './replies.js';
import type { SessionState } from './session.js';
import type { SmtpdSettings } from './settings.js';
import { tlsInfo } from './tls-info.js';

/** What a connection needs from the smtpd that accepted it. */
export interface ConnectionHost {
  readonly spool: Spool;
  /** Cut RFC 1845 transactions (smtp.checkpoint). */
  readonly partials: PartialStore;
  readonly log: Logger;
  readonly slots: SessionSlots;
  /** The listener, for per-listener connection counting. */
  readonly listener: object;
  settings(): SmtpdSettings;
  /** null: no certificate, no STARTTLS. */
  secureContext(): SecureContext | null;
  shuttingDown(): boolean;
  /** ETRN: the deferred entries moved back to outgoing/ for `pattern` (server.ts SmtpdOptions.etrn). */
  etrn(pattern: string): Promise<string[]>;
  onQueued?: (id: string) => void;
}

/** Longest command line we read at all; each command has its own limit below it (commands.ts). */
export const MAX_LINE = 1200;
/** Replies of pipelined commands are sent at the latest when this much is waiting. */
const REPLY_FLUSH_AT = 16 * 1024;
/** A hung-up client gets this long to close its side before the socket is destroyed. */
const HALF_CLOSE_MS = 5000;
/** RFC 5321 4.5.3.2 has no limit for this; Postfix's smtpd_hard_error_limit is 20, ours 10. */
const MAX_ERRORS = 10;

export class Connection {
  readonly state: SessionState;
  readonly input = new ClientInput();
  private readonly replies: ReplyWriter;
  private socket: Socket;
  private errors = 0;
  /** A message is being received (DATA/BDAT until its reply): shutdown and session_timeout wait. */
  message: IncomingMessage | null = null;
  private waiting = false;
  private sessionExpired = false;
  private dataTimer: NodeJS.Timeout | undefined;
  dataTimedOut = false;
  private releaseSlot: (() => void) | null = null;
  readonly done: Promise<void>;

  constructor(
    readonly host: ConnectionHost,
    raw: Socket,
  ) {
    this.socket = raw;
    this.replies = new ReplyWriter(raw);
    const settings = host.settings();
    const ip = normalizeIp(raw.remoteAddress ?? '');
    this.state = {
      settings,
      trusted: settings.trusted.contains(ip),
      remoteAddress: ip,
      remotePort: raw.remotePort ?? 0,
      clientHostname: null,
      esmtp: false,
      tx: null,
    };
    raw.on('error', (err: NodeJS.ErrnoException) => host.log.debug({ event: 'smtpd.socket_error', code: err.code, client: ip }, 'client socket error'));
    raw.setNoDelay(true);
    this.armIdle(raw);
    this.input.attach(raw);
    this.done = this.run();
  }

  get hungUp(): boolean {
    return !!this.state.hungUp;
  }

  get secure(): boolean {
    return !!this.state.tls;
  }

  private armIdle(socket: Socket): void {
    socket.setTimeout(this.state.settings.idleTimeout, () => {
      // Only while the client owes us input: waiting on the disk is our delay, not theirs.
      if (!this.waiting || this.hungUp) return;
      this.hangUp(closing(this.state.settings.hostname, '4.4.2', 'Error: timeout exceeded'), 'idle_timeout');
    });
  }

  /** Queue a reply; an error reply is logged (with `reason`, or the one set in state) and counted. */
  send(r: Reply, reason?: string): void {
    if (this.hungUp) return;
    if (r.code >= 400) this.logReject(r, reason ?? this.state.reason ?? 'protocol');
    this.state.reason = undefined;
    this.replies.queue(r);
  }

  sendError(e: PosternError, reason: string): void {
    this.send(fromError(e), reason);
  }

  /** A protocol error (bad syntax, bad sequence): too many of them and the client is sent away. */
  protocolError(r: Reply): void {
    this.send(r);
    if (++this.errors >= MAX_ERRORS) this.hangUp(closing(this.state.settings.hostname, '4.7.0', 'Error: too many errors'), 'errors');
  }

  /** After each message, as Postfix does: errors count per transaction. */
  resetErrors(): void {
    this.errors = 0;
  }

  private logReject(r: Reply, reason: string): void {
    try {
      countRefused(reason, r.code);
      this.host.log.info(
        { event: 'smtpd.reject', reason, client: this.state.remoteAddress, sender: this.state.tx ? this.state.tx.sender : undefined, reply: logLine(r) },
        'rejected',
      );
    } catch {
      // logging must never break the session
    }
  }

  /** Send what is held now (before reading on, when a reply must not wait). */
  flush(): void {
    this.replies.flush();
  }

  /** Called by the reads each time they are about to wait for the client. */
  readonly beforeWait = (): void => {
    this.waiting = true;
    this.replies.flush();
  };

  /** Send `r` (if any), then close: nothing the client sends from now on is read or answered. */
  hangUp(r?: Reply, reason?: string): void {
    if (this.hungUp) return;
    if (r) this.send(r, reason);
    this.state.hungUp = true;
    this.replies.flush();
    this.input.detach();
    this.input.discard();
    this.input.end();
    this.releaseSlot?.();
    const s = this.socket;
    if (!s.destroyed) {
      s.end();
      // Without a reader the socket would not see the client's FIN; what still comes is dropped.
      s.resume();
      setTimeout(() => s.destroy(), HALF_CLOSE_MS).unref();
    }
  }

  /** smtp.data_timeout: one clock for the whole message, all its BDAT chunks included. */
  startDataClock(): void {
    if (this.dataTimer) return;
    this.dataTimer = setTimeout(() => {
      this.dataTimedOut = true;
      // Ends whatever read is waiting; the loop then aborts the message and answers 421.
      this.input.detach();
      this.input.discard();
      this.input.end();
    }, this.state.settings.dataTimeout);
  }

  /** The message has its reply: stop its clock, and honour a session_timeout or shutdown that waited. */
  messageAnswered(): void {
    clearTimeout(this.dataTimer);
    this.dataTimer = undefined;
    this.message = null;
    const hostname = this.state.settings.hostname;
    if (this.sessionExpired) {
      const err = new SmtpTimeLimitError(hostname, 'session');
      this.hangUp(fromError(err), 'session_timeout');
    } else if (this.host.shuttingDown()) {
      this.hangUp(fromError(new ShuttingDownError(hostname)), 'shutdown');
    }
  }

  /**
   * End the transaction (RSET, HELO/EHLO, STARTTLS): a message being received by BDAT is thrown
   * away, so nothing of it stays in tmp/.
   */
  async resetTransaction(): Promise<void> {
    this.state.tx = null;
    const msg = this.message;
    if (!msg) return;
    this.message = null;
    clearTimeout(this.dataTimer);
    this.dataTimer = undefined;
    await msg.abort({ ...disconnectFailure(), reason: 'rset' });
  }

  /** Called by the server at close(): idle sessions are told at once; one in a message finishes first. */
  shutdown(): void {
    if (this.message || this.hungUp) return;
    this.hangUp(fromError(new ShuttingDownError(this.state.settings.hostname)), 'shutdown');
  }

  /** The server gave up waiting: drop the socket (a message in progress is aborted by run()). */
  destroy(): void {
    this.state.hungUp = true;
    this.input.end();
    this.socket.destroy();
  }

  private expire(): void {
    this.sessionExpired = true;
    if (this.message) return; // answered first, then hung up (messageAnswered)
    this.hangUp(fromError(new SmtpTimeLimitError(this.state.settings.hostname, 'session')), 'session_timeout');
  }

  private async run(): Promise<void> {
    try {
      if (await this.greet()) await this.commands();
      await this.endOfInput();
    } catch (err) {
      this.host.log.error({ event: 'smtpd.internal_error', err }, 'connection failed');
      this.hangUp(PROTOCOL.internal, 'local');
    } finally {
      clearTimeout(this.dataTimer);
      // Whatever ended the session, a message it was receiving leaves nothing behind.
      if (this.message) await this.message.abort(disconnectFailure()).catch(() => undefined);
      this.message = null;
      this.releaseSlot?.();
      if (!this.hungUp) this.hangUp();
    }
  }

  /** Admission and the 220; false when the client was sent away. */
  private async greet(): Promise<boolean> {
    const { settings, trusted, remoteAddress } = this.state;
    countConnection();
    if (this.host.shuttingDown()) {
      this.hangUp(fromError(new ShuttingDownError(settings.hostname)), 'shutdown');
      return false;
    }
    const admission = this.host.slots.admit(this.host.listener, this, remoteAddress, trusted, settings, () => this.expire());
    if (!admission.ok) {
      const error = admission.reason === 'client_connections' ? new TooManyClientConnectionsError(settings.hostname, admission.client) : new TooManyConnectionsError(settings.hostname);
      this.hangUp(fromError(error), admission.reason);
      return false;
    }
    this.releaseSlot = () => this.host.slots.closed(this);
    if (settings.reverseDns) this.state.clientHostname = await clientName(remoteAddress, 1500);
    if (this.hungUp) return false;
    // Whoever talks before our greeting is not an SMTP client waiting its turn (RFC 5321 3.1):
    // the reverse DNS wait is the window; without it the greeting goes out at once.
    if (!trusted && this.input.buffered > 0) {
      this.hangUp(closing(settings.hostname, '4.7.0', 'Error: you talk too soon'), 'pregreet');
      return false;
    }
    this.send(reply(220, `${settings.hostname} ESMTP${settings.banner ? ` ${settings.banner}` : ''}`));
    return true;
  }

  private async commands(): Promise<void> {
    while (!this.hungUp) {
      const line = await this.input.line(MAX_LINE, this.beforeWait);
      this.waiting = false;
      if (line === null) return;
      if (line === TOO_LONG) {
        this.protocolError(PROTOCOL.tooLong);
        continue;
      }
      await dispatch(this, line);
      if (this.input.finished) return;
      if (this.replies.pending && !this.input.hasLine()) this.replies.flush();
      else if (this.replies.pending) await this.flushIfLarge();
    }
  }

  /** A client that pipelines without reading its replies must not make us hold them for ever. */
  private async flushIfLarge(): Promise<void> {
    if (this.socket.writableLength + 1 < REPLY_FLUSH_AT && this.input.buffered < REPLY_FLUSH_AT) return;
    if (!this.replies.flush() && !this.socket.destroyed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          resolve();
        };
        this.socket.once('drain', done);
        this.socket.once('close', done);
      });
    }
  }

  /** RFC 1845: a cut transaction kept for its client to resume. */
  private logKept(msg: IncomingMessage): void {
    if (msg.keptAt > 0) this.host.log.info({ event: 'smtpd.transaction_checkpointed', client: this.state.remoteAddress, offset: msg.keptAt }, 'cut transaction kept for a resume');
  }

  /** The input ended: the client left, or data_timeout cut the message off. */
  private async endOfInput(): Promise<void> {
    const msg = this.message;
    if (this.dataTimedOut && msg) {
      // The answer comes only once the partial message is gone from the spool.
      const f = await msg.abort(timeoutFailure(this.state.settings.hostname));
      this.message = null;
      this.logKept(msg);
      this.hangUp(fromError(f.error), f.reason);
      return;
    }
    if (msg) {
      const f = await msg.abort(disconnectFailure());
      this.message = null;
      this.logKept(msg);
      // Logged like any refusal (the client will not read it).
      this.send(fromError(f.error), f.reason);
    }
    this.hangUp();
  }

  /**
   * STARTTLS (RFC 3207) on this socket: the 220 goes out in clear, whatever the client sent after
   * the command is thrown away (it was not protected), and the session starts over inside TLS.
   */
  async startTls(context: SecureContext): Promise<void> {
    this.send(PROTOCOL.startTls);
    this.replies.flush();
    this.input.detach();
    this.input.discard();
    const raw = this.socket;
    raw.setTimeout(0);
    const tls = new TLSSocket(raw, { isServer: true, secureContext: context, requestCert: false, rejectUnauthorized: false });
    tls.on('error', (err: NodeJS.ErrnoException) => this.host.log.debug({ event: 'smtpd.tls_error', code: err.code, reason: err.message, client: this.state.remoteAddress }, 'TLS error'));
    this.socket = tls;
    this.replies.use(tls);
    this.armIdle(tls);
    this.waiting = true; // the handshake is the client's to do
    const ok = await new Promise<boolean>((resolve) => {
      tls.once('secure', () => resolve(true));
      tls.once('close', () => resolve(false));
      tls.once('error', () => resolve(false));
    });
    this.waiting = false;
    if (!ok || this.hungUp) {
      this.state.hungUp = true;
      tls.destroy();
      this.input.end();
      return;
    }
    this.state.tls = tlsInfo(tls);
    this.state.helo = undefined;
    this.state.esmtp = false;
    await this.resetTransaction();
    this.input.attach(tls);
  }
}

/** "::ffff:192.0.2.1" as a dual-stack listener reports IPv4 peers: the plain IPv4 form. */
function normalizeIp(ip: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip) ? ip.slice(7) : ip;
}
