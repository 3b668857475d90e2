/**
 * The listeners: one smtp-server instance per configured address, wired to the session and DATA
 * handlers, plus reload and graceful close.
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerAddress, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/types.js';
import { LocalError, ShuttingDownError, SmtpTimeLimitError, TooManyClientConnectionsError, TooManyConnectionsError, type PosternError } from '../core/index.js';
import { countAccepted, countConnection, countRefused, type Logger } from '../log/index.js';
import type { Spool } from '../spool/index.js';
import { gateAccepts, SessionSlots } from './client-limits.js';
import { receiveMessage } from './data.js';
import { hookRawAddresses } from './raw-address.js';
import { fcrdnsResolver } from './fcrdns.js';
import { skipGreetPause } from './greet-pause.js';
import { batchReplies } from './reply-batch.js';
import { hookReplies, okText, toSmtpServerError } from './replies.js';
import { checkMailFrom, checkRcptTo, type SessionState } from './session.js';
import { checkStorage } from './storage.js';
import { deriveSettings, type SmtpdSettings } from './settings.js';
import { tlsInfo } from './tls-info.js';

export interface Smtpd {
  /** The bound addresses, in config order (the real port when the config said 0). */
  readonly addresses: { host: string; port: number }[];
  /** Stop accepting, let messages in DATA finish (up to `timeoutMs`), then close everything. */
  close(timeoutMs?: number): Promise<void>;
  /**
   * New limits and relay control; sessions already open keep theirs. Listeners do not change.
   * `tls`: the certificate and key as read by the supervisor (this process may no longer be able
   * to read a root-only key); without it smtp.tls is read from the files.
   */
  reload(config: Config, tls?: { key: Buffer; cert: Buffer }): void;
}

export interface SmtpdOptions {
  config: Config;
  spool: Spool;
  log: Logger;
  /** Called with each queue id once the message is durable in incoming/ (to notify a worker). */
  onQueued?: (id: string) => void;
}

// Commands that have no business on a relay: no AUTH (authentication is by network), no XCLIENT
// or XFORWARD (they would let a client choose its own IP), no sendmail jokes.
const DISABLED = ['AUTH', 'XCLIENT', 'XFORWARD', 'WIZ', 'SHELL', 'KILL'];
const DEFAULT_CLOSE_TIMEOUT = 30_000;

export async function startSmtpd(opts: SmtpdOptions): Promise<Smtpd> {
  const smtpd = new SmtpdService(opts.spool, opts.log, opts.config, opts.onQueued);
  await smtpd.start(opts.config);
  return smtpd;
}

class SmtpdService implements Smtpd {
  addresses: { host: string; port: number }[] = [];
  private settings: SmtpdSettings;
  private listen: Config['smtp']['listen'];
  private readonly servers: SMTPServer[] = [];
  /** Dropped with the session object; not on close, a DATA handler may still be finishing. */
  private readonly sessions = new WeakMap<SMTPServerSession, SessionState>();
  /** Sessions whose message is being received or committed right now. */
  private readonly inData = new Set<SMTPServerSession>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly slots = new SessionSlots();
  private closing: Promise<void> | null = null;
  private statfsWarned = false;

  constructor(
    private readonly spool: Spool,
    private readonly log: Logger,
    config: Config,
    private readonly onQueued?: (id: string) => void,
  ) {
    this.settings = deriveSettings(config);
    this.listen = config.smtp.listen;
  }

  async start(config: Config): Promise<void> {
    const tls = config.smtp.tls ? await loadTls(config.smtp.tls) : undefined;
    try {
      for (const l of config.smtp.listen) {
        const server = this.createServer(config, tls);
        this.servers.push(server);
        await listenOn(server, l.host, l.port);
        const a = server.server.address() as AddressInfo;
        this.addresses.push({ host: a.address, port: a.port });
      }
    } catch (err) {
      await this.close(0);
      throw err;
    }
    this.log.info({ event: 'smtpd.listening', listen: this.addresses.map((a) => `${a.host}:${a.port}`), starttls: !!tls }, 'smtpd listening');
  }

