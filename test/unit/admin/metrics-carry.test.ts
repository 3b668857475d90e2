/**
 * The summed counters of a role stay monotonic when one of its processes is replaced or does not
 * answer (admin/metrics-carry.ts): what a dead worker counted is carried, a silent worker's last
 * counts stand in, gauges of processes that did not answer are left out, nothing counts twice.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CarriedCounts } from '../../../src/admin/index.js';
import { renderMetrics } from '../../../src/log/index.js';
import { promtoolCheck, sum } from '../../helpers/prometheus.js';

async function worker(index: number, pid: number, delivered: number, memory: number) {
  const r = new Registry();
  r.setDefaultLabels({ role: 'worker' });
  new Counter({ name: 'postern_worker_processed_total', help: 'p', registers: [r] }).inc(delivered);
  new Gauge({ name: 'process_resident_memory_bytes', help: 'm', registers: [r] }).set(memory);
  const h = new Histogram({ name: 'postern_relay_delivery_seconds', help: 'l', buckets: [1], registers: [r] });
  for (let i = 0; i < delivered; i++) h.observe(0.5);
  return { role: 'worker', index, pid, data: await r.getMetricsAsJSON() };
}

describe('counts carried across the processes of a role', () => {
  it('keeps the sum from falling when a worker is replaced or silent, and never counts twice', async () => {
    const c = new CarriedCounts();
    const text = async (answers: Awaited<ReturnType<typeof worker>>[]) => renderMetrics(await c.merge(answers));
    const t1 = await text([await worker(0, 100, 5, 10), await worker(1, 101, 3, 20)]);
    expect([sum(t1, 'postern_worker_processed_total'), sum(t1, 'process_resident_memory_bytes')]).toEqual([8, 30]);

    // Worker 0 died and was started again (pid 102), with 1 so far; worker 1 goes on.
    const t2 = await text([await worker(0, 102, 1, 11), await worker(1, 101, 4, 21)]);
    expect([sum(t2, 'postern_worker_processed_total'), sum(t2, 'postern_relay_delivery_seconds_count'), sum(t2, 'process_resident_memory_bytes')]).toEqual([10, 10, 32]);

    // Worker 1 does not answer this time: its last counts stand in, its memory is not shown.
    const t3 = await text([await worker(0, 102, 2, 12)]);
    expect([sum(t3, 'postern_worker_processed_total'), sum(t3, 'process_resident_memory_bytes')]).toEqual([11, 12]);
    expect(await promtoolCheck(t3)).toEqual({ code: 0, output: '' });

    // Back with the same pid: its own figures again, not added to the stand-in.
    const t4 = await text([await worker(0, 102, 2, 12), await worker(1, 101, 6, 22)]);
    expect(sum(t4, 'postern_worker_processed_total')).toBe(13);
  });
});
