/**
 * The worker → relay hand-off over data_dir/relay.sock: names arrive at the relay without the
 * supervisor; without a relay listening they go the supervisor's way, and once the relay is back
 * the socket is used again. The socket is root's alone (0600).
 */
import { stat } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handoffClient, handoffPath, listenForHandoff } from '../../../src/roles/handoff.js';
import { tempDir } from '../../helpers/config.js';

describe('worker → relay hand-off', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const stops: (() => Promise<void> | void)[] = [];
  beforeEach(async () => ({ dir, cleanup } = await tempDir('postern-handoff-')));
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
    await cleanup();
  });

  it('delivers announced names to the relay, in order, with the socket private to root', async () => {
    const offered: string[] = [];
    stops.push(await listenForHandoff(dir, (n) => offered.push(...n)));
    expect((await stat(handoffPath(dir))).mode & 0o777).toBe(0o600);
    const viaSupervisor: string[] = [];
    const c = handoffClient(dir, (n) => viaSupervisor.push(...n));
    stops.push(() => c.close());
    c.announce(['A1.0']); // not connected yet: this one goes the old way, and the connection starts
    await expect.poll(() => {
      c.announce(['B2.0', 'B2.1']);
      return offered.length;
    }).toBeGreaterThan(0);
    c.announce(['C3.0']);
    await expect.poll(() => offered.at(-1)).toBe('C3.0');
    expect(viaSupervisor[0]).toBe('A1.0');
    expect(new Set([...offered, ...viaSupervisor])).toEqual(new Set(['A1.0', 'B2.0', 'B2.1', 'C3.0']));
  });

  it('falls back to the supervisor while no relay listens, and uses the socket again once one does', async () => {
    const viaSupervisor: string[] = [];
    const c = handoffClient(dir, (n) => viaSupervisor.push(...n));
    stops.push(() => c.close());
    c.announce(['A1.0']);
    expect(viaSupervisor).toEqual(['A1.0']);
    const offered: string[] = [];
    stops.push(await listenForHandoff(dir, (n) => offered.push(...n)));
    let i = 0;
    await expect.poll(() => {
      c.announce([`N${i++}.0`]);
      return offered.length;
    }, { timeout: 5000 }).toBeGreaterThan(0);
    const sent = i + 1;
    await expect.poll(() => viaSupervisor.length + offered.length).toBe(sent);
  });

  it('a worker that started before the relay listened connects by itself, without waiting for mail to announce', async () => {
    const c = handoffClient(dir, () => undefined);
    stops.push(() => c.close());
    let connections = 0;
    stops.push(await listenForHandoff(dir, () => undefined, () => connections++));
    // No announce() at all: the connection comes from the client's own retry.
    await expect.poll(() => connections, { timeout: 5000 }).toBe(1);
  });

  it('ignores what cannot be a spool name, and replaces a socket file a dead relay left', async () => {
    const first = await listenForHandoff(dir, () => undefined);
    await first();
    const offered: string[] = [];
    // listen() after close() leaves no file on Linux; a crash does — either way the relay starts.
    stops.push(await listenForHandoff(dir, (n) => offered.push(...n)));
    const net = await import('node:net');
    const s = net.connect(handoffPath(dir));
    await new Promise((r) => s.once('connect', r));
    s.write('../../etc/passwd\nGOOD.0\n\nbad name\n');
    await expect.poll(() => offered).toEqual(['GOOD.0']);
    s.destroy();
  });
});
