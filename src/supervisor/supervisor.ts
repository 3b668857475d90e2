/**
 * The supervisor of `postern start`: runs each role (smtpd, workers, relay) as its own OS process,
 * like Postfix's master, so the internet-facing smtpd never holds keys and a crash stays contained.
 * It recovers the spool before any role starts, restarts a crashed role with back-off (reclaiming
 * the dead worker's claimed messages), reloads on SIGHUP only a config that validates, and on
 * SIGTERM/SIGINT stops the roles in mail-flow order so in-flight work finishes or is released.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Config } from '../config/types.js';
import { countRoleRestart, metricsSnapshot, recentLogs, type Logger, type LogQuery } from '../log/index.js';
import { canonicalDomain } from '../core/index.js';
import { flushDeferred, type Spool } from '../spool/index.js';
import { Collector } from './collect.js';
import { EXIT_FATAL, type CollectedFrom, type RoleMessage, type RoleName, type RoleProcessStatus, type SupervisorMessage, type SupervisorRequest, type TlsMaterial } from './protocol.js';
import { heartbeatInterval, silentFor } from './watchdog.js';

export { EXIT_FATAL, type RoleMessage, type RoleName, type SupervisorMessage } from './protocol.js';

interface Slot {
  role: RoleName;
  index: number;
  child: ChildProcess | null;
  restarts: number;
  startedAt: number;
  timer: NodeJS.Timeout | null;
  /** Last heartbeat of a worker (watchdog.ts); 0 until the first. */
  lastBeat: number;
}

export interface SupervisorOptions {
  config: Config;
  /** Validates and loads the config file again (SIGHUP). Throws ConfigError when invalid. */
  reloadConfig: () => Promise<Config>;
  spool: Spool;
  log: Logger;
  /**
   * How to start a role with the config in force: its entry point, arguments and whole
   * environment (an allow-list: roles never inherit the supervisor's environment).
   */
  roleCommand: (role: RoleName, config: Config) => RoleCommand;
  /** Called when smtpd reports its bound addresses. */
  onReady?: (addresses: { host: string; port: number }[]) => void;
}

export interface RoleCommand {
  script: string;
  args: string[];
  env: Record<string, string>;
}

const BACKOFF_MS = [250, 1000, 5000, 15_000, 60_000];
const RUN_RESETS_BACKOFF_MS = 2000;
const ADMIN_RETRY_MS = 60_000;

export class Supervisor {
  private readonly slots: Slot[] = [];
  private stopping = false;
  private config: Config;
  private fatal: string | null = null;
  private exitResolve!: (code: number) => void;
  readonly exited: Promise<number>;
  private watchdog: NodeJS.Timeout | null = null;
  private readonly collector = new Collector();

  constructor(private readonly opts: SupervisorOptions) {
    this.config = opts.config;
    this.exited = new Promise((r) => (this.exitResolve = r));
  }

  async start(): Promise<void> {
    const { reclaimed, tmpRemoved } = await this.opts.spool.recover();
    this.opts.log.info({ event: 'supervisor.recovered', reclaimed, tmpRemoved }, 'spool recovered');
    // Downstream first, so mail accepted by smtpd always has somewhere to go.
    this.slots.push(this.slot('relay', 0));
    for (let i = 0; i < this.config.workers; i++) this.slots.push(this.slot('worker', i));
    this.slots.push(this.slot('smtpd', 0));
    if (this.config.portal.listen.length) this.slots.push(this.slot('portal', 0));
    if (this.config.admin.listen.length) this.slots.push(this.slot('admin', 0));
    for (const s of this.slots) this.spawn(s);
    this.watch();
  }

  /** Kill a worker whose event loop has not answered for worker.transform_timeout (watchdog.ts). */
  private watch(): void {
    this.watchdog = setInterval(() => {
      if (this.stopping) return;
      const timeout = this.config.worker.transform_timeout;
      for (const s of silentFor(this.slots.filter((x) => x.role === 'worker' && x.child), timeout)) {
        this.opts.log.error(
          { event: 'supervisor.worker_unresponsive', index: s.index, child: s.child!.pid, silentMs: Date.now() - s.lastBeat, timeoutMs: timeout },
          'worker stuck longer than worker.transform_timeout; killing it (its messages are reclaimed)',
        );
        s.lastBeat = 0;
        s.child!.kill('SIGKILL');
      }
    }, heartbeatInterval(this.config.worker.transform_timeout));
    this.watchdog.unref();
  }

  private slot(role: RoleName, index: number): Slot {
    return { role, index, child: null, restarts: 0, startedAt: 0, timer: null, lastBeat: 0 };
  }

