/**
 * Metrics and recent log events of a real gateway (the built binary under its supervisor, two
 * workers, the admin role on loopback): mail sent over SMTP moves the counters of every role,
 * gathered by the admin role through the supervisor; `promtool check metrics` (Debian's
 * prometheus) accepts the text; GET /api/logs, signed in as an Auditor made with
 * `postern admin add`, shows the delivery's events from the roles that wrote them; and an
 * openssl-encrypted message the gateway has no key for, and a killed worker, are counted too.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHttp } from '../helpers/admin.js';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { opensslCa, opensslMailbox, run } from '../helpers/pki-openssl.js';
import { promtoolCheck, samples, sum } from '../helpers/prometheus.js';
import { sendRaw, waitUntil } from '../helpers/send.js';

const PASSWORD = 'the auditor reads everything';

const mail = (from: string, to: string, token: string) =>
  Buffer.from(`From: ${from}\r\nTo: ${to}\r\nSubject: ${token}\r\nMessage-ID: <${token}@test.example>\r\nDate: ${new Date().toUTCString()}\r\n\r\nbody ${token}\r\n`);

describe('metrics and recent log events of a running gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let base: string;
  const { waitDelivered } = maildirOf(() => dir);

  const scrape = async () => {
    const r = await fetch(`${base}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    return r.text();
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-metrics-'));
    port = await freePort();
    const adminPort = await freePort();
    base = `http://127.0.0.1:${adminPort}`;
    const config = await writeGatewayConfig(dir, port, `admin:\n  listen: ["127.0.0.1:${adminPort}"]\n`);
    // alice has a certificate and key from the internal CA: the default policy signs her mail.
    for (const args of [['ca', 'init', '--name', 'Metrics Test CA'], ['ca', 'issue', 'alice@example.com']]) {
      const r = await runPostern(config, args);
      expect(r.code, r.stderr).toBe(0);
    }
    const add = await runPostern(config, ['admin', 'add', 'watcher', '--role', 'auditor'], { ...process.env, POSTERN_ADMIN_PASSWORD: PASSWORD });
    expect(add.code, add.stderr).toBe(0);
    gw = await startGateway(config);
    await gw.waitFor((l) => l.event === 'admin.listening');
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await cleanup?.();
  });

  it('counts the mail of every role, gathered by the admin role, in text promtool accepts', async () => {
    const before = await scrape();
    const check0 = await promtoolCheck(before);
    expect(check0, check0.output).toEqual({ code: 0, output: '' });

    // Two outbound messages signed with S/MIME, one inbound in clear; all to the test maildir.
    await sendRaw(port, 'alice@example.com', ['bob@example.org'], mail('alice@example.com', 'bob@example.org', 'mx-out-1'));
    await sendRaw(port, 'alice@example.com', ['bob@example.org'], mail('alice@example.com', 'bob@example.org', 'mx-out-2'));
    await sendRaw(port, 'carol@example.org', ['dave@example.com'], mail('carol@example.org', 'dave@example.com', 'mx-in-1'));
    await waitDelivered('bob@example.org', 'mx-out-1');
    await waitDelivered('bob@example.org', 'mx-out-2');
    await waitDelivered('dave@example.com', 'mx-in-1');
    // The relay counts once its attempt is over, a moment after the file is in the maildir.
    let after = '';
    await waitUntil(async () => sum((after = await scrape()), 'postern_messages_delivered_total') - sum(before, 'postern_messages_delivered_total') >= 3, 10_000, 'three deliveries counted');
    const check = await promtoolCheck(after);
    expect(check, check.output).toEqual({ code: 0, output: '' });

    const moved = (name: string, labels: Record<string, string> = {}) => sum(after, name, labels) - sum(before, name, labels);
    expect({
      delivered: moved('postern_messages_delivered_total', { via: 'maildir', role: 'relay' }),
      accepted: moved('postern_smtpd_messages_accepted_total', { role: 'smtpd' }),
      smime: moved('postern_worker_processed_total', { method: 'smime', direction: 'outbound', role: 'worker' }),
      clear: moved('postern_worker_processed_total', { method: 'clear', direction: 'inbound', role: 'worker' }),
      latencies: moved('postern_relay_delivery_seconds_count', { role: 'relay' }),
      held: moved('postern_messages_held_total'),
      bounced: moved('postern_messages_bounced_total'),
    }).toEqual({ delivered: 3, accepted: 3, smime: 2, clear: 1, latencies: 3, held: 0, bounced: 0 });
    expect(moved('postern_smtpd_connections_total')).toBeGreaterThanOrEqual(3);

    const s = samples(after);
    // The two workers' series are one: summed under role="worker".
    expect(s.filter((x) => x.name === 'postern_worker_processed_total' && x.labels.method === 'smime' && x.labels.direction === 'outbound')).toHaveLength(1);
    // The supervisor, the admin role and each of relay, two workers and smtpd answered.
    expect(sum(s, 'postern_metrics_processes')).toBe(6);
    expect(new Set(s.filter((x) => x.name === 'process_resident_memory_bytes').map((x) => x.labels.role))).toEqual(new Set(['supervisor', 'admin', 'relay', 'worker', 'smtpd']));
    // Every outcome series of the catalogue is there from the start, at 0 when nothing happened.
    expect(sum(before, 'postern_messages_dropped_total', { reason: 'policy' })).toBe(0);
    expect(s.some((x) => x.name === 'postern_messages_dropped_total' && x.labels.reason === 'policy')).toBe(true);
    // Computed by the admin role at scrape time: the spool is empty again, and the internal CA and
    // alice's certificate expire in the future (the CA after her).
    expect(sum(s, 'postern_queue_entries', { queue: 'outgoing' })).toBe(0);
    const expiry = s.filter((x) => x.name === 'postern_certificate_expiry_seconds');
    expect(expiry.map((x) => [x.labels.kind, x.labels.name === 'alice@example.com' || x.labels.name!.includes('Metrics Test CA')])).toEqual([
      ['user', true],
      ['ca', true],
    ]);
    expect(expiry.every((x) => x.value > 86_400)).toBe(true);
  });

  it("counts the dashboard's messages per hour by method from the metrics it gathers", async () => {
    // The tests above mailed two S/MIME copies and one clear after the admin role's first sample
    // (its start) and scraped since; this hour holds them.
    const { api } = await adminHttp(base, 'watcher', PASSWORD);
    const r = await api<{ since: string; methods: string[]; hours: { hour: string; counts: Record<string, number> }[] }>('GET', '/status/messages');
    expect(r.status).toBe(200);
    expect(r.json.methods).toEqual(['smime', 'pgp', 'pdf', 'webmail', 'clear']);
    const total = (m: string) => r.json.hours.reduce((n, h) => n + (h.counts[m] ?? 0), 0);
    expect({ smime: total('smime'), clear: total('clear'), pgp: total('pgp') }).toEqual({ smime: 2, clear: 1, pgp: 0 });
    expect(Date.parse(r.json.hours[0]!.hour)).toBeLessThanOrEqual(Date.now());
  });

  it('shows the recent log events of every role to a signed-in Auditor, filtered', async () => {
    expect((await fetch(`${base}/api/logs`)).status).toBe(401);
    const res = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'watcher', password: PASSWORD }) });
    expect(res.status).toBe(200);
    const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const logs = async (query: Record<string, string>) => {
      const r = await fetch(`${base}/api/logs?${new URLSearchParams(query)}`, { headers: { cookie } });
      return { status: r.status, json: (await r.json()) as { lines: Record<string, unknown>[]; incomplete?: string } };
    };

    const queued = gw.logs.find((l) => l.event === 'smtpd.queued' && l.sender === 'carol@example.org')!;
    const queueId = queued.queueId as string;
    const one = await logs({ queueId });
    expect(one.status).toBe(200);
    expect(one.json.incomplete).toBeUndefined();
    // The message's life across three processes, newest first.
    const events = one.json.lines.map((l) => `${l.role as string}:${l.event as string}`);
    expect(events).toContain('smtpd:smtpd.queued');
    expect(events).toContain('worker:worker.done');
    expect(events).toContain('relay:relay.delivered');
    expect(events.indexOf('relay:relay.delivered')).toBeLessThan(events.indexOf('smtpd:smtpd.queued'));
    const times = one.json.lines.map((l) => l.time as string);
    expect([...times].sort().reverse()).toEqual(times);

    const delivered = await logs({ event: 'relay.*', role: 'relay', limit: '2' });
    expect(delivered.json.lines).toHaveLength(2);
    expect(delivered.json.lines.every((l) => l.role === 'relay' && String(l.event).startsWith('relay.'))).toBe(true);
    const fromSupervisor = await logs({ role: 'supervisor', event: 'supervisor.ready' });
    expect(fromSupervisor.json.lines).toHaveLength(1);
    const warnings = await logs({ level: 'warn' });
    expect(warnings.json.lines.every((l) => ['warn', 'error', 'fatal'].includes(l.level as string))).toBe(true);
    const later = await logs({ since: new Date(Date.now() + 60_000).toISOString() });
    expect(later.json.lines).toEqual([]);

    expect((await logs({ limit: '0' })).status).toBe(400);
    expect((await logs({ event: '../etc' })).status).toBe(400);
  });

  it('counts a message it cannot decrypt and a role the supervisor had to start again', async () => {
    const before = await scrape();
    // S/MIME from openssl to a certificate whose key the gateway does not have.
    const ca = await opensslCa(dir, 'Outside');
    const erin = await opensslMailbox(dir, ca, 'erin@example.com');
    await writeFile(join(dir, 'plain.txt'), 'Content-Type: text/plain\r\n\r\nsecret\r\n');
    await run('openssl', ['cms', '-encrypt', '-aes256', '-in', join(dir, 'plain.txt'), '-out', join(dir, 'enc.eml'), '-from', 'carol@example.org', '-to', 'erin@example.com', '-subject', 'mx-enc-1', erin.cert]);
    await sendRaw(port, 'carol@example.org', ['erin@example.com'], await readFile(join(dir, 'enc.eml')));
    await waitDelivered('erin@example.com', 'mx-enc-1');

    // A worker's counts live and die with it: the one killed is the one that did not process
    // erin's message (its pid is in the message's worker.done line).
    const fromCarol = () => gw.logs.filter((l) => l.event === 'smtpd.queued' && l.sender === 'carol@example.org');
    await waitUntil(async () => fromCarol().length === 2, 5_000, "the log line of carol's second message");
    const queued = fromCarol()[1]!;
    const done = await gw.waitFor((l) => l.event === 'worker.done' && l.queueId === queued.queueId);
    const other = gw.logs.filter((l) => l.event === 'supervisor.spawn' && l.role === 'worker').map((l) => l.child as number).find((pid) => pid !== done.pid)!;
    process.kill(other, 'SIGKILL');
    await gw.waitFor((l) => l.event === 'supervisor.role_died' && l.role === 'worker');
    let after = '';
    await waitUntil(async () => sum((after = await scrape()), 'postern_metrics_processes') === 6 && sum(after, 'postern_messages_delivered_total') > sum(before, 'postern_messages_delivered_total'), 20_000, 'the worker back and the delivery counted');
    expect(await promtoolCheck(after)).toEqual({ code: 0, output: '' });
    const moved = (name: string, labels: Record<string, string> = {}) => sum(after, name, labels) - sum(before, name, labels);
    expect({
      failed: moved('postern_worker_crypto_failures_total', { operation: 'decrypt', method: 'smime', reason: 'failed' }),
      restarts: moved('postern_role_restarts_total', { role: 'worker' }),
      // The killed worker's earlier counts are carried (admin/metrics-carry.ts): the sum only grows.
      processed: moved('postern_worker_processed_total', { role: 'worker' }),
    }).toEqual({ failed: 1, restarts: 1, processed: 1 });
  });
});
