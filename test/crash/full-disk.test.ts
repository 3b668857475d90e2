/**
 * Issue 14, fault 3: "a full disk loses accepted mail". The spool (data_dir) is on a 20 MB tmpfs
 * and the next hop is down while 300 messages of 50–300 KB (random sizes, unique bodies) arrive
 * over four parallel SMTP connections. Every message answered 250 must reach the next hop intact
 * (SHA-256 of its body) once the next hop is back, none may end in corrupt/, and every other
 * message must have been refused with 452 4.3.1. Three runs: the free-space threshold off (only
 * the checked writes stand between a full disk and a short file), and on at two levels.
 *
 * mount(8) needs root (the suite runs as root here and in CI); without it the file is skipped.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSmtpd } from '../../src/smtpd/index.js';
import { Spool } from '../../src/spool/index.js';
import { tempDir, testConfig } from '../helpers/config.js';
import { freePort, startGateway, type Gateway } from '../helpers/gateway.js';
import { session, transaction, waitUntil } from '../helpers/send.js';
import { startSink, type SmtpSink } from '../helpers/sink-smtp.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';
import { captureLogger } from '../helpers/smtp-harness.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const MB = 1024 * 1024;
const MESSAGES = 300;
const CLIENTS = 4;
const REFUSED = /^452 4\.3\.1 /;

interface Sent {
  token: string;
  sha: string;
  raw: Buffer;
}

/** A message of about `size` bytes with a body no other message shares. */
function message(token: string, size: number): Sent {
  const body = (randomBytes(Math.floor((size * 3) / 4)).toString('base64').match(/.{1,76}/g) ?? []).join('\r\n') + '\r\n';
  const head = `From: alice@example.org\r\nTo: bob@example.com\r\nSubject: full disk ${token}\r\nMessage-ID: <${token}@test.example>\r\nX-Test-Token: ${token}\r\n\r\n`;
  return { token, sha: createHash('sha256').update(body).digest('hex'), raw: Buffer.from(head + body, 'latin1') };
}

const digests = new WeakMap<Buffer, { token: string; sha: string } | null>();

/**
 * Token and body digest of a message as the next hop got it (our Received: header in front),
 * worked out once per message: the test polls a hundred deliveries of up to 300 KB ten times a
 * second, on the cores the gateway needs.
 */
function received(data: Buffer): { token: string; sha: string } | null {
  let got = digests.get(data);
  if (got === undefined) digests.set(data, (got = digest(data)));
  return got;
}

function digest(data: Buffer): { token: string; sha: string } | null {
  const sep = data.indexOf('\r\n\r\n');
  const token = /^X-Test-Token: (\S+)/m.exec(data.toString('latin1', 0, sep))?.[1];
  if (sep < 0 || !token) return null;
  return { token, sha: createHash('sha256').update(data.subarray(sep + 4)).digest('hex') };
}

