/**
 * A message whose processing fails every time (a bug it triggers, a store that throws) must not
 * become a loop that takes a core from all other mail, and must not be lost: tried again after a
 * pause a few times, then held with the reason, where `postern queue` shows it. Real spool on disk.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log/index.js';
import { Spool } from '../../../src/spool/index.js';
import { startWorker, type PolicyContext } from '../../../src/worker/index.js';
import { compilePolicy, emptyDirectory } from '../../../src/policy/index.js';
import { tempDir, testConfig } from '../../helpers/config.js';
import { waitUntil } from '../../helpers/send.js';

describe('worker: repeated failures', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir('postern-worker-fail-')));
  afterEach(async () => cleanup());

  it('tries a failing message again after a pause, then holds it with the reason; other mail flows', async () => {
    const config = testConfig(dir);
    const spool = await Spool.open(dir);
    const compiled = compilePolicy('rules: []\n', `${dir}/policy.yaml`);
    if (!compiled.ok) throw new Error('policy');
    let calls = 0;
    // A store that fails for one address only, as a bug triggered by one message would.
    const store = {
      certificatesFor: async (a: string) => {
        if (a === 'poison@example.net') {
          calls++;
          throw new Error('simulated bug in the key look-up');
        }
        return [];
      },
      pgpKeysFor: async () => [],
    };
    const ctx = { config, policy: compiled.policy, store, directory: emptyDirectory } as unknown as PolicyContext;
    const delivered: string[] = [];
    const worker = await startWorker({ config, spool, log: silentLogger(), policy: () => ctx, failureRetryMs: 100, onOutgoing: (names) => delivered.push(...names) });
    const put = async (to: string) => {
      const w = await spool.createIncoming({ sender: 'a@example.com', recipients: [{ address: to }], client: { address: '127.0.0.1', port: 1, helo: 'x', hostname: 'x', protocol: 'ESMTP', trusted: true }, receivedAt: new Date().toISOString() });
      w.write(Buffer.from(`From: a@example.com\r\nTo: ${to}\r\nSubject: s\r\n\r\nbody\r\n`));
      const id = await w.commit();
      worker.offer([id]);
      return id;
    };
    const poison = await put('poison@example.net');
    const fine = await put('fine@example.net');
    await waitUntil(async () => (await spool.list('hold')).length === 1, 10_000, 'held after the failures');
    // Three attempts with pauses (100, 200 ms), not thousands in a loop.
    expect(calls).toBe(3);
    // Held in the pre-worker form (under an id derived from the original), so release re-runs it.
    const [heldName] = await spool.list('hold');
    const held = await spool.read('hold', heldName!);
    expect(held.meta.notes?.heldFrom).toBe(poison);
    expect(held.meta.notes?.heldAs).toBe('held_after_errors');
    expect(held.meta.envelope.recipients.map((r) => r.address)).toEqual(['poison@example.net']);
    expect(String(held.meta.notes?.holdReason)).toMatch(/processing failed 3 times: simulated bug in the key look-up/);
    expect(delivered.some((n) => n.startsWith(fine))).toBe(true);
    await worker.close(1000);
  });
});
