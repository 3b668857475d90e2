/**
 * The worker role: claim each accepted message, decide what happens to it, and hand the result to
 * the relay through outgoing/. `decide()` (decide.ts) applies the policy per recipient and returns
 * every output or throws — an input is removed only after all its outputs are durable; the
 * transforms (sign, encrypt, decrypt) plug in there with their issues.
 */
import type { Config } from '../config/types.js';
import { LimitExceededError, PosternError } from '../core/index.js';
import { isStoreUnavailable } from '../keystore/index.js';
import { countOutcome, type Logger } from '../log/index.js';
import { holdClaimed, isNoSpace, throttle, watchQueue, type ClaimedEntry, type HeldDraft, type Spool } from '../spool/index.js';
import { decide, type PolicyContext } from './decide.js';
import { decideStreamed } from './large.js';
import { inDataForm } from './binary-form.js';
import { crashVerdict } from './poison.js';
import { TransformTimeoutError, withDeadline } from './deadline.js';
import { countCommitted } from './tally.js';

export interface WorkerOptions {
  config: Config;
  spool: Spool;
  log: Logger;
  /** Messages processed at once by this worker (I/O overlaps; CPU work is per core). */
  concurrency?: number;
  /** Called with the outgoing/ names of each message once they are durable (to notify the relay). */
  onOutgoing?: (names: string[]) => void;
  /** The policy in force (null: pass every message unchanged, as before the policy engine). */
  policy?: () => PolicyContext | null;
  /** Pause before another attempt at a message whose processing failed, times the attempt (tests). */
  failureRetryMs?: number;
  /** Pause before another attempt after a temporary failure or a time-out (tests; default 60 s). */
  temporaryRetryMs?: number;
  /** Pause before another attempt when the keystore could not be reached (tests; default 60 s). */
  storeRetryMs?: number;
}

