/**
 * The relay role: take each entry of outgoing/, deliver it per route, and remove it only once
 * every recipient has a final answer. Scheduling mirrors the worker: names announced by the
 * workers (and, as a safety net, throttled scans of the directory) feed a backlog, and a bounded
 * number of entries are in flight.
 *
 * Issue 3 plugs in here: MX delivery behind `deliverTo` ('mx'), durable per-recipient outcome
 * records replacing the in-memory `final` map (so a restart does not re-send to recipients
 * already done), max_queue_lifetime and the persistent retry schedule (deferred/), and DSNs
 * where this file now holds or logs `relay.bounce`.
 */
import { join } from 'node:path';
import type { Config, RouteTarget } from '../config/types.js';
import { CorruptEntryError } from '../core/index.js';
import type { Logger } from '../log/index.js';
import { throttle, watchQueue, type DecodedEntry, type Spool } from '../spool/index.js';
import { deliverMaildir } from './maildir.js';
import { outcomesFor, type OutboundMessage, type RecipientOutcome } from './outcome.js';
import { describeTarget, groupByRoute, targetKey, type RecipientGroup } from './routes.js';
import { SmtpTransport } from './smtp-transport.js';

/** DNS as the relay needs it (issue 3: MX lookup). `dns.promises` satisfies it; tests pass fakes. */
export interface MxResolver {
  resolveMx(domain: string): Promise<{ exchange: string; priority: number }[]>;
}

export interface RelayOptions {
  config: Config;
  spool: Spool;
  log: Logger;
  resolver?: MxResolver;
  /** Test hook: shorter SMTP timeouts. */
  smtpTimeouts?: { connection?: number; greeting?: number; socket?: number };
}

export interface Relay {
  /** Outgoing names a worker has just committed: deliver them without waiting for a scan. */
  offer(names: readonly string[]): void;
  /** Scan outgoing/ soon (entries waiting for their retry time keep waiting). */
  kick(): void;
  /** New routes, retry schedule and concurrency; deliveries in flight finish with the old ones. */
  reload(config: Config): void;
  /** Stop picking up entries, let deliveries in flight finish (up to `graceMs`), close connections. */
  close(graceMs?: number): Promise<void>;
}

/** What this process knows about one outgoing entry between attempts. */
interface EntryState {
  /** Attempts that ended with some recipient deferred. */
  attempts: number;
  /** Not before this time (ms since epoch). */
  notBefore: number;
  timer?: NodeJS.Timeout;
  /**
   * Recipients with a final outcome (delivered or failed). A retry skips them, so a 4xx for one
   * recipient never re-sends to the others. In memory only until issue 3 makes it durable.
   */
  final: Map<string, RecipientOutcome>;
}

const DEFAULT_GRACE_MS = 30_000;
const DEFAULT_RETRY_MS = 60_000;
/** Minimum time between two listings of outgoing/ (workers announce what they commit). */
const SCAN_INTERVAL_MS = 250;

const isEnoent = (err: unknown) => (err as NodeJS.ErrnoException)?.code === 'ENOENT';
/** "<queue id>.<group>" → queue id. */
const idOf = (name: string) => name.split('.')[0]!;

