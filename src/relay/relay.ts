/**
 * The relay role: deliver each entry of outgoing/ per route; record every recipient's answer in
 * the entry (status records), so no recipient is sent a message twice across retries, restarts
 * and crashes; park entries with temporary failures in deferred/ until their next attempt; queue
 * delivery status notifications; remove an entry once every recipient has a final answer.
 *
 * Scheduling: names announced by the workers and, as a safety net, throttled scans of outgoing/
 * feed a backlog with bounded concurrency; deferred/ entries wait on timers (rebuilt from their
 * status records at start). An admin's flush or release moves entries into outgoing/, where the
 * directory watch finds them.
 */
import type { Config } from '../config/types.js';
import { CorruptEntryError, outcomeLine, rejectOutcome } from '../core/index.js';
import { countOutcome, type Logger } from '../log/index.js';
import { claimForDelivery, holdRequested, isNoSpace, throttle, watchQueue, type DeliveryClaim, type QueueName, type Spool, type StatusRecord } from '../spool/index.js';
import { ReplyClassifier } from './classify.js';
import { Delivery } from './deliver.js';
import { countAttempt, deliverGroup, recordOf } from './group.js';
import { systemResolver, type DnsResolver } from './mx.js';
import { noticeRecord, noticesFor } from './notices.js';
import { ownAddressCheck } from './own-addresses.js';
import type { RecipientOutcome } from './outcome.js';
import { groupByRoute } from './routes.js';
import { entryState, isFinal } from './state.js';
import { trustedCas } from './trusted-cas.js';

export interface RelayOptions {
  config: Config;
  spool: Spool;
  log: Logger;
  /** DNS for mx routes; the system resolver by default. Tests pass a fake zone. */
  resolver?: DnsResolver;
  /** Test hook: the port MX hosts listen on (25). */
  mxPort?: number;
  /** Test hook: shorter SMTP timeouts. */
  smtpTimeouts?: { connection?: number; greeting?: number; socket?: number };
  /** Test hook: where mta-sts.<domain> is reached (its certificate is still checked for that name). */
  stsOrigin?: (policyHost: string) => { host: string; port: number };
}

export interface Relay {
  /** Outgoing names a worker has just committed: deliver them without waiting for a scan. */
  offer(names: readonly string[]): void;
  /** Scan outgoing/ soon. */
  kick(): void;
  /** New routes, retry schedule and rules; deliveries in flight finish with the old ones. */
  reload(config: Config): void;
  /** Stop picking up entries, let deliveries in flight finish (up to `graceMs`), close connections. */
  close(graceMs?: number): Promise<void>;
}

const DEFAULT_GRACE_MS = 30_000;
/** Minimum time between two listings of outgoing/ (workers announce what they commit). */
const SCAN_INTERVAL_MS = 250;
/** Node timers cannot wait longer than 2^31-1 ms; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const isEnoent = (err: unknown) => (err as NodeJS.ErrnoException)?.code === 'ENOENT';
/** "<queue id>.<group>" → queue id. */
const idOf = (name: string) => name.split('.')[0]!;
/** Recipients of an entry still without a final answer. */
const waiting = (s: ReturnType<typeof entryState>) => s.recipients.filter((r) => !isFinal(r)).length;

