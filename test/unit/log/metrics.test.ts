/**
 * The process registry (log/metrics.ts): every outcome of the catalogue counts in exactly the
 * series its `metric` column names; label values of our own words stay label-safe; snapshots of
 * several processes merge as a scrape shows them (a role's processes summed, roles apart); and
 * `promtool check metrics` accepts the text.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { OUTCOME_KINDS, OUTCOMES, parseMetric } from '../../../src/core/outcomes.js';
import { countCryptoFailure, countOutcome, countRefused, metricsSnapshot, observeDelivery, renderMetrics, type MetricsSnapshot } from '../../../src/log/index.js';
import { promtoolCheck, samples, sum } from '../../helpers/prometheus.js';

const text = async () => renderMetrics([await metricsSnapshot()]);

describe('the process registry', () => {
  it('counts each outcome in the series its catalogue entry names, and no other', async () => {
    for (const kind of OUTCOME_KINDS) {
      const { name, labels } = parseMetric(OUTCOMES[kind].metric);
      const before = samples(await text()).filter((s) => s.name.startsWith('postern_messages_'));
      countOutcome(kind, 2);
      const after = samples(await text()).filter((s) => s.name.startsWith('postern_messages_'));
      const changed = after.filter((s, i) => s.value !== before[i]!.value);
      expect(changed.map((s) => [s.name, s.labels, s.value - sum(before, s.name, s.labels)]), kind).toEqual([[name, labels, 2]]);
    }
  });

  it('has every outcome series from the start, so the first event is a change from 0', async () => {
    const s = samples(await text());
    for (const kind of OUTCOME_KINDS) {
      const { name, labels } = parseMetric(OUTCOMES[kind].metric);
      expect(s.some((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)), kind).toBe(true);
    }
  });

  it('keeps label values of reasons plain and bounded', async () => {
    countRefused('bare LF', 554);
    countRefused('Weird "reason"\nwith a line break and much more text than a label should ever carry', 451);
    countCryptoFailure('decrypt', 'smime', 'not-decrypted');
    const s = samples(await text());
    expect(sum(s, 'postern_smtpd_refused_total', { reason: 'bare_lf', class: 'permanent' })).toBe(1);
    const long = s.find((x) => x.name === 'postern_smtpd_refused_total' && x.labels.class === 'temporary')!;
    expect(long.labels.reason).toMatch(/^[a-z0-9_]{1,40}$/);
    expect(sum(s, 'postern_worker_crypto_failures_total', { operation: 'decrypt', method: 'smime', reason: 'not_decrypted' })).toBe(1);
  });

  it('renders text that promtool accepts, histogram included', async () => {
    observeDelivery(0.3, 2);
    observeDelivery(7200);
    const t = await text();
    expect(await promtoolCheck(t)).toEqual({ code: 0, output: '' });
    expect(sum(t, 'postern_relay_delivery_seconds_count')).toBe(3);
    expect(sum(t, 'postern_relay_delivery_seconds_bucket', { le: '0.5' })).toBe(2);
    expect(sum(t, 'postern_relay_delivery_seconds_bucket', { le: '+Inf' })).toBe(3);
  });
});

describe('merging the snapshots of several processes', () => {
  const processOf = async (role: string, delivered: number, latency: number): Promise<MetricsSnapshot> => {
    const r = new Registry();
    r.setDefaultLabels({ role });
    new Counter({ name: 'postern_messages_delivered_total', help: 'delivered', labelNames: ['via'], registers: [r] }).inc({ via: 'smtp' }, delivered);
    new Histogram({ name: 'postern_relay_delivery_seconds', help: 'latency', buckets: [1, 10], registers: [r] }).observe(latency);
    return r.getMetricsAsJSON();
  };

  it('sums the series of one role and keeps roles apart', async () => {
    const t = await renderMetrics([await processOf('worker', 2, 0.5), await processOf('worker', 3, 5), await processOf('relay', 7, 20)]);
    const s = samples(t);
    expect(s.filter((x) => x.name === 'postern_messages_delivered_total').map((x) => [x.labels.role, x.value])).toEqual([
      ['worker', 5],
      ['relay', 7],
    ]);
    expect(sum(s, 'postern_relay_delivery_seconds_bucket', { role: 'worker', le: '1' })).toBe(1);
    expect(sum(s, 'postern_relay_delivery_seconds_bucket', { role: 'worker', le: '10' })).toBe(2);
    expect(sum(s, 'postern_relay_delivery_seconds_sum', { role: 'worker' })).toBe(5.5);
    expect(await promtoolCheck(t)).toEqual({ code: 0, output: '' });
  });
});
