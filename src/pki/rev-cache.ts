/**
 * The small caches of revocation checking: bounded maps, and the memory of places that failed
 * (a dead responder or distribution point costs one time-out per failure_ttl, not one per mail).
 * Keys are URLs and fingerprints; nothing secret is kept.
 */

export interface Cached<T> {
  value: T;
  /** ms: after this the entry is not used. */
  expires: number;
  /** ms: after this a new one is fetched (the old one stays usable until `expires` if that fails). */
  refresh: number;
}

const MAX_CACHE = 10_000;

/** Set `k`, dropping the oldest entry when the map is full (hostile certificates name endless URLs). */
export function put<V>(m: Map<string, V>, k: string, v: V): void {
  if (m.size >= MAX_CACHE && !m.has(k)) m.delete(m.keys().next().value!);
  m.set(k, v);
}

export class FailureMemo {
  private readonly failures = new Map<string, { until: number; reason: string }>();

  constructor(private readonly ttlMs: number) {}

  /** Remember that `key` failed, and hand the reason back. */
  fail(key: string, reason: string, now: number): string {
    if (this.ttlMs > 0) put(this.failures, key, { until: now + this.ttlMs, reason });
    return reason;
  }

  /** The reason `key` failed recently, or undefined when it may be asked. */
  recent(key: string, now: number): string | undefined {
    const f = this.failures.get(key);
    if (!f) return undefined;
    if (f.until <= now) {
      this.failures.delete(key);
      return undefined;
    }
    return `${f.reason} (not asked again until ${new Date(f.until).toISOString()})`;
  }

  clear(): void {
    this.failures.clear();
  }
}
