/**
 * What the admin role adds to the gathered metrics, on a real keystore and spool: the queue sizes
 * and the expiry of the certificates that matter, computed at scrape time; a supervisor that does
 * not answer leaves this process's series and the gauges. And GET /api/logs through the app with
 * a signed-in session: this process's lines merged with the other processes', the filters
 * validated, what could not be asked said.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gatewayMetrics, MAX_CERTIFICATE_SERIES, watchedCertificates } from '../../../src/admin/index.js';
import { newQueueId } from '../../../src/core/index.js';
import type { StoredCertificate } from '../../../src/keystore/index.js';
import { initCa, issueFromCa } from '../../../src/keystore/index.js';
import type { LogRecord } from '../../../src/log/index.js';
import { forgetRecent, keepLine } from '../../../src/log/recent.js';
import { adminHarness, type AdminHarness } from '../../helpers/admin.js';
import { promtoolCheck, samples, sum } from '../../helpers/prometheus.js';

describe('the gateway metrics of the admin role', () => {
  let h: AdminHarness;
  beforeEach(async () => {
    h = await adminHarness({ prefix: 'postern-admin-metrics-', roles: ['auditor', 'user_operator'] });
  });
  afterEach(() => h.close());

  it('adds the queue sizes and the certificate expiry to what the other processes sent', async () => {
    await initCa(h.store, { commonName: 'Unit CA', actor: 'test' });
    const alice = await issueFromCa(h.store, h.config, { address: 'alice@example.com', actor: 'test' });
    await h.spool.inject(newQueueId(), { envelope: { sender: 'a@example.org', recipients: [{ address: 'b@example.com' }], receivedAt: new Date().toISOString(), client: { address: '192.0.2.7', port: 40000, helo: 'client.example', hostname: '[192.0.2.7]', protocol: 'ESMTP', trusted: false } }, body: Buffer.from('Subject: x\r\n\r\nx\r\n') });
    const other = [{ name: 'postern_messages_delivered_total', help: 'delivered', type: 'counter', aggregator: 'sum', values: [{ value: 4, labels: { via: 'smtp', role: 'relay' } }] }];
    const now = Date.now();
    const text = await gatewayMetrics({ ctx: h.ctx, gather: async () => [{ role: 'relay', index: 0, pid: 4242, data: other as never }], now: () => now })();
    expect(await promtoolCheck(text)).toEqual({ code: 0, output: '' });
    const s = samples(text);
    expect(sum(s, 'postern_messages_delivered_total', { via: 'smtp', role: 'relay' })).toBe(4);
    expect(sum(s, 'postern_queue_entries', { queue: 'outgoing' })).toBe(1);
    expect(sum(s, 'postern_queue_entries', { queue: 'incoming' })).toBe(0);
    expect(sum(s, 'postern_metrics_processes')).toBe(2);
    const mine = s.find((x) => x.name === 'postern_certificate_expiry_seconds' && x.labels.kind === 'user')!;
    expect(mine.labels).toEqual({ kind: 'user', fingerprint: alice.fingerprint, name: 'alice@example.com' });
    expect(mine.value).toBe(Math.round((alice.notAfter.getTime() - now) / 1000));
    expect(s.filter((x) => x.name === 'postern_certificate_expiry_seconds').map((x) => x.labels.kind)).toEqual(['user', 'ca']);
  });

  it("still answers with this process's series and the gauges when the supervisor cannot be asked", async () => {
    const text = await gatewayMetrics({ ctx: h.ctx, gather: async () => Promise.reject(new Error('not running under the supervisor')) })();
    expect(sum(text, 'postern_metrics_processes')).toBe(1);
    expect(sum(text, 'postern_queue_entries', { queue: 'hold' })).toBe(0);
    expect(samples(text).some((x) => x.name === 'postern_messages_held_total')).toBe(true);
  });
});

describe('the certificates whose expiry is watched', () => {
  let n = 0;
  const cert = (emails: string[], notAfter: string, more: Partial<StoredCertificate> = {}): StoredCertificate =>
    ({ fingerprint: `fp${n++}`, emails, notAfter: new Date(notAfter), hasPrivateKey: true, isCA: false, trusted: false, subject: 'CN=x', ...more }) as StoredCertificate;

  it("takes an internal address's longest-lasting certificate with a key, and trusted CAs only", () => {
    const old = cert(['alice@example.com'], '2027-01-01');
    const renewed = cert(['Alice@Example.COM'], '2029-01-01');
    const partner = cert(['bob@example.org'], '2026-12-31');
    const noKey = cert(['carol@example.com'], '2026-12-31', { hasPrivateKey: false });
    const ca = cert([], '2030-01-01', { isCA: true, trusted: true, subject: 'CN=Our CA' });
    const foreignCa = cert([], '2026-12-20', { isCA: true, trusted: false });
    const w = watchedCertificates([old, renewed, partner, noKey, ca, foreignCa], ['example.com']);
    expect(w.map((x) => [x.kind, x.cert.fingerprint, x.name])).toEqual([
      ['user', renewed.fingerprint, 'alice@example.com'],
      ['ca', ca.fingerprint, 'CN=Our CA'],
    ]);
  });

  it(`keeps the ${MAX_CERTIFICATE_SERIES} soonest to expire`, () => {
    const many = Array.from({ length: MAX_CERTIFICATE_SERIES + 20 }, (_, i) => cert([`u${i}@example.com`], new Date(Date.UTC(2027, 0, 1) + (MAX_CERTIFICATE_SERIES + 20 - i) * 86_400_000).toISOString()));
    const w = watchedCertificates(many, ['example.com']);
    expect(w).toHaveLength(MAX_CERTIFICATE_SERIES);
    expect(w[0]!.name).toBe(`u${MAX_CERTIFICATE_SERIES + 19}@example.com`);
    expect(w.some((x) => x.name === 'u0@example.com')).toBe(false);
  });
});

describe('GET /api/logs', () => {
  let h: AdminHarness;
  const line = (time: string, role: string, event: string, level = 'info'): LogRecord => ({ time, level, role, event, msg: event });
  beforeEach(async () => {
    forgetRecent();
    h = await adminHarness({ prefix: 'postern-admin-logs-', roles: ['auditor', 'user_operator'] });
  });
  afterEach(() => h.close());

  it("merges this process's lines with the other processes', newest first, filters passed on", async () => {
    keepLine(`${JSON.stringify(line('2026-12-03T10:00:02.000Z', 'admin', 'admin.login'))}\n`);
    const asked: unknown[] = [];
    h.ctx.supervisor.logs = async (q) => {
      asked.push(q);
      return [[line('2026-12-03T10:00:03.000Z', 'relay', 'relay.delivered')], [line('2026-12-03T10:00:01.000Z', 'smtpd', 'smtpd.queued', 'warn')]];
    };
    const auditor = await h.as('auditor');
    const r = await h.call(auditor, 'GET', '/logs');
    expect(r.statusCode).toBe(200);
    expect(r.json().lines.map((l: LogRecord) => l.event)).toEqual(['relay.delivered', 'admin.login', 'smtpd.queued']);
    expect(r.json().incomplete).toBeUndefined();

    const warn = await h.call(auditor, 'GET', '/logs', undefined, { level: 'warn', limit: '10' });
    expect(warn.json().lines.map((l: LogRecord) => l.event)).toEqual(['smtpd.queued']);
    expect(asked.at(-1)).toEqual({ level: 'warn', limit: 10 });
    // Only this process's lines are asked for when the role is admin.
    const own = await h.call(auditor, 'GET', '/logs', undefined, { role: 'admin' });
    expect(own.json().lines.map((l: LogRecord) => l.event)).toEqual(['admin.login']);
    expect(asked).toHaveLength(2);
  });

  it('says what could not be asked, and refuses bad filters and callers without logs.read', async () => {
    h.ctx.supervisor.logs = async () => Promise.reject(new Error('the supervisor did not answer logs in 5 s'));
    const auditor = await h.as('auditor');
    const r = await h.call(auditor, 'GET', '/logs');
    expect(r.json()).toEqual({ lines: [], incomplete: 'the supervisor did not answer logs in 5 s' });
    delete h.ctx.supervisor.logs;
    expect((await h.call(auditor, 'GET', '/logs')).json().incomplete).toContain('not running under the supervisor');
    const bad: Record<string, string>[] = [{ level: 'loud' }, { limit: '100000' }, { since: 'yesterday' }, { event: 'relay.*.x*' }, { role: 'root' }, { queueId: '../x' }, { other: '1' }];
    for (const query of bad) {
      expect((await h.call(auditor, 'GET', '/logs', undefined, query)).statusCode, JSON.stringify(query)).toBe(400);
    }
    expect((await h.call(await h.as('user_operator'), 'GET', '/logs')).statusCode).toBe(403);
    expect((await h.call(null, 'GET', '/logs')).statusCode).toBe(401);
  });
});