export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const { spool, log } = opts;
  let config = opts.config;
  const smtp = new SmtpTransport({
    hostname: config.hostname,
    maxConnections: Math.max(1, Math.min(config.relay.concurrency, 10)),
    timeouts: opts.smtpTimeouts,
  });
  const states = new Map<string, EntryState>();
  const inFlight = new Map<string, Promise<void>>();
  let backlog: string[] = [];
  const queued = new Set<string>();
  let closed = false;

  function stateOf(name: string): EntryState {
    let s = states.get(name);
    if (!s) {
      s = { attempts: 0, notBefore: 0, final: new Map() };
      states.set(name, s);
    }
    return s;
  }

  function forget(name: string): void {
    const s = states.get(name);
    if (s?.timer) clearTimeout(s.timer);
    states.delete(name);
  }

  /** The configured delays; the last one repeats. */
  function retryDelay(attempt: number): number {
    const r = config.relay.retry;
    if (!r.length) return DEFAULT_RETRY_MS;
    return r[Math.min(Math.max(attempt, 1), r.length) - 1]!;
  }

  function schedule(name: string, delay: number): void {
    if (closed) return;
    const s = stateOf(name);
    if (s.timer) clearTimeout(s.timer);
    s.notBefore = Date.now() + delay;
    s.timer = setTimeout(() => {
      s.timer = undefined;
      s.notBefore = 0; // timers may fire a millisecond early; the time has come regardless
      offer([name]);
    }, delay);
    s.timer.unref();
  }

  async function deliverTo(target: RouteTarget, msg: OutboundMessage): Promise<RecipientOutcome[]> {
    try {
      switch (target.kind) {
        case 'smtp':
        case 'smtps':
          return await smtp.deliver(target, msg);
        case 'maildir':
          return await deliverMaildir(target.path, msg);
        case 'mx':
          // Deferred, never lost: the entry waits in outgoing/ until MX delivery exists (issue 3,
          // using opts.resolver) or an admin changes the route.
          return outcomesFor(msg.recipients, 'deferred', '451 4.4.0 mx routing not available yet');
      }
    } catch (err) {
      // Transports answer per recipient and should not throw; if one does, it is our bug, and
      // the message waits for a fix rather than bouncing.
      log.error({ event: 'relay.internal_error', queueId: msg.queueId, err }, 'delivery failed unexpectedly');
      return outcomesFor(msg.recipients, 'deferred', '451 4.3.0 local error in delivery');
    }
  }

  async function deliverGroup(name: string, entry: DecodedEntry, g: RecipientGroup, retryInMs: number, attempt: number): Promise<RecipientOutcome[]> {
    const started = Date.now();
    const queueId = entry.meta.id;
    const env = entry.meta.envelope;
    const to = describeTarget(g.target);
    const outcomes = await deliverTo(g.target, {
      queueId,
      sender: env.sender,
      recipients: g.recipients,
      body: entry.body,
      eightBit: env.body === '8BITMIME',
    });
    const ms = Date.now() - started;
    const by = (st: RecipientOutcome['status']) => outcomes.filter((o) => o.status === st);
    const delivered = by('delivered');
    const failed = by('failed');
    const deferred = by('deferred');
    if (delivered.length) {
      log.info({ event: 'relay.delivered', queueId, name, to, recipients: delivered.length, ms, reply: delivered[0]!.reply }, 'delivered');
    }
    if (failed.length) {
      // TODO(issue 3): a DSN to the sender (unless <> or NOTIFY=NEVER) from these outcomes.
      log.warn(
        { event: 'relay.bounce', queueId, name, to, recipients: failed.map((o) => ({ address: o.recipient, reply: o.reply })), ms },
        'recipients rejected permanently',
      );
    }
    if (deferred.length) {
      log.warn(
        { event: 'relay.deferred', queueId, name, to, recipients: deferred.length, reason: deferred[0]!.reply, attempt, retryInMs, ms },
        'delivery deferred',
      );
    }
    return outcomes;
  }

  async function attempt(name: string): Promise<void> {
    let entry: DecodedEntry;
    try {
      entry = await spool.read('outgoing', name);
    } catch (err) {
      if (isEnoent(err)) return forget(name); // delivered meanwhile, or moved by an admin
      if (err instanceof CorruptEntryError) {
        await spool.moveToCorrupt(join(spool.dir('outgoing'), name), name, err.message);
        forget(name);
        log.error({ event: 'relay.corrupt', name, reason: err.message }, 'unreadable outgoing entry moved to corrupt/');
        return;
      }
      throw err;
    }
    const queueId = entry.meta.id;
    const state = stateOf(name);
    const all = [...new Set(entry.meta.envelope.recipients.map((r) => r.address))];
    const pending = all.filter((r) => !state.final.has(r));
    const { groups, unrouted } = groupByRoute(config.relay.routes, pending);
    if (unrouted.length) {
      // A config gap, not the recipient's fault: hold the whole entry before sending anything,
      // so that `queue release` after fixing the routes delivers each recipient exactly once.
      await spool.move('outgoing', 'hold', name);
      forget(name);
      log.error({ event: 'relay.no_route', queueId, name, recipients: unrouted }, 'no route matches; entry held');
      return;
    }

    const attemptNo = state.attempts + 1;
    const retryInMs = retryDelay(attemptNo);
    const results = await Promise.all(groups.map((g) => deliverGroup(name, entry, g, retryInMs, attemptNo)));
    let anyDeferred = false;
    for (const o of results.flat()) {
      if (o.status === 'deferred') anyDeferred = true;
      else state.final.set(o.recipient, o);
    }
    if (anyDeferred) {
      state.attempts = attemptNo;
      schedule(name, retryInMs);
      return;
    }

    // Every recipient has its final answer.
    const finals = all.map((r) => state.final.get(r));
    if (!finals.some((o) => o?.status === 'delivered')) {
      // Nobody got it and there is no DSN yet (issue 3): keep the message for the admin rather
      // than drop it silently.
      await spool.move('outgoing', 'hold', name);
      log.warn({ event: 'relay.held', queueId, name, reason: 'all recipients rejected permanently' }, 'entry held');
    } else {
      // Some delivered, some rejected: the delivered copies must not be sent again, and hold/
      // would re-send to everyone on release, so the entry is done. The rejected recipients are
      // in the relay.bounce log line. TODO(issue 3): keep their outcome records and send the DSN
      // before removing the entry.
      await spool.remove('outgoing', name);
    }
    forget(name);
  }

  function fill(): void {
    while (!closed && inFlight.size < Math.max(1, config.relay.concurrency) && backlog.length > 0) {
      const name = backlog.shift()!;
      queued.delete(name);
      if (inFlight.has(name)) continue;
      const p = attempt(name)
        .catch((err) => {
          // Spool I/O failed (disk, permissions, a concurrent admin move). The entry stays where
          // it is; try again after the usual back-off instead of spinning on it.
          log.error({ event: 'relay.error', queueId: idOf(name), name, err }, 'relay attempt failed; will retry');
          const s = stateOf(name);
          schedule(name, retryDelay(Math.max(1, s.attempts)));
        })
        .finally(() => {
          inFlight.delete(name);
          fill();
          if (backlog.length === 0) scanner.request();
        });
      inFlight.set(name, p);
    }
  }

  /**
   * Messages a worker holds (active/) or will process again (incoming/, after a crashed worker's
   * claim was reclaimed): their outgoing entries may still be rewritten under the same names, so
   * delivering them now could send a message twice. Listing active/ on both sides of incoming/
   * means no rename between the two (claim or reclaim) can hide an id from all three listings.
   */
  async function busyIds(): Promise<Set<string>> {
    const before = await spool.activeIds();
    const incoming = await spool.list('incoming');
    const after = await spool.activeIds();
    return new Set([...before, ...incoming, ...after]);
  }

  /** Names announced by a worker after its commit: the worker is done with them, no busy check. */
  function offer(names: readonly string[]): void {
    if (closed) return;
    for (const name of names) {
      if (inFlight.has(name) || queued.has(name)) continue;
      if ((states.get(name)?.notBefore ?? 0) > Date.now()) continue;
      backlog.push(name);
      queued.add(name);
    }
    fill();
  }

  const scanner = throttle(async () => {
    if (closed) return;
    try {
      const names = await spool.list('outgoing');
      const busy = await busyIds();
      const present = new Set(names);
      offer(names.filter((name) => !busy.has(idOf(name))));
      for (const name of states.keys()) if (!present.has(name) && !inFlight.has(name)) forget(name);
    } catch (err) {
      log.error({ event: 'relay.scan_error', err }, 'cannot list outgoing queue');
    }
  }, SCAN_INTERVAL_MS);

  function kick(): void {
    if (!closed) scanner.request();
  }

  // The watches are the safety net for entries nobody announced (a relay restarted with a full
  // queue, roles run without a supervisor); entries held back for a busy worker become
  // deliverable when its active/ file goes away.
  const idle = () => {
    if (backlog.length === 0) kick();
  };
  const unwatchOutgoing = watchQueue(spool.dir('outgoing'), idle);
  const unwatchActive = watchQueue(spool.dir('active'), idle);
  kick();

  let closing: Promise<void> | null = null;
  return {
    offer,
    kick,
    reload(c) {
      config = c;
      smtp.retain(new Set(c.relay.routes.map((r) => targetKey(r.target))));
      kick();
    },
    close(graceMs = DEFAULT_GRACE_MS) {
      closing ??= (async () => {
        closed = true;
        backlog = [];
        queued.clear();
        scanner.cancel();
        unwatchOutgoing();
        unwatchActive();
        for (const s of states.values()) if (s.timer) clearTimeout(s.timer);
        let timer: NodeJS.Timeout | undefined;
        const finished = await Promise.race([
          Promise.allSettled([...inFlight.values()]).then(() => true),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs))),
        ]);
        clearTimeout(timer);
        // Past the grace period, cut the remaining SMTP sessions: their entries stay in
        // outgoing/ and are retried by the next relay (a copy the next hop already took may be
        // sent twice — the usual SMTP trade-off, better than a loss).
        smtp.close(!finished);
      })();
      return closing;
    },
  };
}
