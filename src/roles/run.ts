/**
 * The life of one role process, shared by the entry points beside this file: load the config,
 * start the role, drop root when the supervisor said so (`--user UID:GID`), report ready, then
 * serve the supervisor's messages until told to stop. A role loads its own config at start, so it
 * never depends on state held by another process; a reload brings the config the supervisor
 * validated (a role that is no longer root may not be able to read the files again).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { createLogger, initMetrics, metricsSnapshot, recentLogs, type Logger } from '../log/index.js';
import { Spool } from '../spool/index.js';
import { EXIT_FATAL, type RoleMessage, type RoleName, type SupervisorMessage, type TlsMaterial } from '../supervisor/index.js';
import { dropPrivileges, parseIds } from './privileges.js';

export interface RoleContext {
  config: Config;
  /** data_dir as this process must name it: "." once it dropped root (it works inside data_dir). */
  dataDir: string;
  spool: Spool;
  log: Logger;
  send(m: RoleMessage): void;
}

export interface Running {
  /** smtpd: the bound addresses, reported to the supervisor with 'ready'. */
  addresses?: { host: string; port: number }[];
  reload(config: Config, tls?: TlsMaterial): void;
  close(): Promise<void>;
  /** Work announced by another role through the supervisor. */
  announce?(m: SupervisorMessage): void;
}

/**
 * Starts the role's service. For a role that drops root it must return as soon as its listeners
 * are bound, with no I/O awaited after the first bind: the drop follows in the same turn of the
 * event loop, so no connection is accepted while the process is still root.
 */
export type StartRole = (ctx: RoleContext) => Promise<Running>;

/**
 * A role that cannot start now for a reason that passes by itself (the cluster's database down or
 * failing over): the process exits as a crash does, so the supervisor starts it again with
 * back-off — never the fatal exit that stops the whole gateway (open-or-later.ts).
 */
export class StartLater extends Error {
  override readonly name = 'StartLater';
}

/** The whole life of an entry point's process: run the role, then exit with its code. */
export function main(role: RoleName, start: StartRole): void {
  runRole(role, start, process.argv.slice(2)).then(
    (code) => exit(code),
    (err: Error) => {
      process.stderr.write(`postern ${role}: ${err.message}\n`);
      exit(1);
    },
  );
}

function exit(code: number): void {
  process.exitCode = code;
  // Timers and sockets may remain; exit once stdout (the log) is flushed.
  process.stdout.write('', () => process.exit(code));
}

export async function runRole(role: RoleName, start: StartRole, argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, user: { type: 'string' } }, strict: true });
  const file = resolve(values.config ?? 'config/postern.yaml');
  const ids = values.user ? parseIds(values.user) : null;
  const config = await loadConfig(file);
  const log = createLogger({ level: config.log.level, role });
  initMetrics(role);
  const send = (m: RoleMessage) => process.send?.(m);

  let running: Running;
  try {
    // An unprivileged role works inside data_dir and names the spool relative to it, as Postfix's
    // daemons chdir to the queue directory: the account needs no way through data_dir's parents.
    if (ids) process.chdir(config.data_dir);
    const dataDir = ids ? '.' : config.data_dir;
    running = await start({ config, dataDir, spool: await Spool.open(dataDir), log, send });
    if (ids) {
      try {
        dropPrivileges(ids);
      } catch (err) {
        await running.close().catch(() => undefined);
        throw err;
      }
      log.info({ event: `${role}.unprivileged`, uid: ids.uid, gid: ids.gid }, `running as ${ids.uid}:${ids.gid}`);
    }
  } catch (err) {
    const message = (err as Error).message;
    if (err instanceof StartLater) {
      log.error({ event: `${role}.start_later`, reason: message }, `cannot start ${role} now: ${message}; the supervisor tries again`);
      log.flush();
      return 1;
    }
    log.fatal({ event: `${role}.start_failed`, err }, `cannot start ${role}: ${message}`);
    send({ type: 'fatal', role, message });
    log.flush();
    return EXIT_FATAL;
  }
  send({ type: 'ready', role, ...(running.addresses ? { addresses: running.addresses } : {}) });

  return new Promise<number>((done) => {
    let stopping = false;
    const stop = async (why: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ event: `${role}.stopping`, why }, `stopping ${role}`);
      await running.close().catch((err) => log.error({ event: `${role}.close_error`, err }, 'error while stopping'));
      log.flush();
      done(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => undefined); // the supervisor decides; a terminal ^C reaches the whole group
    // The supervisor is gone (killed): stop too, so a new supervisor can take over the spool.
    process.on('disconnect', () => void stop('supervisor gone'));
    process.on('message', (m: SupervisorMessage) => {
      if (m?.type === 'incoming' || m?.type === 'outgoing') running.announce?.(m);
      if (m?.type === 'shutdown') void stop('shutdown');
      if (m?.type === 'collect') collect(m.id, m.what === 'metrics' ? metricsSnapshot() : Promise.resolve(recentLogs(m.query)), send);
      if (m?.type === 'reload') {
        const apply = (c: Config) => {
          running.reload(c, m.tls);
          log.info({ event: `${role}.reloaded` }, 'config reloaded');
        };
        if (m.config) apply(m.config);
        else loadConfig(file).then(apply, (err) => log.error({ event: `${role}.reload_rejected`, reason: (err as Error).message }, 'keeping the running config'));
      }
    });
  });
}

/** Answer the supervisor's 'collect' (metrics or recent logs of this process, for the admin role). */
function collect(id: number, data: Promise<unknown>, send: (m: RoleMessage) => void): void {
  data.then(
    (d) => send({ type: 'collected', id, data: d }),
    (err: Error) => send({ type: 'collected', id, error: err.message }),
  );
}

/** Collect announcements made in one turn of the event loop into one IPC message. */
export function batched<T>(flush: (items: T[]) => void): (item: T | T[]) => void {
  let pending: T[] = [];
  return (item) => {
    if (pending.length === 0) setImmediate(() => {
      const items = pending;
      pending = [];
      if (items.length) flush(items);
    });
    if (Array.isArray(item)) pending.push(...item);
    else pending.push(item);
  };
}