export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const { spool, log } = opts;
  let config = opts.config;
  let classifier = new ReplyClassifier(config.relay.reply_rules);
  const ownAddresses = (c: Config) => ownAddressCheck({ listen: c.smtp.listen, extra: c.relay.own_addresses });
  let isOwnAddress = ownAddresses(config);
  let cas = await trustedCas(config.relay.tls_ca_file);
  const delivery = new Delivery({
    ca: () => cas,
    ...(opts.stsOrigin ? { stsOrigin: opts.stsOrigin } : {}),
    hostname: config.hostname,
    isOwnAddress: (address, port) => isOwnAddress(address, port),
    resolver: opts.resolver ?? systemResolver(),
    mxPort: opts.mxPort,
    maxConnections: Math.max(1, Math.min(config.relay.concurrency, 10)),
    cacheTime: config.relay.connection_cache_time,
    smtpTimeouts: opts.smtpTimeouts,
    log,
  });
  /** deferred/ entries and the timer of their next attempt. */
  const timers = new Map<string, NodeJS.Timeout>();
  const inFlight = new Map<string, Promise<void>>();
  let backlog: { name: string; queue: QueueName }[] = [];
  const queued = new Set<string>();
  /** Entries whose last attempt hit a local error (disk, permissions): not before this time. */
  const cooldown = new Map<string, number>();
  let closed = false;

  /** The configured delay before attempt n+1, with ±10% jitter so retries of a burst spread out. */
  function retryDelay(attempt: number): number {
    const r = config.relay.retry;
    const base = r[Math.min(Math.max(attempt, 1), r.length) - 1]!;
    return Math.round(base * (0.9 + Math.random() * 0.2));
  }

  function enqueue(name: string, queue: QueueName): void {
    if (closed || inFlight.has(name) || queued.has(name)) return;
    const until = cooldown.get(name);
    if (until !== undefined) {
      if (until > Date.now()) return;
      cooldown.delete(name);
    }
    backlog.push({ name, queue });
    queued.add(name);
  }

  function schedule(name: string, at: number): void {
    if (closed) return;
    clearTimeout(timers.get(name));
    const wait = Math.max(0, at - Date.now());
    const timer = setTimeout(() => {
      timers.delete(name);
      if (wait > MAX_TIMER_MS) return schedule(name, at);
      // Already queued or in flight (e.g. taken from outgoing/ after a scan raced with a move):
      // look again shortly rather than drop the timer, or the entry could sit in deferred/ forever.
      if (inFlight.has(name) || queued.has(name)) return schedule(name, Date.now() + 1000);
      cooldown.delete(name); // timers may fire a millisecond early; the time has come regardless
      enqueue(name, 'deferred');
      fill();
    }, Math.min(wait, MAX_TIMER_MS));
    timer.unref();
    timers.set(name, timer);
  }

  function unschedule(name: string): void {
    clearTimeout(timers.get(name));
    timers.delete(name);
  }

  /**
   * One delivery attempt of one entry, claimed into delivering/ for its whole duration: nothing
   * else moves it meanwhile, so its records and its removal cannot miss (see spool/delivering.ts).
   */
  async function attempt(name: string, queue: QueueName): Promise<void> {
    let entry: DeliveryClaim;
    try {
      entry = await claimForDelivery(spool, queue, name);
    } catch (err) {
      if (isEnoent(err)) return; // delivered meanwhile, or moved by an admin (a scan finds it)
      if (err instanceof CorruptEntryError) {
        log.error({ event: 'relay.corrupt', name, reason: err.message }, 'unreadable entry moved to corrupt/');
        return;
      }
      throw err;
    }
    try {
      await deliverEntry(entry);
    } finally {
      // An attempt cut short by a spool error: the entry goes back where it came from, and the
      // caller's cool-down decides when it is tried again.
      if (entry.claimed) {
        await entry.moveTo(entry.from).catch((err) => log.error({ event: 'relay.unclaim_error', queueId: idOf(name), name, err }, 'entry stays in delivering/ until the relay restarts'));
      }
      await entry.close();
    }
  }

  async function deliverEntry(entry: DeliveryClaim): Promise<void> {
    const { name } = entry;
    const queueId = entry.meta.id;
    const env = entry.meta.envelope;
    unschedule(name);
    const held = holdRequested(entry.status);
    if (held) {
      // Held by an admin while it was claimed for an attempt that has ended since.
      await entry.moveTo('hold');
      countOutcome('held_admin', waiting(entryState(env, entry.status)));
      log.info({ event: 'relay.held', queueId, name, reason: held.reason }, 'entry held');
      return;
    }
    const before = entryState(env, entry.status);
    const pending = before.recipients.filter((r) => !isFinal(r)).map((r) => r.address);
    const received = Date.parse(env.receivedAt) || Date.now();
    const expiresAt = received + config.relay.max_queue_lifetime;
    const attemptNo = before.attempts + 1;

    let outcomes: RecipientOutcome[] = [];
    const reject = entry.meta.notes?.reject;
    if (pending.length && reject !== undefined) {
      // The worker's policy refused these recipients: a failure (and a bounce), never a delivery.
      const kind = rejectOutcome(entry.meta.notes);
      const reply = outcomeLine(kind, { reason: reject });
      outcomes = pending.map((recipient) => ({ recipient, status: 'failed', reply, kind }));
      log.warn({ event: 'relay.bounce', queueId, name, outcome: kind, recipients: outcomes.map((o) => ({ address: o.recipient, reply: o.reply })) }, 'rejected by policy');
    } else if (pending.length) {
      const { groups, unrouted } = groupByRoute(config.relay.routes, pending);
      if (unrouted.length) {
        // A config gap, not the recipient's fault: hold the whole entry before sending anything;
        // `queue release` after fixing the routes delivers each remaining recipient once.
        await entry.moveTo('hold');
        countOutcome('held_no_route', pending.length);
        log.error({ event: 'relay.no_route', queueId, name, outcome: 'held_no_route', recipients: unrouted }, 'no route matches; entry held');
        return;
      }
      const ctx = { delivery, classifier, log };
      outcomes = (await Promise.all(groups.map((g) => deliverGroup(ctx, entry, g, attemptNo)))).flat();
    }

    // Shutting down: a temporary failure now is most likely our own cut connection. Keep only the
    // final answers; the entry goes back where it was, due at once when the relay is back.
    if (closed) outcomes = outcomes.filter((o) => o.status !== 'deferred');
    const now = Date.now();
    const at = new Date(now).toISOString();
    const expired = now >= expiresAt;
    countAttempt(outcomes, expired, received, now);
    // Out of time: the last temporary failure becomes the final one (and a bounce says so).
    const records: StatusRecord[] = outcomes.map((o) =>
      o.status === 'deferred' && expired ? { ...recordOf(o, at), status: 'failed', expired: true } : recordOf(o, at),
    );
    if (expired && records.some((r) => r.t === 'rcpt' && r.expired)) {
      log.warn({ event: 'relay.expired', queueId, name, outcome: 'bounced_expired', lifetimeMs: config.relay.max_queue_lifetime }, 'message expired in queue; bouncing');
    }
    let next = 0;
    if (records.some((r) => r.t === 'rcpt' && r.status === 'deferred')) {
      // Never wait past the end of the lifetime: the bounce should come when it is due.
      next = Math.min(now + retryDelay(attemptNo), Math.max(expiresAt, now + 1000));
      records.push({ t: 'attempt', at, n: attemptNo, next: new Date(next).toISOString() });
    }

    const after = entryState(env, [...entry.status, ...records]);
    const done = after.recipients.every(isFinal);
    const notices = noticesFor(entry, after, config, now);
    // The common case (every recipient delivered, nobody asked for a notice) needs no record:
    // the entry is removed next, and that is the record.
    const recorded = !done || notices.length > 0;
    if (recorded) await entry.append(records);
    if (notices.length) {
      const names: string[] = [];
      for (const n of notices) names.push(await spool.inject(n.id, n.draft));
      await entry.append(notices.map((n) => noticeRecord(n, at)));
      for (const n of notices) log.info({ event: 'relay.dsn', queueId, name, kind: n.kind, recipients: n.rcpts.length, dsnId: n.id, ...(n.draft.notes?.doubleBounce ? { doubleBounce: true } : {}) }, 'delivery status notification queued');
      offer(names);
    }
    const lost = entry.meta.notes?.doubleBounce ? records.filter((r) => r.t === 'rcpt' && r.status === 'failed') : [];
    if (lost.length) log.warn({ event: 'relay.double_bounce_dropped', queueId, name, recipients: lost.length }, 'undeliverable postmaster notification discarded');

    if (done) {
      try {
        await entry.remove();
      } catch (err) {
        // The entry goes back to its queue (attempt()); its records must say that it is done,
        // or the next attempt would deliver it again.
        if (!recorded) await entry.append(records);
        throw err;
      }
      return;
    }
    if (closed) return entry.moveTo(entry.from);
    const hold = await entry.holdRequested();
    await entry.moveTo(hold ? 'hold' : 'deferred');
    if (hold) {
      countOutcome('held_admin', waiting(after));
      log.info({ event: 'relay.held', queueId, name, reason: hold.reason }, 'entry held after its delivery attempt');
      return;
    }
    // A hold that came in between the look above and the move is in the moved file: honour it
    // now rather than at the next attempt.
    if (await heldIn('deferred', name, waiting(after))) return;
    schedule(name, next);
  }

  /** Move a deferred/ entry whose records ask for a hold into hold/; false when there is none. */
  async function heldIn(queue: QueueName, name: string, recipients: number): Promise<boolean> {
    try {
      const hold = holdRequested(await spool.readStatus(queue, name));
      if (!hold) return false;
      await spool.move(queue, 'hold', name);
      countOutcome('held_admin', recipients);
      log.info({ event: 'relay.held', queueId: idOf(name), name, reason: hold.reason }, 'entry held after its delivery attempt');
      return true;
    } catch (err) {
      // Moved on meanwhile (flushed): whoever claims it next sees the record.
      if (isEnoent(err)) return true;
      // The record stays in the entry and is honoured at its next attempt.
      log.error({ event: 'relay.error', queueId: idOf(name), name, err }, 'could not act on a hold request now');
      return false;
    }
  }

  function fill(): void {
    while (!closed && inFlight.size < Math.max(1, config.relay.concurrency) && backlog.length > 0) {
      const { name, queue } = backlog.shift()!;
      queued.delete(name);
      if (inFlight.has(name)) continue;
      const p = attempt(name, queue)
        .catch((err) => {
          // Spool I/O failed (disk, permissions). The entry stays where it is; try again after a
          // pause instead of spinning on it.
          const delay = retryDelay(1);
          if (isNoSpace(err)) {
            const reason = (err as Error).message;
            countOutcome('deferred_no_space');
            log.warn({ event: 'relay.no_space', queueId: idOf(name), name, reason, retryInMs: delay }, 'spool file system full; entry left in place');
          } else log.error({ event: 'relay.error', queueId: idOf(name), name, err }, 'relay attempt failed; will retry');
          cooldown.set(name, Date.now() + delay);
          if (queue === 'deferred') schedule(name, Date.now() + delay);
          else setTimeout(kick, delay).unref();
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
    for (const name of names) enqueue(name, 'outgoing');
    fill();
  }

  const scanner = throttle(async () => {
    if (closed) return;
    try {
      const names = await spool.list('outgoing');
      const busy = await busyIds();
      offer(names.filter((name) => !busy.has(idOf(name))));
    } catch (err) {
      log.error({ event: 'relay.scan_error', err }, 'cannot list outgoing queue');
    }
  }, SCAN_INTERVAL_MS);

  function kick(): void {
    if (!closed) scanner.request();
  }

  /** At start: a timer for every deferred/ entry, from the attempt time in its status records. */
  async function loadDeferred(): Promise<void> {
    for (const name of await spool.list('deferred')) {
      try {
        const status = await spool.readStatus('deferred', name);
        const last = [...status].reverse().find((r) => r.t === 'attempt');
        schedule(name, last && last.t === 'attempt' ? Date.parse(last.next) || 0 : 0);
      } catch (err) {
        if (isEnoent(err)) continue;
        // Unreadable: let the attempt find out and move it to corrupt/.
        schedule(name, 0);
      }
    }
  }

  // The watches are the safety net for entries nobody announced (a relay restarted with a full
  // queue, an admin's flush or release, roles run without a supervisor); entries held back for a
  // busy worker become deliverable when its active/ file goes away.
  const idle = () => {
    if (backlog.length === 0) kick();
  };
  const unwatchOutgoing = watchQueue(spool.dir('outgoing'), idle);
  const unwatchActive = watchQueue(spool.dir('active'), idle);
  await loadDeferred();
  kick();

  let closing: Promise<void> | null = null;
  return {
    offer,
    kick,
    reload(c) {
      config = c;
      isOwnAddress = ownAddresses(c);
      classifier = new ReplyClassifier(c.relay.reply_rules);
      trustedCas(c.relay.tls_ca_file).then(
        (list) => (cas = list),
        (err) => log.error({ event: 'relay.error', err }, 'relay.tls_ca_file unreadable; the CAs trusted before stay'),
      );
      delivery.setCacheTime(c.relay.connection_cache_time);
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
        for (const t of timers.values()) clearTimeout(t);
        timers.clear();
        let timer: NodeJS.Timeout | undefined;
        const finished = await Promise.race([
          Promise.allSettled([...inFlight.values()]).then(() => true),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs))),
        ]);
        clearTimeout(timer);
        // Past the grace period, cut the remaining SMTP sessions: their entries stay where they
        // are and are retried by the next relay (a copy the next hop already took may be sent
        // twice — the usual SMTP trade-off, better than a loss).
        delivery.close(!finished);
      })();
      return closing;
    },
  };
}
