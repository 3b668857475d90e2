/**
 * worker.transform_timeout: a message whose processing stalls (here a key look-up that never
 * answers, as a directory that accepts and then says nothing) is a temporary failure — deferred,
 * tried again later, never passed on unprocessed — while the worker's slot goes on to serve other
 * mail; after three such attempts it is held with the reason. A tiny timeout, a real spool on disk.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log/index.js';
import { Spool } from '../../../src/spool/index.js';
import { startWorker, type PolicyContext } from '../../../src/worker/index.js';
import { compilePolicy, emptyDirectory } from '../../../src/policy/index.js';
import { tempDir, testConfig } from '../../helpers/config.js';
import { waitUntil } from '../../helpers/send.js';

describe('worker: transform time-out', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir('postern-worker-timeout-')));
  afterEach(async () => cleanup());

  it('defers a stalled message (its slot serves the others), tries it again, then holds it with the reason', async () => {
    const config = testConfig(dir, { worker: { transform_timeout: 1500 } });
    const spool = await Spool.open(dir);
    const compiled = compilePolicy('rules: []\n', `${dir}/policy.yaml`);
    if (!compiled.ok) throw new Error('policy');
    let stalls = 0;
    const store = {
      certificatesFor: (a: string) => {
        if (a !== 'stall@example.net') return Promise.resolve([]);
        stalls++;
        return new Promise<never>(() => undefined); // never answers
      },
      pgpKeysFor: async () => [],
    };
    const ctx = { config, policy: compiled.policy, store, directory: emptyDirectory } as unknown as PolicyContext;
    const lines: { event?: string; queueId?: string; attempt?: number; retryInMs?: number; reason?: string }[] = [];
    const log = createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } });
    const delivered: string[] = [];
    // One slot: if the stalled message kept it, nothing else could be processed. The budget is
    // well above what the other message takes even on a loaded machine (it must not time out too).
    const worker = await startWorker({ config, spool, log, concurrency: 1, policy: () => ctx, temporaryRetryMs: 100, onOutgoing: (names) => delivered.push(...names) });
    const put = async (to: string) => {
      const w = await spool.createIncoming({ sender: 'a@example.com', recipients: [{ address: to }], client: { address: '127.0.0.1', port: 1, helo: 'x', hostname: 'x', protocol: 'ESMTP', trusted: true }, receivedAt: new Date().toISOString() });
      w.write(Buffer.from(`From: a@example.com\r\nTo: ${to}\r\nSubject: s\r\n\r\nbody\r\n`));
      const id = await w.commit();
      worker.offer([id]);
      return id;
    };
    const stalled = await put('stall@example.net');
    const fine = await put('fine@example.net');
    await waitUntil(async () => delivered.some((n) => n.startsWith(fine)), 10_000, 'the other message processed while the first one stalls');
    const first = lines.find((l) => l.event === 'worker.transform_timeout' && l.queueId === stalled);
    expect(first).toMatchObject({ attempt: 1, retryInMs: 100 });
    // Deferred, not passed on: nothing of it in outgoing/.
    expect((await spool.list('outgoing')).some((n) => n.startsWith(stalled))).toBe(false);

    await waitUntil(async () => (await spool.list('hold')).length === 1, 20_000, 'held after three time-outs');
    expect(stalls).toBe(3);
    expect(lines.filter((l) => l.event === 'worker.transform_timeout' && l.queueId === stalled).map((l) => l.attempt)).toEqual([1, 2, 3]);
    const [heldName] = await spool.list('hold');
    const held = await spool.read('hold', heldName!);
    expect(held.meta.notes?.heldFrom).toBe(stalled);
    expect(String(held.meta.notes?.holdReason)).toBe('processing took longer than worker.transform_timeout (1.5 s) 3 times');
    expect(lines.some((l) => l.event === 'worker.held_after_timeouts' && l.queueId === stalled)).toBe(true);
    await worker.close(1000);
  });
});
