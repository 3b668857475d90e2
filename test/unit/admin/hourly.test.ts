/**
 * The dashboard's messages per hour: each sample's increase of the running totals filed under its
 * hour, a total that fell counted from zero, hours before counting began not shown, a day kept.
 */
import { describe, expect, it } from 'vitest';
import { HourlyCounts, processedByMethod } from '../../../src/admin/index.js';

const H = 3_600_000;
const T0 = Date.UTC(2026, 11, 3, 10, 0, 0);

describe('messages per hour by method', () => {
  it('files increases under the hour of the sample, from the first sample on', () => {
    let now = T0 + 10 * 60_000;
    const c = new HourlyCounts(24, () => now);
    expect(c.table()).toEqual({ since: null, methods: ['smime', 'pgp', 'pdf', 'webmail', 'clear'], hours: [] });
    c.observe({ smime: 100, clear: 40 }); // what happened before counting began is not this hour's
    now += 5 * 60_000;
    c.observe({ smime: 103, clear: 40, pgp: 2 });
    now = T0 + H + 60_000;
    c.observe({ smime: 104, clear: 41, pgp: 2 });
    const t = c.table();
    expect(t.since).toBe(new Date(T0 + 10 * 60_000).toISOString());
    expect(t.hours).toEqual([
      { hour: new Date(T0 + H).toISOString(), counts: { smime: 1, pgp: 0, pdf: 0, webmail: 0, clear: 1 } },
      { hour: new Date(T0).toISOString(), counts: { smime: 3, pgp: 2, pdf: 0, webmail: 0, clear: 0 } },
    ]);
  });

  it('counts a total that fell (its processes restarted) from zero, and keeps only the last day', () => {
    let now = T0;
    const c = new HourlyCounts(3, () => now);
    c.observe({ clear: 50 });
    now += 60_000;
    c.observe({ clear: 7 });
    expect(c.table().hours[0]!.counts.clear).toBe(7);
    now = T0 + 5 * H;
    c.observe({ clear: 9 });
    const hours = c.table().hours;
    expect(hours).toHaveLength(3);
    expect(hours.map((h) => h.counts.clear)).toEqual([2, 0, 0]);
  });

  it('sums every direction and process of postern_worker_processed_total by method', () => {
    const series = (values: { labels: Record<string, string>; value: number }[]) => [{ name: 'postern_worker_processed_total', values }, { name: 'other_total', values: [{ labels: { method: 'smime' }, value: 99 }] }];
    expect(
      processedByMethod([
        series([{ labels: { method: 'smime', direction: 'outbound' }, value: 2 }, { labels: { method: 'smime', direction: 'inbound' }, value: 1 }]),
        series([{ labels: { method: 'clear', direction: 'inbound' }, value: 4 }]),
      ]),
    ).toEqual({ smime: 3, clear: 4 });
  });
});