  private createServer(config: Config, tls: { key: Buffer; cert: Buffer } | undefined): SMTPServer {
    const options: SMTPServerOptions = {
      ...libraryLimits(config),
      heloResponse: '%s',
      authOptional: true,
      disabledCommands: tls ? DISABLED : [...DISABLED, 'STARTTLS'],
      // Never the library's built-in key (published in its source): no cert, no STARTTLS.
      hideSTARTTLS: !tls,
      ...(tls ? { key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' as const } : {}),
      hideENHANCEDSTATUSCODES: false,
      hideDSN: false,
      hideREQUIRETLS: true,
      lenientAddressParsing: false,
      logger: false,
    };
    const server = new SMTPServer({
      ...options,
      onConnect: (session, cb) => this.guard(cb, () => this.onConnect(server, session, cb)),
      onSecure: (socket, session, cb) =>
        this.guard(cb, () => {
          const state = this.sessions.get(session);
          const s = socket as TLSSocket;
          if (state && typeof s.getProtocol === 'function') state.tls = tlsInfo(s);
          cb();
        }),
      onMailFrom: (address, session, cb) =>
        this.guard(cb, () => {
          // Fail closed: no state means onConnect never ran; after a hang-up nothing more may be
          // accepted on this connection (should the close not have taken effect).
          const state = this.sessions.get(session);
          if (!state || state.hungUp) throw new Error('MAIL on a session without state or after hang-up');
          const v = checkMailFrom(address, state);
          if (!v.ok) return this.reply(session, v, cb);
          this.checkSpace(session, state, address, cb);
        }),
      onRcptTo: (address, session, cb) =>
        this.guard(cb, () => {
          const state = this.sessions.get(session);
          if (!state) throw new Error('RCPT without session state');
          this.reply(session, checkRcptTo(address, session, state), cb);
        }),
      onData: (stream, session, cb) => {
        const p = this.onData(stream, session, cb);
        this.pending.add(p);
        void p.finally(() => this.pending.delete(p));
      },
      // Once per connection, when its socket is gone (smtp-server guards against a second call).
      onClose: (session) => this.slots.closed(session),
    });
    gateAccepts(server.server, (ip) => this.settings.trusted.contains(ip), () => backstop(this.settings.maxConnections));
    skipGreetPause(server, (ip) => this.settings.trusted.contains(ip));
    batchReplies();
    // An 'error' event without a listener would throw and kill the role.
    server.on('error', (err: Error & { code?: string }) => this.log.warn({ event: 'smtpd.error', code: err.code, reason: err.message }, 'smtp connection error'));
    return server;
  }

  /** Run a handler; a bug (an exception) answers 451 instead of leaving the client hanging. */
  private guard(cb: (err?: Error | null) => void, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ event: 'smtpd.internal_error', err }, 'handler failed');
      cb(toSmtpServerError(new LocalError(err)));
    }
  }

  private reply(session: SMTPServerSession, v: { ok: true } | { ok: false; error: PosternError; reason: string }, cb: (err?: Error | null) => void): void {
    if (v.ok) return cb();
    const state = this.sessions.get(session);
    if (state) state.reason = v.reason;
    cb(toSmtpServerError(v.error));
  }

  /** smtp.min_free_space and SIZE= against the spool's free space (storage.ts): 452 4.3.1. */
  private checkSpace(session: SMTPServerSession, state: SessionState, address: SMTPServerAddress, cb: (err?: Error | null) => void): void {
    // Once per process: a file system without statfs would otherwise log once per message.
    const statfsFailed = (err: unknown) => {
      if (this.statfsWarned) return;
      this.statfsWarned = true;
      this.log.warn({ event: 'smtpd.statfs_failed', reason: (err as Error).message }, 'free space of the spool unknown; mail accepted (writes are checked)');
    };
    checkStorage(() => this.spool.freeSpace(), state.settings.minFreeSpace, address, statfsFailed).then(
      (v) => this.reply(session, v, cb),
      (err: unknown) => {
        this.log.error({ event: 'smtpd.internal_error', err }, 'free space check failed');
        cb(toSmtpServerError(new LocalError(err)));
      },
    );
  }

  private onConnect(server: SMTPServer, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const settings = this.settings;
    let conn;
    for (const c of server.connections) if (c.session === session) conn = c;
    const state: SessionState = { settings, trusted: settings.trusted.contains(session.remoteAddress), conn, recipients: new WeakMap() };
    this.sessions.set(session, state);
    countConnection();
    if (conn) {
      hookReplies(conn, (code, line) => this.logReject(session, code, line));
      state.raw = hookRawAddresses(conn);
    }
    if (this.closing) {
      state.reason = 'shutdown';
      return cb(toSmtpServerError(new ShuttingDownError(settings.hostname)));
    }
    // Postfix anvil's answers, counted per listener (client-limits.ts).
    const admission = this.slots.admit(server, session, conn, session.remoteAddress, state.trusted, settings, () => this.expire(session));
    if (!admission.ok) {
      state.reason = admission.reason;
      const error = admission.reason === 'client_connections' ? new TooManyClientConnectionsError(settings.hostname, admission.client) : new TooManyConnectionsError(settings.hostname);
      return cb(toSmtpServerError(error));
    }
    cb();
  }

  /** session_timeout: hang up now, or after the reply to a message that is being received. */
  private expire(session: SMTPServerSession): void {
    if (this.inData.has(session)) return; // onData calls again once the message has its reply
    const state = this.sessions.get(session);
    if (!state?.conn || state.hungUp) return;
    state.reason = 'session_timeout';
    const err = new SmtpTimeLimitError(state.settings.hostname, 'session');
    // A 421 closes the connection (smtp-server), so nothing the client sends later is answered.
    state.conn.send(err.reply.code, `${err.reply.status} ${err.reply.text}`);
    state.hungUp = true;
  }

  private logReject(session: SMTPServerSession, code: number, line: string): void {
    const state = this.sessions.get(session);
    if (state?.hungUp) return;
    countRefused(state?.reason ?? 'protocol', code);
    const mailFrom = session.envelope?.mailFrom;
    this.log.info(
      { event: 'smtpd.reject', reason: state?.reason ?? 'protocol', client: session.remoteAddress, sender: mailFrom ? mailFrom.address : undefined, reply: line },
      'rejected',
    );
    if (state) state.reason = undefined;
  }

  private async onData(
    stream: Parameters<NonNullable<SMTPServerOptions['onData']>>[0],
    session: SMTPServerSession,
    cb: (err?: Error | null, message?: string) => void,
  ): Promise<void> {
    const state = this.sessions.get(session);
    if (!state) return cb(toSmtpServerError(new LocalError(new Error('DATA without session state'))));
    this.inData.add(session);
    try {
      const outcome = await receiveMessage(this.spool, stream, session, state);
      if (outcome.ok) {
        this.log.info(
          {
            event: 'smtpd.queued',
            queueId: outcome.id,
            client: session.remoteAddress,
            sender: outcome.sender,
            recipients: outcome.recipients,
            size: outcome.size,
            tls: !!state.tls,
            ...(outcome.normalized ? { normalizedLineEndings: outcome.normalized } : {}),
          },
          'queued',
        );
        countAccepted();
        this.onQueued?.(outcome.id);
        cb(null, okText('2.0.0', `Ok: queued as ${outcome.id}`));
        return;
      }
      state.reason = outcome.reason;
      const err = toSmtpServerError(outcome.error);
      if (outcome.hangUp) {
        // Answer, then hang up before smtp-server goes on with what the client pipelined after
        // the message: after a bare CR/LF or NUL those "commands" may be a smuggled message.
        state.conn?.send(err.responseCode, err.message);
        state.hungUp = true;
        state.conn?.close();
      }
      cb(err);
    } catch (err) {
      this.log.error({ event: 'smtpd.internal_error', err }, 'DATA handler failed');
      cb(toSmtpServerError(new LocalError(err)));
    } finally {
      this.inData.delete(session);
      if (this.slots.expired(session)) this.expire(session);
    }
  }

  reload(config: Config, tls?: { key: Buffer; cert: Buffer }): void {
    let settings: SmtpdSettings;
    try {
      settings = deriveSettings(config);
    } catch (err) {
      this.log.error({ event: 'smtpd.reload_rejected', reason: (err as Error).message }, 'keeping the running smtpd settings');
      return;
    }
    this.settings = settings;
    if (JSON.stringify(config.smtp.listen) !== JSON.stringify(this.listen)) {
      this.log.warn({ event: 'smtpd.listen_unchanged' }, 'smtp.listen changes take effect at restart');
    }
    for (const server of this.servers) {
      // smtp-server reads these per command/connection, so new sessions get them at once.
      Object.assign(server.options, libraryLimits(config));
    }
    const p = this.reloadTls(config.smtp.tls, tls).catch((err: Error) =>
      this.log.error({ event: 'smtpd.tls_reload_failed', reason: err.message }, 'keeping the previous TLS settings'),
    );
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** New certificate files (renewal) apply to new handshakes; STARTTLS follows smtp.tls. */
  private async reloadTls(tls: Config['smtp']['tls'], given?: { key: Buffer; cert: Buffer }): Promise<void> {
    const material = tls ? (given ?? (await loadTls(tls))) : undefined;
    for (const server of this.servers) {
      if (material) server.updateSecureContext({ key: material.key, cert: material.cert });
      server.options.hideSTARTTLS = !material;
      server.options.disabledCommands = material ? [...DISABLED] : [...DISABLED, 'STARTTLS'];
    }
  }

  close(timeoutMs = DEFAULT_CLOSE_TIMEOUT): Promise<void> {
    this.closing ??= this.shutdown(timeoutMs);
    return this.closing;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    const closed = this.servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          server.options.closeTimeout = Math.max(1, timeoutMs);
          if (!server.server.listening) return resolve();
          server.close(() => resolve());
        }),
    );
    // Sessions not in the middle of a message have nothing to finish: tell them now rather than
    // at their next command, so close() does not wait for idle clients.
    const bye = new ShuttingDownError(this.settings.hostname);
    for (const server of this.servers) {
      for (const conn of server.connections) {
        if (this.inData.has(conn.session)) continue;
        const state = this.sessions.get(conn.session);
        if (state) state.reason = 'shutdown';
        conn.send(bye.reply.code, `${bye.reply.status} ${bye.reply.text}`);
        conn.close();
      }
    }
    await Promise.all(closed);
    // Writers of interrupted messages finish their abort, so tmp/ is clean when we return.
    await Promise.allSettled([...this.pending]);
  }
}

/** The options smtp-server reads live from its options object (so a reload can change them). */
function libraryLimits(config: Config): Partial<SMTPServerOptions> {
  return {
    name: config.hostname,
    banner: config.smtp.banner,
    size: config.smtp.max_message_size,
    maxRecipients: config.smtp.max_recipients,
    socketTimeout: config.smtp.idle_timeout,
    disableReverseLookup: !config.smtp.reverse_dns,
    resolver: config.smtp.reverse_dns ? fcrdnsResolver() : undefined,
  };
}

/**
 * A hard cap on open sockets per pool (gateAccepts), well above max_connections: clients over
 * the limit get a polite 421 from onConnect, but a flood beyond this is dropped without costing
 * a session.
 */
function backstop(maxConnections: number): number {
  return maxConnections * 2 + 16;
}

async function loadTls(tls: NonNullable<Config['smtp']['tls']>): Promise<{ key: Buffer; cert: Buffer }> {
  const [key, cert] = await Promise.all([readFile(tls.key), readFile(tls.cert)]);
  return { key, cert };
}

function listenOn(server: SMTPServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.server.once('error', onError);
    server.listen(port, host, () => {
      server.server.off('error', onError);
      resolve();
    });
  });
}
