/**
 * The supervisor's watchdog (supervisor/watchdog.ts): a worker whose event loop stops answering —
 * a synchronous loop, which no timer inside it can end — is killed after worker.transform_timeout
 * and started again, as after a crash (its claims go back to incoming/ with a crash mark: the
 * spool's own tests cover that). The roles here are small scripts that speak the supervisor's IPC
 * protocol: the first worker says it is alive once and then spins for ever; the one started after
 * it keeps saying so. A healthy worker is never killed.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log/index.js';
import { Spool } from '../../../src/spool/index.js';
import { heartbeatInterval, Supervisor } from '../../../src/supervisor/index.js';
import { silentFor } from '../../../src/supervisor/watchdog.js';
import { tempDir, testConfig } from '../../helpers/config.js';
import { waitUntil } from '../../helpers/send.js';

const IDLE = `process.on('SIGTERM', () => process.exit(0)); process.send({ type: 'ready', role: process.argv[2] }); setInterval(() => {}, 1000);`;
const WORKER = `const fs = require('node:fs');
process.on('SIGTERM', () => process.exit(0));
process.send({ type: 'ready', role: 'worker' });
process.send({ type: 'alive' });
if (!fs.existsSync(process.argv[2])) {
  fs.writeFileSync(process.argv[2], String(process.pid));
  setTimeout(() => { for (;;) {} }, 50); // a hostile message's synchronous loop
} else setInterval(() => process.send({ type: 'alive' }), 100);`;

describe('supervisor watchdog', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir('postern-watchdog-')));
  afterEach(async () => cleanup());

  it('kills a worker stuck in a synchronous loop for worker.transform_timeout and starts another; the healthy one stays', async () => {
    await writeFile(join(dir, 'idle.cjs'), IDLE);
    await writeFile(join(dir, 'worker.cjs'), WORKER);
    const marker = join(dir, 'first-worker.pid');
    const config = testConfig(dir, { workers: 1, worker: { transform_timeout: 1000 } });
    const lines: { event?: string; role?: string; child?: number; silentMs?: number; timeoutMs?: number }[] = [];
    const log = createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } });
    const sup = new Supervisor({
      config,
      reloadConfig: async () => config,
      spool: await Spool.open(dir),
      log,
      roleCommand: (role) => (role === 'worker' ? { script: join(dir, 'worker.cjs'), args: [marker], env: {} } : { script: join(dir, 'idle.cjs'), args: [role], env: {} }),
    });
    await sup.start();
    try {
      const spawned = () => lines.filter((l) => l.event === 'supervisor.spawn' && l.role === 'worker').map((l) => l.child!);
      await waitUntil(async () => spawned().length === 2, 20_000, 'the stuck worker killed and another started');
      const killed = lines.find((l) => l.event === 'supervisor.worker_unresponsive')!;
      expect(killed).toMatchObject({ timeoutMs: 1000 });
      expect(killed.silentMs).toBeGreaterThan(1000);
      const [first, second] = spawned();
      expect(killed.child).toBe(first);
      expect(lines.some((l) => l.event === 'supervisor.role_died' && l.role === 'worker')).toBe(true);
      // The first is gone, the second runs and keeps saying so: no second kill.
      expect(() => process.kill(first!, 0)).toThrow();
      await new Promise((r) => setTimeout(r, 2500));
      expect(() => process.kill(second!, 0)).not.toThrow();
      expect(lines.filter((l) => l.event === 'supervisor.worker_unresponsive')).toHaveLength(1);
    } finally {
      await sup.stop();
    }
  }, 30_000);

  it('watches a process only after its first heartbeat; the beat is at most a second apart', () => {
    expect(silentFor([{ lastBeat: 0 }, { lastBeat: 1000 }, { lastBeat: 5000 }], 2000, 6000)).toEqual([{ lastBeat: 1000 }]);
    expect(heartbeatInterval(60_000)).toBe(1000);
    expect(heartbeatInterval(1000)).toBe(250);
  });
});
