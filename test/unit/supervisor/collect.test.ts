/**
 * The supervisor's gathering (supervisor/collect.ts) over real IPC channels of forked processes:
 * each answer is matched to the process that gave it; one that answers with an error, one that
 * never answers and one that dies meanwhile leave the others' answers intact, and the question
 * ends when everyone answered or at the time-out.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Collector } from '../../../src/supervisor/collect.js';
import type { RoleMessage, RoleName } from '../../../src/supervisor/index.js';
import { tempDir } from '../../helpers/config.js';

const CHILD = `
const mode = process.argv[2];
process.on('message', (m) => {
  if (m?.type !== 'collect') return;
  if (mode === 'answer') process.send({ type: 'collected', id: m.id, data: { pid: process.pid, what: m.what, query: m.query ?? null } });
  if (mode === 'error') process.send({ type: 'collected', id: m.id, error: 'cannot' });
  if (mode === 'die') process.exit(3);
});
process.send({ type: 'ready' });
`;

describe('gathering from the role processes', () => {
  let script: string;
  let cleanup: () => Promise<void>;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    const t = await tempDir('postern-collect-');
    cleanup = t.cleanup;
    script = join(t.dir, 'child.mjs');
    await writeFile(script, CHILD);
    return () => cleanup();
  });
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });

  async function start(collector: Collector, role: RoleName, index: number, mode: string) {
    const child = fork(script, [mode], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], serialization: 'advanced' });
    children.push(child);
    child.on('message', (m: RoleMessage) => collector.answer(child, m));
    child.on('exit', () => collector.drop(null, child));
    await new Promise<void>((r) => child.once('message', () => r()));
    return { role, index, child };
  }

  it('matches every answer to its process and ends when all answered', async () => {
    const c = new Collector();
    const targets = [await start(c, 'worker', 0, 'answer'), await start(c, 'worker', 1, 'answer'), await start(c, 'relay', 0, 'answer')];
    // A time-out far beyond the test's own: only the answers can end the question in time.
    const got = await c.collect(targets, 'logs', { event: 'relay.*', limit: 5 }, 60_000);
    expect(got.every((g) => g.pid === (g.data as { pid: number }).pid)).toBe(true);
    expect(got.map((g) => [g.role, g.index, (g.data as { pid: number }).pid]).sort()).toEqual(targets.map((t) => [t.role, t.index, t.child.pid]).sort());
    expect(got.every((g) => JSON.stringify((g.data as { query: unknown }).query) === '{"event":"relay.*","limit":5}')).toBe(true);
  });

  it('keeps what came when a process errs, stays silent or dies', async () => {
    const c = new Collector();
    const targets = [await start(c, 'worker', 0, 'answer'), await start(c, 'worker', 1, 'error'), await start(c, 'relay', 0, 'silent'), await start(c, 'smtpd', 0, 'die')];
    const got = await c.collect(targets, 'metrics', undefined, 500);
    expect(got.map((g) => `${g.role}:${g.index}`)).toEqual(['worker:0']);
    expect((got[0]!.data as { what: string }).what).toBe('metrics');
  });

  it('asks nobody when no process is connected', async () => {
    const c = new Collector();
    const t = await start(c, 'worker', 0, 'answer');
    t.child.disconnect();
    expect(await c.collect([t], 'metrics', undefined, 60_000)).toEqual([]);
  });
});
