/**
 * The relay killed with SIGKILL at random moments while it delivers 1,000 messages to 3
 * recipients each over SMTP: every recipient must get every message (its status records in the
 * entry say who has it), and the duplicates — deliveries the next hop took just before a kill,
 * before the relay could record them — are counted and reported. At most the deliveries in
 * flight at each kill may be repeated.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { sendTokens, waitUntil } from '../helpers/send.js';
import { startSink, type SmtpSink } from '../helpers/sink-smtp.js';

const N = 1000;
const RCPTS = ['r1@example.net', 'r2@example.net', 'r3@example.net'];
/** The relay's concurrency in this test's config: the most deliveries one kill can cut off. */
const CONCURRENCY = 10;

async function spoolEmpty(dataDir: string): Promise<boolean> {
  for (const q of ['incoming', 'active', 'outgoing', 'deferred', 'hold', 'corrupt', 'tmp']) {
    if ((await readdir(join(dataDir, 'spool', q))).length) return false;
  }
  return true;
}

/** Deliveries per "token recipient" at the sink. */
function counts(sink: SmtpSink): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of sink.transactions) {
    const token = /^X-Test-Token: (\S+)/m.exec(t.data.toString('latin1'))?.[1];
    if (!token) continue;
    for (const r of t.rcptTo) m.set(`${token} ${r}`, (m.get(`${token} ${r}`) ?? 0) + 1);
  }
  return m;
}

describe('relay crash safety', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway | undefined;
  let sink: SmtpSink | undefined;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-relay-crash-'));
  });
  afterAll(async () => {
    gw?.killAll();
    await sink?.close();
    await cleanup();
  });

  it('delivers every message to every recipient when the relay is SIGKILLed at random moments', { timeout: 180_000 }, async () => {
    // A next hop that takes a few milliseconds per message, so kills land mid-transaction.
    sink = await startSink({ dataDelayMs: 5 });
    const port = await freePort();
    const config = await writeGatewayConfig(dir, port, '', `smtp://127.0.0.1:${sink.port}\n  concurrency: ${CONCURRENCY}`);
    gw = await startGateway(config);
    const g = gw;

    const tokens = Array.from({ length: N }, (_, i) => `m${i}`);
    let sending = true;
    const sent = sendTokens(port, tokens, { to: RCPTS }).finally(() => (sending = false));

    // Kill the relay at a random moment of each life (after 2 s, so the supervisor restarts it
    // at once rather than backing off as from a crash loop), until the stream is in and at least
    // three times.
    let kills = 0;
    while (sending || kills < 3) {
      const pid = g.rolePids('relay').at(-1);
      await new Promise((r) => setTimeout(r, 2100 + Math.random() * 900));
      if (pid === undefined || pid !== g.rolePids('relay').at(-1)) continue;
      try {
        process.kill(pid, 'SIGKILL');
        kills++;
      } catch {
        /* gone already */
      }
      await g.waitFor((l) => l.event === 'supervisor.spawn' && l.role === 'relay' && l.child !== pid, 20_000);
    }
    const result = await sent;
    expect(result.failed).toEqual([]);
    expect(kills).toBeGreaterThanOrEqual(3);

    const expected = result.accepted.length * RCPTS.length;
    await waitUntil(async () => counts(sink!).size >= expected, 90_000, `all ${expected} deliveries`);
    await waitUntil(() => spoolEmpty(dir), 30_000, 'spool drained');
    const c = counts(sink);
    const missing = result.accepted.flatMap((t) => RCPTS.map((r) => `${t} ${r}`)).filter((k) => !c.has(k));
    const dups = [...c.values()].reduce((a, n) => a + n - 1, 0);
    const inFlightBound = kills * CONCURRENCY * RCPTS.length;
    console.log(`[crash] relay killed ${kills}x: ${result.accepted.length} messages x ${RCPTS.length} recipients, missing ${missing.length}, duplicates ${dups} (bound: ${inFlightBound})`);
    expect(missing).toEqual([]);
    expect(dups).toBeLessThanOrEqual(inFlightBound);
    expect(await g.stop()).toEqual({ code: 0, signal: null });
  });
});
