/**
 * Following the store's changes (issue 19): what a process's caches (prepared certificates, key
 * look-ups, the trust store, the KEK) compare against to know they are still true.
 *
 * Every write that changes cached data bumps a counter per topic in store_changes inside its own
 * transaction (store-base.ts `changed`). This watcher keeps a local generation per topic — a number
 * of this process that only grows — and bumps it:
 * - at once when PostgreSQL NOTIFYs the topic (sent at the writer's COMMIT, so a cache refilled
 *   after the bump reads the new data: within milliseconds on every node);
 * - when the store tells it of this process's own write (no round trip: visible to itself at once);
 * - when a re-read of the counters finds one moved: every `interval` (cluster.heartbeat) and after
 *   the LISTEN connection came back (notifications sent meanwhile are lost) — the safety net.
 *
 * SQLite (one machine, several processes on one file) has no NOTIFY: `refresh()` re-reads the
 * counters (one indexed read of a seven-row table, microseconds) and the worker calls it before
 * each message, so a change made by the CLI or the admin console counts from the next message on,
 * as when every look-up read the file. The same caches then serve both backends, and the SQLite
 * suite checks the counters' discipline that the cluster depends on.
 *
 * Fail closed: while the counters could not be read for longer than `maxStaleMs` (the database is
 * unreachable, so changes on other nodes cannot be known), `generation` answers null — "do not
 * trust a cache now" — and look-ups go to the store, which fails, and the message waits.
 */
import type { ChangeTopic } from './store-base.js';

/** What the watcher needs of a store (KeyStoreBase has both). */
export interface ChangeSource {
  changeCounters(): Promise<Record<string, number>>;
  listenForChanges(onChange: (topic: string) => void, onReconnect?: () => void): Promise<() => Promise<void>>;
}

export interface StoreChangesOptions {
  /** ms between re-reads of the counters (cluster.heartbeat). */
  interval: number;
  /** True for a backend that NOTIFYs (PostgreSQL); false: SQLite, refresh() before each use. */
  notified: boolean;
  /** How long caches may be trusted without a successful read of the counters; default 2 × interval + 1 s. */
  maxStaleMs?: number;
  /** Told when a check fails or recovers (for the log); never told a secret. */
  onCheckFailed?: (err: unknown) => void;
  now?: () => number;
}

export type ChangeListener = (topic: string) => void;

export class StoreChanges {
  private readonly generations = new Map<string, number>();
  /** The counters as last read from the store. */
  private seen: Record<string, number> = {};
  /** When the counters were last read successfully (ms), and so no change can have been missed before then. */
  private confirmed = Number.NEGATIVE_INFINITY;
  private readonly listeners = new Set<ChangeListener>();
  private timer: NodeJS.Timeout | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  private reading: Promise<void> | null = null;
  private failing = false;
  private closed = false;
  private readonly now: () => number;
  private readonly maxStaleMs: number;

  private constructor(
    private readonly source: ChangeSource,
    private readonly options: StoreChangesOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.maxStaleMs = options.maxStaleMs ?? 2 * options.interval + 1_000;
  }

  /**
   * Start watching: LISTEN (PostgreSQL), a first read of the counters, the periodic check. A store
   * that cannot be reached now is no reason to fail: caches stay off until a read succeeds.
   */
  static async watch(source: ChangeSource, options: StoreChangesOptions): Promise<StoreChanges> {
    const w = new StoreChanges(source, options);
    if (options.notified) {
      // listen() reconnects by itself after an outage; what it cannot tell us is what changed
      // meanwhile, so the counters are read again then.
      w.unlisten = await source.listenForChanges(
        (topic) => w.bump(topic),
        () => void w.refresh(),
      );
    }
    await w.refresh();
    w.timer = setInterval(() => void w.refresh(), options.interval);
    w.timer.unref();
    return w;
  }

  /**
   * The topic's generation for a cache to compare with the one it filled under, or null when no
   * cache should be trusted now (the counters have not been confirmed for too long). Synchronous
   * and cheap: called on every look-up.
   */
  generation(topic: ChangeTopic): number | null {
    if (this.now() - this.confirmed > this.maxStaleMs) return null;
    return this.generations.get(topic) ?? 0;
  }

  /** The topic changed (a NOTIFY, this process's own write, a counter that moved): caches of it are stale. */
  bump(topic: string): void {
    this.generations.set(topic, (this.generations.get(topic) ?? 0) + 1);
    for (const l of this.listeners) {
      try {
        l(topic);
      } catch {
        // A listener's fault is its own; the others and the generation stand.
      }
    }
  }

  /** Call `listener(topic)` after every bump; returns the function that stops it. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Re-read the counters and bump each topic whose counter moved since the last read. Several
   * callers at once share one read. Never throws: a failed read leaves the confirmation to age.
   * On PostgreSQL nothing needs it between checks unless the confirmation is about to run out.
   */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.reading ??= this.read().finally(() => (this.reading = null));
    return this.reading;
  }

  /**
   * Before a message's look-ups: SQLite re-reads the counters (no NOTIFY tells it); PostgreSQL
   * only when the last confirmation is older than the periodic check should have made it, so a
   * node that lost the database tries again rather than trusting old caches.
   */
  async current(): Promise<void> {
    if (!this.options.notified || this.now() - this.confirmed > this.options.interval + 1_000) await this.refresh();
  }

  private async read(): Promise<void> {
    const asked = this.now();
    let counters: Record<string, number>;
    try {
      counters = await this.source.changeCounters();
    } catch (err) {
      if (!this.failing) this.options.onCheckFailed?.(err);
      this.failing = true;
      return;
    }
    this.failing = false;
    const first = this.confirmed === Number.NEGATIVE_INFINITY;
    for (const [topic, n] of Object.entries(counters)) {
      if (!first && this.seen[topic] !== n) this.bump(topic);
    }
    this.seen = counters;
    // From when the read was asked: a change committed after that may not be in it, but its
    // NOTIFY (or the next read) still comes.
    this.confirmed = Math.max(this.confirmed, asked);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.listeners.clear();
    await this.reading?.catch(() => undefined);
    const u = this.unlisten;
    this.unlisten = null;
    await u?.();
  }
}
