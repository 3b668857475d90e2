/**
 * `postern queue flush` (the real CLI) run again and again while the relay delivers 300 messages
 * to a slow next hop: every message reaches the next hop exactly once. The next hop greylists
 * each message's first attempt, so all of them pass through deferred/ and are retried (by their
 * timer or by a flush) while the admin keeps moving deferred/ back to outgoing/; it then holds
 * its 250 after DATA, so flushes land in the middle of deliveries.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { sendTokens, waitUntil } from '../helpers/send.js';
import { startSink, type SmtpSink } from '../helpers/sink-smtp.js';

const N = 300;

describe('queue flush during deliveries', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway | undefined;
  let sink: SmtpSink | undefined;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-queue-flush-'));
  });
  afterAll(async () => {
    await gw?.stop();
    await sink?.close();
    await cleanup();
  });

  it('delivers each of 300 messages once while `queue flush` runs over and over', { timeout: 90_000 }, async () => {
    /** Attempts and acceptances per Message-ID, as the next hop saw them. */
    const seen = new Map<string, number>();
    const accepted = new Map<string, number>();
    sink = await startSink({
      dataDelayMs: 300,
      dataReply: (t) => {
        const id = /^Message-ID: (\S+)/im.exec(t.data.toString('latin1'))?.[1] ?? '?';
        seen.set(id, (seen.get(id) ?? 0) + 1);
        if (seen.get(id) === 1) return { code: 451, message: '4.7.1 greylisted, come back later' };
        accepted.set(id, (accepted.get(id) ?? 0) + 1);
        return undefined;
      },
    });
    const port = await freePort();
    const config = await writeGatewayConfig(dir, port, '', `smtp://127.0.0.1:${sink.port}\n  retry: [1s]`);
    gw = await startGateway(config);

    const tokens = Array.from({ length: N }, (_, i) => `f${i}`);
    const sent = await sendTokens(port, tokens, { to: ['far@example.net'] });
    expect(sent.failed).toEqual([]);

    // Two admins flushing in a loop until the next hop has accepted every message.
    let flushes = 0;
    const failures: unknown[] = [];
    const flusher = async () => {
      while (accepted.size < N && flushes < 200) {
        const r = await runPostern(config, ['queue', 'flush']);
        if (r.code !== 0 || r.stderr) failures.push(r);
        flushes++;
      }
    };
    const t0 = Date.now();
    await Promise.all([flusher(), flusher()]);
    const flushMs = Date.now() - t0;
    expect(failures).toEqual([]);
    await waitUntil(async () => {
      for (const q of ['incoming', 'active', 'outgoing', 'delivering', 'deferred', 'hold', 'corrupt']) {
        if ((await readdir(join(dir, 'spool', q)).catch(() => [])).length) return false;
      }
      return true;
    }, 30_000, 'spool drained');

    const dups = [...accepted.values()].reduce((a, n) => a + n - 1, 0);
    const missing = tokens.filter((t) => !accepted.has(`<${t}@test.example>`));
    console.log(`[flush] ${N} messages, ${flushes} flushes in ${flushMs} ms, ${[...seen.values()].reduce((a, n) => a + n, 0)} transactions, duplicates ${dups}, missing ${missing.length}`);
    expect(flushes).toBeGreaterThan(3);
    expect(missing).toEqual([]);
    expect(dups).toBe(0);
    expect(gw.logs.filter((l) => l.level === 'error' || (typeof l.level === 'number' && l.level >= 50))).toEqual([]);
  });
});
