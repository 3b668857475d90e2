/**
 * Messages per hour by method, for the dashboard: the admin role samples the gateway's summed
 * `postern_worker_processed_total` (every worker's copies written, by method) every few minutes
 * and files each sample's increase under the hour it falls in. Prometheus keeps the real history;
 * this is the console's last day, kept in the admin role's memory (a restart of the role starts
 * it again, which the answer says with `since`).
 */
export const METHODS = ['smime', 'pgp', 'pdf', 'webmail', 'clear'] as const;

export interface HourRow {
  /** ISO start of the hour (UTC). */
  hour: string;
  counts: Record<string, number>;
}

export interface HourlyTable {
  /** When counting began (the first sample); null before it. */
  since: string | null;
  methods: readonly string[];
  /** Newest hour first, only hours since `since`. */
  hours: HourRow[];
}

const HOUR = 3_600_000;

export class HourlyCounts {
  private last: Record<string, number> | null = null;
  private since: number | null = null;
  private readonly buckets = new Map<number, Record<string, number>>();

  constructor(
    private readonly keep = 24,
    private readonly now: () => number = Date.now,
  ) {}

  /** A sample of the running totals by method. A total that fell (its processes restarted without carry) counts from zero. */
  observe(totals: Readonly<Record<string, number>>): void {
    const t = this.now();
    if (this.last === null) {
      this.last = { ...totals };
      this.since = t;
      return;
    }
    const hour = Math.floor(t / HOUR) * HOUR;
    const bucket = this.buckets.get(hour) ?? {};
    for (const [method, total] of Object.entries(totals)) {
      const before = this.last[method] ?? 0;
      const added = total >= before ? total - before : total;
      if (added > 0) bucket[method] = (bucket[method] ?? 0) + added;
    }
    this.buckets.set(hour, bucket);
    this.last = { ...totals };
    for (const h of this.buckets.keys()) if (h <= hour - this.keep * HOUR) this.buckets.delete(h);
  }

  table(): HourlyTable {
    if (this.since === null) return { since: null, methods: METHODS, hours: [] };
    const newest = Math.floor(this.now() / HOUR) * HOUR;
    const oldest = Math.max(Math.floor(this.since / HOUR) * HOUR, newest - (this.keep - 1) * HOUR);
    const hours: HourRow[] = [];
    for (let h = newest; h >= oldest; h -= HOUR) {
      const b = this.buckets.get(h) ?? {};
      hours.push({ hour: new Date(h).toISOString(), counts: Object.fromEntries(METHODS.map((m) => [m, b[m] ?? 0])) });
    }
    return { since: new Date(this.since).toISOString(), methods: METHODS, hours };
  }
}

/** The totals by method of `postern_worker_processed_total` in metric snapshots (prom-client's JSON), every direction summed. */
export function processedByMethod(snapshots: readonly { name: string; values: readonly { labels: Partial<Record<string, string | number>>; value: number }[] }[][]): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const snap of snapshots) {
    for (const m of snap) {
      if (m.name !== 'postern_worker_processed_total') continue;
      for (const v of m.values) {
        const method = String(v.labels.method ?? 'clear');
        totals[method] = (totals[method] ?? 0) + v.value;
      }
    }
  }
  return totals;
}
