/**
 * The kept policy versions (files in data_dir/policy-versions/) and activation without the admin
 * API: pruning to the limit, order by time even when a file's time is older, what a record may not
 * claim, two activations from the same text at once (one wins, the other is stale), and the lock
 * against another process activating (waited for while it lives, taken over when it died).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { activatePolicy, FilePolicyVersions, policyHash, PolicyLockedError } from '../../../src/policy/index.js';
import { withFileLock } from '../../../src/policy/file-lock.js';
import { tempDir } from '../../helpers/config.js';

const policy = (n: number) => `rules:\n  - name: rule ${n}\n    do: [sign]\n`;

describe('policy versions', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-policy-versions-'));
  });
  afterEach(() => cleanup());

  it('keeps the newest versions up to the limit, newest first, and not the same text twice in a row', async () => {
    const store = new FilePolicyVersions(join(dir, 'v'), 3);
    const t0 = Date.parse('2026-12-03T10:00:00Z');
    for (let i = 0; i < 5; i++) await store.keep(policy(i), `admin${i}`, new Date(t0 + i * 1000));
    expect(await store.keep(policy(4), 'someone else')).toMatchObject({ by: 'admin4' });
    const list = await store.list();
    expect(list.map((v) => [v.by, v.hash, v.time.toISOString()])).toEqual([
      ['admin4', policyHash(policy(4)), '2026-12-03T10:00:04.000Z'],
      ['admin3', policyHash(policy(3)), '2026-12-03T10:00:03.000Z'],
      ['admin2', policyHash(policy(2)), '2026-12-03T10:00:02.000Z'],
    ]);
    expect((await readdir(join(dir, 'v'))).sort()).toHaveLength(6);
    expect(await store.read(list[2]!.id)).toEqual({ version: list[2], text: policy(2) });
  });

  it('orders a version kept with an older time after the newest, and takes the hash from the text, not the record', async () => {
    const store = new FilePolicyVersions(join(dir, 'v'));
    const a = await store.keep(policy(1), 'alice', new Date('2026-12-03T10:00:00Z'));
    const b = await store.keep(policy(2), null, new Date('2026-01-01T00:00:00Z'));
    expect(b.time.getTime()).toBe(a.time.getTime() + 1);
    expect((await store.list()).map((v) => v.id)).toEqual([b.id, a.id]);
    // A text changed under its record (by hand) is listed with its own hash.
    await writeFile(join(dir, 'v', `${a.id}.yaml`), policy(3));
    expect((await store.read(a.id))?.version).toMatchObject({ by: 'alice', hash: policyHash(policy(3)) });
    expect(JSON.parse(await readFile(join(dir, 'v', `${a.id}.json`), 'utf8'))).toEqual({ by: 'alice', time: a.time.toISOString() });
  });

  it('lets one of two activations from the same text win; the other is stale', async () => {
    const file = join(dir, 'policy.yaml');
    await writeFile(file, policy(0));
    const store = new FilePolicyVersions(join(dir, 'v'));
    const base = policyHash(policy(0));
    const results = await Promise.all([activatePolicy(file, store, { text: policy(1), base, by: 'alice' }), activatePolicy(file, store, { text: policy(2), base, by: 'bob' })]);
    expect(results.map((r) => r.outcome)).toEqual(['activated', 'stale']);
    expect(await readFile(file, 'utf8')).toBe(policy(1));
    expect((await store.list()).map((v) => v.by)).toEqual(['alice', null]);
  });

  it('locks the policy file against another process activating at once, and takes over the lock of one that died', async () => {
    const file = join(dir, 'policy.yaml');
    await writeFile(file, policy(0));
    const lock = join(dir, '.policy.yaml.lock');
    // Another process holds the lock: refused after the wait, the file untouched.
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await writeFile(lock, String(holder.pid));
      await expect(withFileLock(file, async () => 'ran', 200)).rejects.toThrow(PolicyLockedError);
    } finally {
      holder.kill('SIGKILL');
      await once(holder, 'exit');
    }
    // Now it is dead: its lock is taken over, and released after the activation.
    const r = await activatePolicy(file, new FilePolicyVersions(join(dir, 'v')), { text: policy(1), base: policyHash(policy(0)), by: 'alice' });
    expect(r.outcome).toBe('activated');
    expect(await readFile(file, 'utf8')).toBe(policy(1));
    expect((await readdir(dir)).filter((n) => n.endsWith('.lock'))).toEqual([]);
  });
});