export interface Worker {
  /** New incoming/ ids announced by smtpd: try them without waiting for a directory scan. */
  offer(ids: readonly string[]): void;
  /** Scan incoming/ soon. */
  kick(): void;
  reload(config: Config): void;
  /** Stop claiming; finish the messages in hand (or release them after `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

/** A message whose processing failed temporarily (LDAP down, policy set to defer) waits this long. */
const TEMPORARY_RETRY_MS = 60_000;
/** Other failures: tried again after n × this, and held after MAX_FAILURES attempts. */
const FAILURE_RETRY_MS = 5_000;
const MAX_FAILURES = 3;
/**
 * The spool's file system is full: the message waits this long, and so do new claims (every one
 * would run its transforms only to fail at the write). Space comes back as the relay delivers.
 */
const NO_SPACE_RETRY_MS = 5_000;

const recipientsOf = (entry: ClaimedEntry) => entry.meta.envelope.recipients.length;

/** Minimum time between two listings of incoming/ (announcements make most scans unnecessary). */
const SCAN_INTERVAL_MS = 250;

export async function startWorker(opts: WorkerOptions): Promise<Worker> {
  const { spool, log } = opts;
  let config = opts.config;
  const concurrency = opts.concurrency ?? 8;
  const inFlight = new Map<string, Promise<void>>();
  /** Ids known but not yet tried, oldest first; `waiting` mirrors it for O(1) membership. */
  let backlog: string[] = [];
  const waiting = new Set<string>();
  /** Claimed messages waiting out a failure (kept in active/ until their timer). */
  const deferred = new Set<string>();
  /** Failed attempts per message that failed other than temporarily (in this process). */
  const failures = new Map<string, number>();
  /** Attempts per message that ran past worker.transform_timeout (in this process). */
  const timeouts = new Map<string, number>();
  const temporaryRetryMs = opts.temporaryRetryMs ?? TEMPORARY_RETRY_MS;
  const storeRetryMs = opts.storeRetryMs ?? TEMPORARY_RETRY_MS;
  let closed = false;
  /** No claims before this time (ms since epoch): the spool was full. */
  let pausedUntil = 0;
  /** Messages a worker died with before, oldest first: each runs alone, so a crash is attributable. */
  const suspects = new Set<string>();
  /** A suspect is in flight: nothing else starts. */
  let solo = false;

  function pauseClaims(ms: number): void {
    pausedUntil = Date.now() + ms;
    setTimeout(() => {
      fill();
      scanner.request();
    }, ms).unref();
  }

  async function handle(entry: ClaimedEntry): Promise<void> {
    const started = Date.now();
    // The deadline frees this slot and defers the message; the abandoned attempt's result is never
    // written (the commit below is only reached in time). A synchronous loop, which no timer can
    // interrupt, is the supervisor's watchdog's to end (supervisor/watchdog.ts).
    // Large messages (a file range) are streamed when their plan allows it (large.ts: their bytes
    // are made while commitOutgoing writes them), else decided in memory.
    const policy = opts.policy?.() ?? null;
    const decision = await withDeadline(
      (async () => {
        // BINARYMIME content gets its DATA form first, whatever happens next (binary-form.ts).
        const seen = await inDataForm(entry, log);
        return (await decideStreamed(seen, policy, log)) ?? (await decide(seen, policy, log));
      })(),
      config.worker.transform_timeout,
    );
    const { drafts, held } = decision;
    const afterCommit = 'afterCommit' in decision ? decision.afterCommit : undefined;
    const names = await spool.commitOutgoing(entry, drafts, held);
    countCommitted(decision.tally, held);
    failures.delete(entry.id);
    timeouts.delete(entry.id);
    // The relay hears of the outputs first; bookkeeping that must follow them (a database commit)
    // does not delay delivery. A crash before it repeats a notice, never loses one.
    opts.onOutgoing?.(names);
    for (const run of afterCommit ?? []) await run().catch((err: unknown) => log.error({ event: 'worker.after_commit_failed', queueId: entry.id, reason: (err as Error).message }, 'bookkeeping after the message was queued failed'));
    log.info(
      { event: 'worker.done', queueId: entry.id, outputs: drafts.length, ms: Date.now() - started },
      'message processed',
    );
  }

  /** Put a claimed message back into incoming/ after `ms` (it stays in active/ until then). */
  function later(entry: ClaimedEntry, ms: number): void {
    deferred.add(entry.id);
    setTimeout(() => {
      deferred.delete(entry.id);
      void spool.release(entry).catch(() => undefined);
    }, ms).unref();
  }

  function fill(): void {
    while (!closed && !solo && inFlight.size < concurrency && (backlog.length > 0 || suspects.size > 0) && Date.now() >= pausedUntil) {
      const alone = suspects.size > 0;
      if (alone && inFlight.size > 0) return; // the suspect waits until the others are done
      const id = alone ? suspects.values().next().value! : backlog.shift()!;
      if (alone) suspects.delete(id);
      else waiting.delete(id);
      if (inFlight.has(id)) continue;
      solo = alone;
      const p = (async () => {
        let entry: ClaimedEntry | null = null;
        try {
          entry = await spool.claim(id);
          if (!entry) return; // another worker won, or it was corrupt (moved to corrupt/ by claim)
          if (await setAside(entry, alone)) return;
          await handle(entry);
        } catch (err) {
          // Nothing is lost: the entry stays in active/ and is reclaimed when this worker restarts.
          if (isNoSpace(err) && entry) {
            // Not the message's fault: not counted as a failure. Nothing of it was written.
            log.warn({ event: 'worker.no_space', queueId: id, reason: (err as Error).message, retryInMs: NO_SPACE_RETRY_MS }, 'spool file system full; message deferred');
            countOutcome('deferred_no_space', recipientsOf(entry));
            pauseClaims(NO_SPACE_RETRY_MS);
            later(entry, NO_SPACE_RETRY_MS);
            return;
          }
          // The keystore cannot be reached (PostgreSQL down, failing over, out of connections): not
          // the message's fault, so never counted toward a hold and never a bounce; it waits in
          // active/ and is processed again — the store is asked afresh then, so nothing decided
          // without it (in clear, unsigned) ever leaves. Mail that needs no store goes on meanwhile.
          if (isStoreUnavailable(err) && entry) {
            countOutcome('deferred_store', recipientsOf(entry));
            log.warn({ event: 'worker.store_unavailable', queueId: id, reason: (err as Error).message, retryInMs: storeRetryMs }, 'keystore unavailable; message deferred');
            later(entry, storeRetryMs);
            return;
          }
          // Past worker.transform_timeout: a temporary failure, tried again after a pause — and held
          // after MAX_FAILURES such attempts, so a message that always takes too long does not take
          // a slot for that long every minute for ever.
          if (err instanceof TransformTimeoutError && entry) {
            const n = (timeouts.get(id) ?? 0) + 1;
            timeouts.set(id, n);
            log.warn({ event: 'worker.transform_timeout', queueId: id, timeoutMs: err.ms, attempt: n, ...(n < MAX_FAILURES ? { retryInMs: temporaryRetryMs } : {}) }, 'processing took too long; message deferred');
            if (n < MAX_FAILURES) {
              countOutcome('deferred_transform_timeout', recipientsOf(entry));
              later(entry, temporaryRetryMs);
              return;
            }
            timeouts.delete(id);
            const reason = `processing took longer than worker.transform_timeout (${err.ms / 1000} s) ${n} times`;
            if (await holdWhole(entry, reason, 'held_after_timeouts')) log.error({ event: 'worker.held_after_timeouts', queueId: id, reason }, 'message held after repeated time-outs');
            return;
          }
          // A temporary failure (a directory that cannot answer) is tried again after a pause, so
          // a server that is down is not hammered once per message per millisecond.
          if (err instanceof PosternError && err.temporary && entry) {
            countOutcome('deferred_temporary', recipientsOf(entry));
            log.warn({ event: 'worker.deferred', queueId: id, reason: err.message, retryInMs: temporaryRetryMs }, 'temporary failure; message deferred');
            later(entry, temporaryRetryMs);
            return;
          }
          // A limit a parser met outside a transform's own hold (core/limits.ts): the same bytes
          // hit it every time, so the whole message is held at once with the limit as the reason.
          if (err instanceof LimitExceededError && entry) {
            if (await holdWhole(entry, err.message, 'held_limit')) log.warn({ event: 'worker.limit_exceeded', queueId: id, limit: err.limit, max: err.max, reason: err.message }, 'held: the message goes past a limit');
            return;
          }
          if (!entry) {
            log.error({ event: 'worker.error', queueId: id, err }, 'could not claim the message; it stays queued');
            return;
          }
          // Anything else may be a bug this message triggers every time: tried again a few times,
          // with a pause, then held for an admin with the reason — never dropped, and never a loop
          // that takes a core away from all other mail.
          const n = (failures.get(id) ?? 0) + 1;
          failures.set(id, n);
          if (n < MAX_FAILURES) {
            const pause = n * (opts.failureRetryMs ?? FAILURE_RETRY_MS);
            log.error({ event: 'worker.error', queueId: id, err, attempt: n, retryInMs: pause }, 'processing failed; message will be tried again');
            later(entry, pause);
            return;
          }
          failures.delete(id);
          const reason = `processing failed ${n} times: ${(err as Error).message ?? String(err)}`;
          if (await holdWhole(entry, reason, 'held_after_errors')) log.error({ event: 'worker.held_after_errors', queueId: id, err, reason }, 'message held after repeated failures');
        }
      })().finally(() => {
        inFlight.delete(id);
        if (alone) solo = false;
        fill();
        if (backlog.length === 0) scanner.request();
      });
      inFlight.set(id, p);
    }
  }

  /** Hold every recipient of a claimed message with the reason; false (released for retry) if even that fails. */
  async function holdWhole(entry: ClaimedEntry, reason: string, heldAs: HeldDraft['heldAs']): Promise<boolean> {
    try {
      await spool.commitOutgoing(entry, [], [{ envelope: entry.meta.envelope, body: entry.body, reason, heldAs }]);
      countOutcome(heldAs ?? 'held_after_errors', recipientsOf(entry));
      return true;
    } catch (holdErr) {
      log.error({ event: 'worker.error', queueId: entry.id, err: holdErr }, 'could not hold the message; released for retry');
      await spool.release(entry).catch(() => undefined);
      return false;
    }
  }

  /**
   * Before processing, from the crash marks the claim read with the entry (poison.ts): a message
   * that crashed its worker too often is held; one that was in a worker that died goes back to
   * incoming/ until it can run alone. True when it is not to be processed now.
   */
  async function setAside(entry: ClaimedEntry, alone: boolean): Promise<boolean> {
    const v = crashVerdict(entry.status);
    if (v.verdict === 'poison') {
      await holdClaimed(spool, entry, v.reason);
      countOutcome('held_poison', recipientsOf(entry));
      log.error({ event: 'worker.held_poison', queueId: entry.id, reason: v.reason }, 'message held: it crashed the worker every time');
      return true;
    }
    if (v.verdict === 'clean' || alone) return false;
    log.warn({ event: 'worker.suspect', queueId: entry.id, crashes: v.crashes }, 'a worker died with this message before; it will be processed alone');
    suspects.add(entry.id);
    await spool.release(entry);
    return true;
  }

  function offer(ids: readonly string[]): void {
    for (const id of ids) {
      if (waiting.has(id) || inFlight.has(id) || deferred.has(id) || suspects.has(id)) continue;
      waiting.add(id);
      backlog.push(id);
    }
    fill();
  }

  const scanner = throttle(async () => {
    if (closed) return;
    try {
      offer(await spool.list('incoming'));
    } catch (err) {
      log.error({ event: 'worker.scan_error', err }, 'cannot list incoming queue');
    }
  }, SCAN_INTERVAL_MS);

  const unwatch = watchQueue(spool.dir('incoming'), () => {
    if (backlog.length === 0) scanner.request();
  });
  scanner.request();

  return {
    offer,
    kick: () => scanner.request(),
    reload(c) {
      config = c;
    },
    async close(graceMs = 30_000) {
      closed = true;
      backlog = [];
      waiting.clear();
      scanner.cancel();
      unwatch();
      // Claimed messages finish; if they do not within the grace period the supervisor's
      // reclaim puts them back into incoming/ after this process exits.
      await Promise.race([Promise.allSettled([...inFlight.values()]), new Promise((r) => setTimeout(r, graceMs).unref())]);
    },
  };
}
