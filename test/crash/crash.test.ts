/**
 * Crash safety of the whole gateway: roles and the supervisor are killed with SIGKILL while mail
 * streams in; every message that got a 250 must be delivered. Duplicates are counted and reported
 * (the relay's per-recipient done marks that drive them to zero come with the relay issue).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirTokens, sendTokens, waitUntil } from '../helpers/send.js';

const N = 500;

async function spoolEmpty(dataDir: string): Promise<boolean> {
  for (const q of ['incoming', 'active', 'outgoing', 'tmp']) {
    if ((await readdir(join(dataDir, 'spool', q))).length) return false;
  }
  return true;
}

function report(name: string, accepted: string[], counts: Map<string, number>) {
  const lost = accepted.filter((t) => !counts.has(t));
  const dups = [...counts.values()].filter((c) => c > 1).reduce((a, c) => a + c - 1, 0);
  console.log(`[crash] ${name}: accepted ${accepted.length}, delivered ${counts.size}, lost ${lost.length}, duplicates ${dups}`);
  return { lost, dups };
}

describe('crash safety', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const gateways: Gateway[] = [];

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-crash-'));
  });
  afterAll(async () => {
    for (const g of gateways) g.killAll();
    await cleanup();
  });

  it('loses nothing when workers are SIGKILLed while processing', { timeout: 120_000 }, async () => {
    const data = join(dir, 'a');
    await import('node:fs/promises').then((fs) => fs.mkdir(data));
    const port = await freePort();
    const gw = await startGateway(await writeGatewayConfig(data, port));
    gateways.push(gw);

    const tokens = Array.from({ length: N }, (_, i) => `w${i}`);
    const sending = sendTokens(port, tokens);
    // Kill a worker every 150 ms while the stream runs: some kills land mid-message.
    let kills = 0;
    const killer = setInterval(() => {
      const pids = gw.rolePids('worker');
      const pid = pids[pids.length - 1 - (kills % 2)];
      try {
        if (pid) process.kill(pid, 'SIGKILL');
        kills++;
      } catch {
        /* already restarted */
      }
    }, 150);
    const sent = await sending;
    clearInterval(killer);
    expect(sent.failed).toEqual([]);
    expect(kills).toBeGreaterThan(0);

    await waitUntil(async () => (await maildirTokens(join(data, 'maildir'))).size >= sent.accepted.length, 60_000, 'all delivered');
    await waitUntil(() => spoolEmpty(data), 20_000, 'spool drained');
    const counts = await maildirTokens(join(data, 'maildir'));
    const { lost } = report(`workers killed ${kills}x`, sent.accepted, counts);
    expect(lost).toEqual([]);
    expect(gw.logs.some((l) => l.event === 'supervisor.role_died' && l.role === 'worker')).toBe(true);
    expect(await gw.stop()).toEqual({ code: 0, signal: null });
  });

  it('loses nothing when the whole gateway is SIGKILLed mid-stream and restarted', { timeout: 120_000 }, async () => {
    const data = join(dir, 'b');
    await import('node:fs/promises').then((fs) => fs.mkdir(data));
    const port = await freePort();
    const config = await writeGatewayConfig(data, port);
    let gw = await startGateway(config);
    gateways.push(gw);

    const tokens = Array.from({ length: N }, (_, i) => `s${i}`);
    const first = sendTokens(port, tokens.slice(0, N / 2));
    // Kill everything once a good part of the first half is in.
    await waitUntil(async () => gw.logs.filter((l) => l.event === 'smtpd.queued').length >= 100, 30_000, '100 queued');
    gw.killAll();
    const r1 = await first;
    await gw.exited;

    gw = await startGateway(config);
    gateways.push(gw);
    const r2 = await sendTokens(port, tokens.slice(N / 2));
    // Some messages of the first half were refused or cut off by the kill: the client would retry them.
    const r3 = await sendTokens(port, r1.failed.map((f) => f.token));
    const accepted = [...r1.accepted, ...r2.accepted, ...r3.accepted];
    expect(r2.failed).toEqual([]);
    expect(r3.failed).toEqual([]);
    expect(new Set(accepted).size).toBe(N);

    await waitUntil(async () => (await maildirTokens(join(data, 'maildir'))).size >= N, 60_000, 'all delivered');
    await waitUntil(() => spoolEmpty(data), 20_000, 'spool drained');
    const counts = await maildirTokens(join(data, 'maildir'));
    const { lost, dups } = report(`gateway killed mid-stream (${r1.failed.length} sends cut off)`, accepted, counts);
    expect(lost).toEqual([]);
    // A message cut off after its 250 was lost on the wire may be sent twice by the client; the
    // gateway itself may duplicate at most the deliveries in flight at the kill.
    expect(dups).toBeLessThanOrEqual(r1.failed.length + 50);
    expect(await gw.stop()).toEqual({ code: 0, signal: null });
  });
});