  private spawn(s: Slot): void {
    const { log } = this.opts;
    const cmd = this.opts.roleCommand(s.role, this.config);
    const child = fork(cmd.script, cmd.args, {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...cmd.env, POSTERN_ROLE_INDEX: String(s.index) },
      // Structured clone: a reload carries the validated Config and smtpd's TLS key as Buffers.
      serialization: 'advanced',
    });
    s.child = child;
    s.startedAt = Date.now();
    s.lastBeat = 0;
    child.on('message', (m: RoleMessage) => {
      if (this.collector.answer(child, m)) return;
      if (m?.type === 'alive') s.lastBeat = Date.now();
      else if (m?.type === 'queued') this.announceIncoming(m.ids);
      else if (m?.type === 'outgoing') this.announceOutgoing(m.names);
      else if (m?.type === 'ready' && m.role === 'smtpd' && m.addresses) this.opts.onReady?.(m.addresses);
      else if (m?.type === 'fatal') this.fatal = `${m.role}: ${m.message}`;
      else if (m?.type === 'request') void this.answer(child, m.id, m.what, m.query, m.pattern);
    });
    child.on('exit', (code, signal) => {
      this.collector.drop(null, child);
      void this.onExit(s, child, code, signal);
    });
    log.info({ event: 'supervisor.spawn', role: s.role, index: s.index, child: child.pid }, `started ${s.role}`);
  }

  private nextWorker = 0;

  /** New incoming/ ids go to the workers in turn; an idle worker's own scan picks up any slack. */
  private announceIncoming(ids: string[]): void {
    const workers = this.slots.filter((s) => s.role === 'worker' && s.child?.connected);
    if (workers.length === 0) return;
    const w = workers[this.nextWorker++ % workers.length]!;
    w.child!.send({ type: 'incoming', ids } satisfies SupervisorMessage, ignoreSendError);
  }

  private announceOutgoing(names: string[]): void {
    const relay = this.slots.find((s) => s.role === 'relay' && s.child?.connected);
    relay?.child!.send({ type: 'outgoing', names } satisfies SupervisorMessage, ignoreSendError);
  }

  /** The admin role's questions: the roles' status, a reload as SIGHUP does, metrics and logs of all. */
  private async answer(child: ChildProcess, id: number, what: SupervisorRequest, query?: LogQuery, pattern?: string): Promise<void> {
    let reply: SupervisorMessage;
    try {
      const data =
        what === 'status'
          ? this.status()
          : what === 'reload'
            ? await this.reload()
            : what === 'metrics' || what === 'logs'
              ? await this.gather(child, what, query)
              : what === 'etrn'
                ? await this.etrn(child, pattern)
                : undefined;
      reply = data !== undefined ? { type: 'reply', id, ok: true, data } : { type: 'reply', id, ok: false, error: `unknown request ${String(what)}` };
    } catch (err) {
      reply = { type: 'reply', id, ok: false, error: (err as Error).message };
    }
    if (child.connected) child.send(reply, ignoreSendError);
  }

  private etrnRunning = false;

  /**
   * ETRN for smtpd (RFC 1985): deferred/ entries with a recipient in `pattern` back to outgoing/,
   * where the relay takes them at once. smtpd faces the Internet and has no rights on deferred/,
   * so it asks; the question is checked here again (only smtpd may ask, a domain pattern only,
   * one at a time) rather than trusted because smtpd checked it.
   */
  private async etrn(asker: ChildProcess, pattern: string | undefined): Promise<string[]> {
    if (!this.slots.some((s) => s.role === 'smtpd' && s.child === asker)) throw new Error('only smtpd may ask for ETRN');
    const domain = typeof pattern === 'string' ? pattern.replace(/^@/, '').replace(/\.$/, '') : '';
    if (!canonicalDomain(domain)) throw new Error('ETRN needs a domain or @domain');
    if (this.etrnRunning) throw new Error('an ETRN is running; try again later');
    this.etrnRunning = true;
    try {
      return (await flushDeferred(this.opts.spool, 'ALL', pattern)).done;
    } finally {
      this.etrnRunning = false;
    }
  }

  /** Metrics or recent log lines of the supervisor and every live role but the one asking (it has its own). */
  private async gather(asker: ChildProcess, what: 'metrics' | 'logs', query?: LogQuery): Promise<CollectedFrom[]> {
    const targets = this.slots.filter((s) => s.child && s.child !== asker).map((s) => ({ role: s.role, index: s.index, child: s.child! }));
    const own: CollectedFrom = { role: 'supervisor', index: 0, pid: process.pid, data: what === 'metrics' ? await metricsSnapshot() : recentLogs(query) };
    return [own, ...(await this.collector.collect(targets, what, query))];
  }

  /** Every role process, for the admin console. */
  status(): RoleProcessStatus[] {
    return this.slots.map((s) => ({
      role: s.role,
      index: s.index,
      pid: s.child?.pid ?? null,
      running: Boolean(s.child?.connected),
      since: s.child ? new Date(s.startedAt).toISOString() : null,
      restarts: s.restarts,
    }));
  }

  private async onExit(s: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    const { log, spool } = this.opts;
    if (s.child !== child) return;
    s.child = null;
    // Whatever the dead process had claimed goes back to incoming/: nothing is lost.
    if (child.pid) {
      const n = await spool.reclaimFor(child.pid).catch((err) => {
        log.error({ event: 'supervisor.reclaim_error', err }, 'reclaim failed; entries stay in active/ until restart');
        return 0;
      });
      if (n) log.warn({ event: 'supervisor.reclaimed', role: s.role, child: child.pid, entries: n }, 'reclaimed claimed messages');
    }
    if (this.stopping) return this.maybeFinished();
    // The admin console is not on the mail's path: when it cannot run (its port taken, a broken
    // certificate), mail flows on and the supervisor tries it again later.
    if (code === EXIT_FATAL && s.role === 'admin') {
      log.error({ event: 'supervisor.admin_unavailable', reason: this.fatal, retryInMs: ADMIN_RETRY_MS }, `the admin console cannot run (${this.fatal ?? 'fatal error'}); mail is not affected, trying again later`);
      this.fatal = null;
      s.timer = setTimeout(() => {
        s.timer = null;
        if (!this.stopping) this.spawn(s);
      }, ADMIN_RETRY_MS);
      return;
    }
    if (code === EXIT_FATAL) {
      log.fatal({ event: 'supervisor.fatal', role: s.role, reason: this.fatal }, `${s.role} cannot run: ${this.fatal ?? 'fatal error'}`);
      await this.stop(1);
      return;
    }
    // Back-off is for crash loops (a role that dies while starting: bad config, a poison entry
    // taken at once). A role that ran for a while before dying starts again from the bottom, like
    // Postfix's master restarts a crashed daemon at once: mail should not wait 60 s for a relay
    // because it crashed a few times today.
    if (Date.now() - s.startedAt > RUN_RESETS_BACKOFF_MS) s.restarts = 0;
    const delay = BACKOFF_MS[Math.min(s.restarts, BACKOFF_MS.length - 1)]!;
    s.restarts++;
    countRoleRestart(s.role);
    log.error(
      { event: 'supervisor.role_died', role: s.role, index: s.index, code, signal, restartInMs: delay },
      `${s.role} exited unexpectedly; restarting`,
    );
    s.timer = setTimeout(() => {
      s.timer = null;
      if (!this.stopping) this.spawn(s);
    }, delay);
  }

  /** SIGHUP: roles reload only if the new config validates; otherwise the old one stays. */
  async reload(): Promise<boolean> {
    const { log } = this.opts;
    try {
      this.config = await this.opts.reloadConfig();
    } catch (err) {
      log.error({ event: 'supervisor.reload_rejected', reason: (err as Error).message }, 'config invalid; keeping the running config');
      return false;
    }
    // Roles get the config validated here, not the file: smtpd and the portal, no longer root,
    // may not be able to read it (or smtpd's TLS key, read here for a renewed certificate).
    const tlsOf = async (role: Listener) =>
      readTls(this.config, role).catch((err: Error) => {
        log.error({ event: 'supervisor.tls_unreadable', role, reason: err.message }, `${role} keeps its TLS certificate`);
        return undefined;
      });
    const tls = { smtpd: await tlsOf('smtpd'), portal: await tlsOf('portal'), admin: await tlsOf('admin') };
    for (const s of this.slots) {
      const material = s.role === 'smtpd' || s.role === 'portal' || s.role === 'admin' ? tls[s.role] : undefined;
      const m: SupervisorMessage = { type: 'reload', config: this.config, ...(material ? { tls: material } : {}) };
      s.child?.send(m, ignoreSendError);
    }
    log.info({ event: 'supervisor.reloaded' }, 'config reloaded');
    return true;
  }

  private exitCode = 0;

  /** Stop in mail-flow order: smtpd stops accepting, workers finish, the relay finishes last. */
  async stop(code = 0): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.exitCode = code;
    if (this.watchdog) clearInterval(this.watchdog);
    const { log } = this.opts;
    log.info({ event: 'supervisor.stopping' }, 'stopping');
    for (const s of this.slots) if (s.timer) clearTimeout(s.timer);
    for (const role of ['admin', 'portal', 'smtpd', 'worker', 'relay'] as RoleName[]) {
      const children = this.slots.filter((s) => s.role === role && s.child).map((s) => s.child!);
      await Promise.all(children.map((c) => terminate(c, 40_000)));
    }
    this.maybeFinished();
  }

  private maybeFinished(): void {
    if (this.slots.every((s) => !s.child)) {
      this.opts.log.info({ event: 'supervisor.stopped' }, 'stopped');
      this.exitResolve(this.exitCode);
    }
  }
}

function terminate(child: ChildProcess, killAfterMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

type Listener = 'smtpd' | 'portal' | 'admin';

async function readTls(config: Config, role: Listener): Promise<TlsMaterial | undefined> {
  const t = role === 'smtpd' ? config.smtp.tls : role === 'portal' ? config.portal.tls : config.admin.tls;
  return t ? { cert: await readFile(t.cert), key: await readFile(t.key) } : undefined;
}

/** A role that just died cannot take an announcement; its entries are found by the next scan. */
function ignoreSendError(): void {}
