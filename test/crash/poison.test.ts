/**
 * A poison message: every time a worker is processing one particular message, that worker is
 * SIGKILLed (as the kernel's OOM killer would take a worker that a message blows up), while other
 * mail keeps flowing. The count of crashes must survive the restarts: after three crashes with
 * the message alone in its worker it is held with the reason, `postern queue show` says so, no
 * other message is lost or held, and `queue release` starts its count again.
 */
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirTokens, sendRaw, sendTokens, tokenMessage, waitUntil } from '../helpers/send.js';

const POISON_SENDER = 'poison@example.com';
const POISON_RCPT = 'victim@slow.example';
const N = 200;
/** How long the key server takes to answer: the time the poison message spends in active/. */
const KEY_SERVER_DELAY_MS = 3000;

describe('poison message', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway | undefined;
  let keyServer: Server | undefined;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-poison-'));
  });
  afterAll(async () => {
    gw?.killAll();
    keyServer?.closeAllConnections();
    keyServer?.close();
    await cleanup();
  });

  it('is held after it crashed its worker three times; other mail flows; release lets it through', { timeout: 120_000 }, async () => {
    // Outbound mail to slow.example makes the worker ask this key server (HKP) for the
    // recipient's key; it takes its time, so processing that message takes seconds (other mail,
    // to example.com, asks nothing) and the killer below always finds it mid-way.
    const asks: string[] = [];
    let onAsk: () => void = () => undefined;
    keyServer = createServer((req, res) => {
      asks.push(req.url ?? '');
      if (decodeURIComponent(req.url ?? '').includes(POISON_RCPT)) onAsk();
      setTimeout(() => res.writeHead(404).end(), KEY_SERVER_DELAY_MS);
    });
    await new Promise<void>((r) => keyServer!.listen(0, '127.0.0.1', () => r()));
    const hkpPort = (keyServer.address() as AddressInfo).port;
    const port = await freePort();
    const config = await writeGatewayConfig(
      dir,
      port,
      `discovery:\n  hkp:\n    servers:\n      - { url: "http://127.0.0.1:${hkpPort}", patterns: ["*@slow.example"], timeout: 30s }\n`,
    );
    gw = await startGateway(config);
    const g = gw;
    const active = join(dir, 'spool', 'active');

    // The killer: each time the key server is asked about the poison's recipient, the worker
    // that asks is in the middle of processing it; SIGKILL the process whose claim on it sits in
    // active/ ("<id>.<pid>"), recognised by its envelope.
    let killing = true;
    const kills: number[] = [];
    const isPoison = (path: string): boolean => {
      try {
        const fd = openSync(path, 'r');
        try {
          const buf = Buffer.alloc(4096);
          return buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0)).includes(`"sender":"${POISON_SENDER}"`);
        } finally {
          closeSync(fd);
        }
      } catch {
        return false; // moved on meanwhile
      }
    };
    onAsk = () => {
      if (!killing) return;
      for (const file of readdirSync(active)) {
        const pid = Number(file.slice(file.lastIndexOf('.') + 1));
        if (!Number.isInteger(pid) || kills.includes(pid) || !isPoison(join(active, file))) continue;
        process.kill(pid, 'SIGKILL');
        kills.push(pid);
      }
    };

    try {
      const reply = await sendRaw(port, POISON_SENDER, [POISON_RCPT], tokenMessage('poison', POISON_SENDER, POISON_RCPT));
      const id = /queued as (\S+)/.exec(reply)?.[1];
      expect(id).toMatch(/^[0-9A-Z]{20}$/);
      const tokens = Array.from({ length: N }, (_, i) => `ok${i}`);
      const sent = await sendTokens(port, tokens);
      expect(sent.failed).toEqual([]);

      await waitUntil(async () => (await readdir(join(dir, 'spool', 'hold'))).includes(id!), 90_000, 'poison held');
      await waitUntil(async () => (await maildirTokens(join(dir, 'maildir'))).size >= N, 60_000, 'other mail delivered');
      killing = false;

      const counts = await maildirTokens(join(dir, 'maildir'));
      const lost = tokens.filter((t) => !counts.has(t));
      const dups = [...counts.values()].reduce((a, n) => a + n - 1, 0);
      console.log(`[poison] worker kills ${kills.length}; other mail: ${N} sent, lost ${lost.length}, duplicates ${dups}`);
      expect(kills.length).toBeGreaterThanOrEqual(3);
      // Only that message made the workers ask, once per attempt, each answered by a kill.
      expect(asks.every((a) => decodeURIComponent(a).includes(POISON_RCPT))).toBe(true);
      expect(asks).toHaveLength(kills.length);
      expect(lost).toEqual([]);
      expect(dups).toBe(0);
      expect(counts.has('poison')).toBe(false);
      // The worker's log line comes through a pipe and may trail the file's move into hold/.
      await g.waitFor((l) => l.event === 'worker.held_poison', 10_000);
      expect(g.logs.filter((l) => l.event === 'worker.held_poison')).toEqual([
        expect.objectContaining({ queueId: id, reason: 'processing crashed the worker 3 times' }),
      ]);
      // Nothing else was held.
      expect(await readdir(join(dir, 'spool', 'hold'))).toEqual([id]);

      const show = await runPostern(config, ['queue', 'show', id!]);
      expect(show).toMatchObject({ code: 0, stdout: expect.stringContaining('held: processing crashed the worker 3 times (held_poison)') });
      expect(show.stdout).toMatch(/worker crashes while processing it: [3-9]/);
      const json = JSON.parse((await runPostern(config, ['queue', 'show', id!, '--json'])).stdout);
      expect(json.entries).toEqual([expect.objectContaining({ name: id, queue: 'hold', hold_reason: 'processing crashed the worker 3 times', held_as: 'held_poison' })]);

      // Released (and no longer killed), it goes through.
      expect(await runPostern(config, ['queue', 'release', id!])).toMatchObject({ code: 0, stdout: expect.stringContaining(`released: hold/${id}`) });
      await waitUntil(async () => (await maildirTokens(join(dir, 'maildir'))).get('poison') === 1, 60_000, 'poison delivered after release');
    } finally {
      killing = false;
    }
    expect(await g.stop()).toEqual({ code: 0, signal: null });
  });
});
