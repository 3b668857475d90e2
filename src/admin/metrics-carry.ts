/**
 * Counters that stay counters across the gateway's processes. The admin role sums the series of
 * a role's processes; when one of them dies its counts go with it, and the sum would fall — which
 * Prometheus takes for a reset and answers with a spike in rate(). So the last figures of each
 * process are remembered by its slot (role and index): a slot answering with a new pid hands its
 * old process's last counters and histograms on to a carried total, and a slot that did not answer
 * this time is counted with its last figures (gauges left out: they are no longer true). What a
 * process counted after the last scrape before it died is lost; nothing is counted twice.
 */
import { AggregatorRegistry } from 'prom-client';
import type { MetricsSnapshot } from '../log/index.js';

/** One process's snapshot as the supervisor passes it on. */
export interface ProcessSnapshot {
  role: string;
  index: number;
  pid: number;
  data: MetricsSnapshot;
}

const cumulative = (s: MetricsSnapshot): MetricsSnapshot => s.filter((m) => String(m.type) === 'counter' || String(m.type) === 'histogram');

export class CarriedCounts {
  private readonly latest = new Map<string, { pid: number; data: MetricsSnapshot }>();
  private carried: MetricsSnapshot = [];

  /** The snapshots to sum for this scrape: the answers, the silent slots' last counts, the carried total. */
  async merge(answers: readonly ProcessSnapshot[]): Promise<MetricsSnapshot[]> {
    const answered = new Set<string>();
    const gone: MetricsSnapshot[] = [];
    for (const a of answers) {
      const slot = `${a.role}:${a.index}`;
      answered.add(slot);
      const prev = this.latest.get(slot);
      if (prev && prev.pid !== a.pid) gone.push(cumulative(prev.data));
      this.latest.set(slot, { pid: a.pid, data: a.data });
    }
    // Folded into one snapshot, so what is carried stays the size of one process's.
    if (gone.length) this.carried = await AggregatorRegistry.aggregate([this.carried, ...gone]).getMetricsAsJSON();
    const silent = [...this.latest].filter(([slot]) => !answered.has(slot)).map(([, v]) => cumulative(v.data));
    return [...answers.map((a) => a.data), ...silent, ...(this.carried.length ? [this.carried] : [])];
  }
}
