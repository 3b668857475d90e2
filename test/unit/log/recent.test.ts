/**
 * The recent log lines of a process (log/recent.ts): what a real pino logger writes through the
 * keeping destination is what the admin gets back — redacted as written, newest first, the last
 * RECENT_LINES only — with the filters of GET /api/logs, and several processes' lines merged.
 */
import { Writable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { createLogger, mergeLogs, recentLogs, type LogRecord } from '../../../src/log/index.js';
import { forgetRecent, keepingRecent, MAX_KEPT_LINE, RECENT_LINES } from '../../../src/log/recent.js';

function logger(role: string) {
  const written: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      written.push(chunk.toString());
      done();
    },
  });
  return { log: createLogger({ role, level: 'debug', destination: keepingRecent(sink) }), written };
}

describe('recent log lines', () => {
  beforeEach(() => forgetRecent());

  it('keeps what the logger wrote, redacted, newest first, and still writes it', () => {
    const { log, written } = logger('relay');
    log.info({ event: 'relay.delivered', queueId: 'Q1', password: 'hunter2' }, 'delivered');
    log.warn({ event: 'relay.deferred', queueId: 'Q2' }, 'deferred');
    const lines = recentLogs();
    expect(lines.map((l) => [l.event, l.level, l.role])).toEqual([
      ['relay.deferred', 'warn', 'relay'],
      ['relay.delivered', 'info', 'relay'],
    ]);
    expect(lines[1]!.password).toBe('[redacted]');
    expect(JSON.stringify(lines)).not.toContain('hunter2');
    expect(written).toHaveLength(2);
  });

  it(`keeps the last ${RECENT_LINES} lines only`, () => {
    const { log } = logger('worker');
    for (let i = 0; i < RECENT_LINES + 10; i++) log.info({ event: 'worker.done', n: i }, 'done');
    const lines = recentLogs({ limit: RECENT_LINES });
    expect(lines).toHaveLength(RECENT_LINES);
    expect([lines[0]!.n, lines.at(-1)!.n]).toEqual([RECENT_LINES + 9, 10]);
  });

  it('keeps a very long line as its time, level, role, event and message', () => {
    const { log, written } = logger('worker');
    log.error({ event: 'worker.error', queueId: 'Q9', detail: 'x'.repeat(MAX_KEPT_LINE) }, 'processing failed');
    const [kept] = recentLogs();
    expect(kept).toMatchObject({ event: 'worker.error', queueId: 'Q9', level: 'error', role: 'worker', msg: 'processing failed', truncated: written[0]!.length });
    expect(kept!.detail).toBeUndefined();
  });

  it('filters by level and more severe, event or event prefix, role, queue id, time, and limits', () => {
    const { log } = logger('worker');
    log.debug({ event: 'worker.plan', queueId: 'A' }, 'plan');
    log.info({ event: 'worker.done', queueId: 'A' }, 'done');
    log.error({ event: 'worker.error', queueId: 'B' }, 'failed');
    const events = (q: Parameters<typeof recentLogs>[0]) => recentLogs(q).map((l) => l.event);
    expect(events({ level: 'info' })).toEqual(['worker.error', 'worker.done']);
    expect(events({ level: 'error' })).toEqual(['worker.error']);
    expect(events({ event: 'worker.done' })).toEqual(['worker.done']);
    expect(events({ event: 'worker.*' })).toEqual(['worker.error', 'worker.done', 'worker.plan']);
    expect(events({ event: 'worker.d' })).toEqual([]);
    expect(events({ role: 'relay' })).toEqual([]);
    expect(events({ queueId: 'A' })).toEqual(['worker.done', 'worker.plan']);
    expect(events({ since: new Date(Date.now() + 60_000).toISOString() })).toEqual([]);
    expect(events({ since: new Date(Date.now() - 60_000).toISOString(), limit: 1 })).toEqual(['worker.error']);
  });

  it('merges the lines of several processes newest first, filtered again, up to the limit', () => {
    const line = (time: string, role: string, event: string): LogRecord => ({ time, level: 'info', role, event });
    const relay = [line('2026-12-03T10:00:03.000Z', 'relay', 'relay.delivered'), line('2026-12-03T10:00:01.000Z', 'relay', 'relay.deferred')];
    const smtpd = [line('2026-12-03T10:00:02.000Z', 'smtpd', 'smtpd.queued'), line('2026-12-03T10:00:00.000Z', 'smtpd', 'smtpd.queued')];
    expect(mergeLogs([relay, smtpd]).map((l) => l.time.slice(17, 19))).toEqual(['03', '02', '01', '00']);
    expect(mergeLogs([relay, smtpd], { limit: 2 }).map((l) => l.event)).toEqual(['relay.delivered', 'smtpd.queued']);
    expect(mergeLogs([relay, smtpd], { role: 'smtpd' })).toHaveLength(2);
  });
});