/** Send every message over CLIENTS connections; the reply to each is 250 (accepted) or the error line. */
async function sendAll(port: number, messages: Sent[]): Promise<Map<string, string>> {
  const replies = new Map<string, string>();
  const queue = [...messages];
  const client = async () => {
    let c: SmtpTestClient | null = null;
    for (let m = queue.shift(); m; m = queue.shift()) {
      try {
        c ??= await session(port);
        replies.set(m.token, await transaction(c, 'alice@example.org', ['bob@example.com'], m.raw));
      } catch (err) {
        replies.set(m.token, (err as Error).message);
        c?.destroy();
        c = null;
      }
    }
    c?.destroy();
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  return replies;
}

async function queueFiles(dataDir: string, q: string): Promise<string[]> {
  return readdir(join(dataDir, 'spool', q)).catch(() => []);
}

describe.skipIf(!isRoot)('a full spool file system (mounts a 20 MB tmpfs: needs root)', () => {
  let mnt: string;
  let confDir: { dir: string; cleanup: () => Promise<void> };
  const gateways: Gateway[] = [];
  const sinks: SmtpSink[] = [];
  const totals = { dataRefusals: 0, mailRefusals: 0, workerNoSpace: 0, relayNoSpace: 0 };

  beforeAll(async () => {
    mnt = await mkdtemp(join(tmpdir(), 'postern-fulldisk-'));
    await run('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0700', 'tmpfs', mnt]);
    confDir = await tempDir('postern-fulldisk-conf-');
  });

  afterAll(async () => {
    for (const g of gateways) g.killAll();
    await Promise.all(gateways.map((g) => g.exited));
    for (const s of sinks) await s.close();
    await run('umount', [mnt]).catch(() => run('umount', ['-l', mnt]));
    await rm(mnt, { recursive: true, force: true });
    await confDir.cleanup();
  });

  it('smtpd checks free space and SIZE= at MAIL FROM, and a message that does not fit gets 452 and leaves nothing', { timeout: 30_000 }, async () => {
    const dataDir = join(mnt, 'mailfrom');
    const spool = await Spool.open(dataDir);
    const logs: Record<string, unknown>[] = [];
    // The tmpfs is empty: about 20 MB free. 8 MB threshold: 12 MB of room for one message.
    const config = testConfig(dataDir, { smtp: { max_message_size: 64 * MB, min_free_space: 8 * MB } });
    const smtpd = await startSmtpd({ config, spool, log: captureLogger(logs) });
    const port = smtpd.addresses[0]!.port;
    try {
      const c = await SmtpTestClient.connect(port);
      await c.cmd('EHLO client.test');
      expect((await c.cmd(`MAIL FROM:<a@example.org> SIZE=${13 * MB}`)).raw).toBe('452 4.3.1 insufficient system storage');
      expect((await c.cmd(`MAIL FROM:<a@example.org> SIZE=${MB}`)).code).toBe(250);
      await c.cmd('RSET');

      // No SIZE= and the threshold allows it: a 21 MB message is taken in and cannot be stored.
      smtpd.reload(testConfig(dataDir, { smtp: { max_message_size: 64 * MB, min_free_space: 0 } }));
      const d = await SmtpTestClient.connect(port);
      await d.cmd('EHLO client.test');
      expect((await d.cmd('MAIL FROM:<a@example.org>')).code).toBe(250);
      expect((await d.cmd('RCPT TO:<bob@example.com>')).code).toBe(250);
      expect((await d.cmd('DATA')).code).toBe(354);
      const line = 'x'.repeat(998) + '\r\n';
      for (let i = 0; i < 21 * 1024; i++) d.write(line);
      expect((await d.cmd('.')).raw).toBe('452 4.3.1 insufficient system storage');
      expect(await queueFiles(dataDir, 'tmp')).toEqual([]);
      expect(await queueFiles(dataDir, 'incoming')).toEqual([]);
      // The same session goes on: a small message fits.
      await d.cmd('MAIL FROM:<a@example.org>');
      await d.cmd('RCPT TO:<bob@example.com>');
      await d.cmd('DATA');
      expect((await d.cmd('Subject: small\r\n\r\nfits\r\n.')).code).toBe(250);
      expect(await queueFiles(dataDir, 'incoming')).toHaveLength(1);

      // Below the threshold nothing is taken, whatever the size.
      smtpd.reload(testConfig(dataDir, { smtp: { max_message_size: 64 * MB, min_free_space: 30 * MB } }));
      const e = await SmtpTestClient.connect(port);
      await e.cmd('EHLO client.test');
      expect((await e.cmd('MAIL FROM:<a@example.org>')).raw).toBe('452 4.3.1 insufficient system storage');
      for (const x of [c, d, e]) x.destroy();
      expect(logs.filter((l) => l.event === 'smtpd.reject' && l.reason === 'storage')).toHaveLength(2);
    } finally {
      await smtpd.close(1000);
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  // 0: only the checked writes; 2MB: the threshold with less headroom than four messages in DATA
  // at once plus the worker's copies; 1MB: in between.
  const runs = [
    { n: 1, minFree: '0' },
    { n: 2, minFree: '2MB' },
    { n: 3, minFree: '1MB' },
  ];
  for (const r of runs) {
    it(`run ${r.n} (min_free_space ${r.minFree}): every 250 delivered intact, the rest 452 4.3.1, nothing lost`, { timeout: 60_000 }, async () => {
      const dataDir = join(mnt, `run${r.n}`);
      await mkdir(dataDir);
      const [port, hopPort] = [await freePort(), await freePort()];
      const file = join(confDir.dir, `run${r.n}.yaml`);
      await writeFile(join(confDir.dir, 'policy.yaml'), 'rules: []\n');
      await writeFile(
        file,
        `hostname: gw.test.example
data_dir: ${dataDir}
internal_domains: [example.com]
trusted_networks: [127.0.0.0/8]
workers: 2
log: { level: info }
smtp:
  listen: ["127.0.0.1:${port}"]
  max_message_size: 1MB
  min_free_space: ${r.minFree}
relay:
  # Nothing listens there until the sink starts below: the next hop is down.
  routes: { "*": "smtp://127.0.0.1:${hopPort}" }
  retry: [2s]
policy: policy.yaml
`,
      );
      const gw = await startGateway(file);
      gateways.push(gw);
      try {
        await deliverAfterFullDisk(r, dataDir, port, hopPort, gw);
        expect(await gw.stop()).toEqual({ code: 0, signal: null });
      } finally {
        gw.killAll();
        // After the gateway: the sink's close waits for the relay's pooled connection to end.
        for (const s of sinks.splice(0)) await s.close();
        // Each run starts on an empty file system, even after a failed one.
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  }

  async function deliverAfterFullDisk(r: { n: number; minFree: string }, dataDir: string, port: number, hopPort: number, gw: Gateway): Promise<void> {
    const messages = Array.from({ length: MESSAGES }, (_, i) => message(`fd${r.n}-${i}`, randomInt(50 * 1024, 300 * 1024 + 1)));
    const replies = await sendAll(port, messages);
    const accepted = messages.filter((m) => /^250 /.test(replies.get(m.token) ?? ''));
    const refused = messages.filter((m) => !accepted.includes(m));
    // The disk did fill up (else this run proved nothing), and every refusal says why.
    expect(accepted.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.map((m) => replies.get(m.token)).filter((l) => !REFUSED.test(l ?? ''))).toEqual([]);
    expect(await queueFiles(dataDir, 'corrupt')).toEqual([]);

    // The next hop comes back; the relay's next retry delivers and frees the space the
    // worker's parked messages are waiting for.
    const sink = await startSink({ port: hopPort });
    sinks.push(sink);
    const want = new Set(accepted.map((m) => m.token));
    const seen = () => new Set(sink.transactions.map((t) => received(t.data)?.token));
    await waitUntil(async () => [...want].every((t) => seen().has(t)), 45_000, `${want.size} accepted messages delivered`).catch((err: Error) => {
      const missing = [...want].filter((t) => !seen().has(t));
      throw new Error(`${err.message}; missing ${missing.length}: ${missing.slice(0, 5).join(' ')}\n${gw.tail(10)}`);
    });
    const drained = async () => {
      for (const q of ['incoming', 'active', 'outgoing', 'deferred', 'delivering', 'hold', 'tmp']) if ((await queueFiles(dataDir, q)).length) return false;
      return true;
    };
    await waitUntil(drained, 15_000, 'spool drained');

    const got = sink.transactions.map((t) => received(t.data));
    const sha = new Map(messages.map((m) => [m.token, m.sha]));
    const counts = new Map<string, number>();
    for (const g of got) if (g) counts.set(g.token, (counts.get(g.token) ?? 0) + 1);
    const lost = accepted.filter((m) => !counts.has(m.token)).map((m) => m.token);
    const damaged = got.filter((g) => !g || g.sha !== sha.get(g.token));
    const unasked = [...counts.keys()].filter((t) => !want.has(t));
    const duplicates = [...counts.values()].reduce((a, c) => a + c - 1, 0);

    const events = (pred: (l: Record<string, unknown>) => boolean) => gw.logs.filter(pred).length;
    const dataRefusals = events((l) => l.event === 'smtpd.reject' && l.reason === 'spool' && REFUSED.test(String(l.reply)));
    const mailRefusals = events((l) => l.event === 'smtpd.reject' && l.reason === 'storage');
    const workerNoSpace = events((l) => l.event === 'worker.no_space');
    const relayNoSpace = events((l) => l.event === 'relay.no_space');
    Object.assign(totals, {
      dataRefusals: totals.dataRefusals + dataRefusals,
      mailRefusals: totals.mailRefusals + mailRefusals,
      workerNoSpace: totals.workerNoSpace + workerNoSpace,
      relayNoSpace: totals.relayNoSpace + relayNoSpace,
    });
    console.log(
      `[full-disk] run ${r.n} min_free_space ${r.minFree}: sent ${MESSAGES}, accepted ${accepted.length}, refused ${refused.length} ` +
        `(at MAIL ${mailRefusals}, after DATA ${dataRefusals}), delivered ${counts.size}, lost ${lost.length}, damaged ${damaged.length}, ` +
        `duplicates ${duplicates}; worker.no_space ${workerNoSpace}, relay.no_space ${relayNoSpace}`,
    );
    expect(lost).toEqual([]);
    expect(damaged).toEqual([]);
    expect(unasked).toEqual([]); // a refused message was not queued after all
    expect(duplicates).toBe(0);
    expect(mailRefusals + dataRefusals).toBe(refused.length);
    expect(await queueFiles(dataDir, 'corrupt')).toEqual([]);
  }

  it('the runs went through both defences: refusals at MAIL FROM and after DATA', () => {
    expect(totals.dataRefusals).toBeGreaterThan(0);
    expect(totals.mailRefusals).toBeGreaterThan(0);
  });
});
