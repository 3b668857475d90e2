/**
 * The listeners: one TCP server per configured address, each accepted socket a Connection
 * (connection.ts), plus reload and graceful close.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/index.js';
import { flushDeferred, PartialStore, type Spool } from '../spool/index.js';
import { gateAccepts, SessionSlots } from './client-limits.js';
import { Connection, type ConnectionHost } from './connection.js';
import { deriveSettings, type SmtpdSettings } from './settings.js';

export interface Smtpd {
  /** The bound addresses, in config order (the real port when the config said 0). */
  readonly addresses: { host: string; port: number }[];
  /** Stop accepting, let messages being received finish (up to `timeoutMs`), then close everything. */
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
  /**
   * ETRN: move the deferred entries with a recipient in `pattern` back to outgoing/ and name
   * them. Under the supervisor smtpd has no rights on deferred/ and asks it; by default (smtpd
   * in one process with the spool, as in tests) flushDeferred on the spool.
   */
  etrn?: (pattern: string) => Promise<string[]>;
}

const DEFAULT_CLOSE_TIMEOUT = 30_000;

export async function startSmtpd(opts: SmtpdOptions): Promise<Smtpd> {
  const etrn = opts.etrn ?? (async (pattern: string) => (await flushDeferred(opts.spool, 'ALL', pattern)).done);
  const smtpd = new SmtpdService(opts.spool, opts.log, opts.config, etrn, opts.onQueued);
  await smtpd.start(opts.config);
  return smtpd;
}

class SmtpdService implements Smtpd {
  addresses: { host: string; port: number }[] = [];
  private settings: SmtpdSettings;
  private readonly listen: Config['smtp']['listen'];
  private readonly servers: Server[] = [];
  private readonly connections = new Set<Connection>();
  /** Every socket still open, hung-up ones waiting for the client's FIN included. */
  private readonly sockets = new Set<Socket>();
  private readonly slots = new SessionSlots();
  private context: SecureContext | null = null;
  private closing: Promise<void> | null = null;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly partials: PartialStore;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly spool: Spool,
    private readonly log: Logger,
    config: Config,
    private readonly etrn: (pattern: string) => Promise<string[]>,
    private readonly onQueued?: (id: string) => void,
  ) {
    this.settings = deriveSettings(config);
    this.listen = config.smtp.listen;
    this.partials = new PartialStore(spool);
  }

  async start(config: Config): Promise<void> {
    // Cut RFC 1845 transactions: expired ones and leftovers go at start (also with checkpoint
    // turned off since), then hourly.
    await this.sweepPartials();
    this.sweeper = setInterval(() => void this.sweepPartials(), 3600_000);
    this.sweeper.unref();
    if (config.smtp.tls) this.context = secureContext(await loadTls(config.smtp.tls));
    try {
      for (const l of config.smtp.listen) {
        const server = this.createServer();
        this.servers.push(server);
        await listenOn(server, l.host, l.port);
        const a = server.address() as AddressInfo;
        this.addresses.push({ host: a.address, port: a.port });
      }
    } catch (err) {
      await this.close(0);
      throw err;
    }
    this.log.info({ event: 'smtpd.listening', listen: this.addresses.map((a) => `${a.host}:${a.port}`), starttls: !!this.context }, 'smtpd listening');
  }

  private async sweepPartials(): Promise<void> {
    try {
      const removed = await this.partials.sweep();
      if (removed) this.log.info({ event: 'smtpd.partials_swept', removed, kept: this.partials.size }, 'expired or unusable checkpointed transactions removed');
    } catch (err) {
      this.log.warn({ event: 'smtpd.partials_sweep_failed', reason: (err as Error).message }, 'could not clean spool/partial');
    }
  }

  private createServer(): Server {
    const server = createServer({ noDelay: true });
    const host: ConnectionHost = {
      spool: this.spool,
      partials: this.partials,
      log: this.log,
      slots: this.slots,
      listener: server,
      settings: () => this.settings,
      secureContext: () => this.context,
      shuttingDown: () => this.closing !== null,
      etrn: this.etrn,
      ...(this.onQueued ? { onQueued: this.onQueued } : {}),
    };
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      const conn = new Connection(host, socket);
      this.connections.add(conn);
      void conn.done.finally(() => this.connections.delete(conn));
    });
    gateAccepts(server, (ip) => this.settings.trusted.contains(ip), () => backstop(this.settings.maxConnections));
    // An 'error' event without a listener would throw and kill the role.
    server.on('error', (err: Error & { code?: string }) => this.log.warn({ event: 'smtpd.error', code: err.code, reason: err.message }, 'smtp listener error'));
    return server;
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
    const p = this.reloadTls(config.smtp.tls, tls).catch((err: Error) =>
      this.log.error({ event: 'smtpd.tls_reload_failed', reason: err.message }, 'keeping the previous TLS settings'),
    );
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** New certificate files (renewal) apply to new handshakes; STARTTLS follows smtp.tls. */
  private async reloadTls(tls: Config['smtp']['tls'], given?: { key: Buffer; cert: Buffer }): Promise<void> {
    this.context = tls ? secureContext(given ?? (await loadTls(tls))) : null;
  }

  close(timeoutMs = DEFAULT_CLOSE_TIMEOUT): Promise<void> {
    this.closing ??= this.shutdown(timeoutMs);
    return this.closing;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    clearInterval(this.sweeper);
    const stopped = this.servers.map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())));
    // Sessions not in the middle of a message have nothing to finish: tell them now rather than
    // at their next command, so close() does not wait for idle clients.
    for (const conn of this.connections) conn.shutdown();
    const all = Promise.all([...this.connections].map((c) => c.done));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(1, timeoutMs))));
    await Promise.race([all, late]);
    clearTimeout(timer);
    // Whoever is still there is cut off; their messages are aborted, so tmp/ is clean when we return.
    for (const conn of this.connections) conn.destroy();
    for (const socket of this.sockets) socket.destroy();
    await Promise.allSettled([...[...this.connections].map((c) => c.done), ...stopped, ...this.pending]);
  }
}

/**
 * A hard cap on open sockets per pool (gateAccepts), well above max_connections: clients over
 * the limit get a polite 421, but a flood beyond this is dropped without costing a session.
 */
function backstop(maxConnections: number): number {
  return maxConnections * 2 + 16;
}

function secureContext(m: { key: Buffer; cert: Buffer }): SecureContext {
  return createSecureContext({ key: m.key, cert: m.cert, minVersion: 'TLSv1.2' });
}

async function loadTls(tls: NonNullable<Config['smtp']['tls']>): Promise<{ key: Buffer; cert: Buffer }> {
  const [key, cert] = await Promise.all([readFile(tls.key), readFile(tls.cert)]);
  return { key, cert };
}

function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
