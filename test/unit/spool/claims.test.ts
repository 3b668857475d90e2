/**
 * Claims and marks: the relay's claim into delivering/ against admin commands, the crash marks a
 * reclaim writes, and the verdict on poison messages drawn from them.
 */
import { readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../../../src/core/index.js';
import { claimForDelivery, crashesSinceRelease, deleteEntries, flushDeferred, holdClaimed, holdEntries, holdRequested, releaseEntries, Spool } from '../../../src/spool/index.js';
import { crashVerdict, MAX_CRASHES } from '../../../src/worker/poison.js';
import { tempDir } from '../../helpers/config.js';
import { envelope, queueMessage } from '../../helpers/relay.js';

const env: Envelope = envelope('alice@example.org', ['a@example.net']);
const body = Buffer.from('Subject: x\r\n\r\nhello\r\n');

describe('spool claims and marks', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let spool: Spool;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-claims-'));
    spool = await Spool.open(dir);
  });
  afterEach(() => cleanup());

  async function incoming(): Promise<string> {
    const w = await spool.createIncoming(env);
    w.write(body);
    return w.commit();
  }

  /** Claim `ids` into active/ as process `pid` would (the claim's own rename, under another pid). */
  async function claimAs(pid: number, ...ids: string[]): Promise<void> {
    for (const id of ids) await rename(join(spool.dir('incoming'), id), join(spool.dir('active'), `${id}.${pid}`));
  }

  it('a delivery claim is exclusive, and flush, release and delete leave it alone', async () => {
    const name = await queueMessage(spool, env, body);
    await spool.move('outgoing', 'deferred', name);
    const claim = await claimForDelivery(spool, 'deferred', name);
    expect(await readdir(spool.dir('delivering'))).toEqual([`${name}.${process.pid}`]);
    await expect(claimForDelivery(spool, 'deferred', name)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await flushDeferred(spool)).done).toEqual([]);
    expect((await releaseEntries(spool, 'ALL')).done).toEqual([]);
    expect(await deleteEntries(spool, name.split('.')[0]!)).toEqual({ done: [], busy: [`delivering/${name}.${process.pid}`] });
    expect(claim.body.equals(body)).toBe(true);
    await claim.moveTo('deferred');
    expect(claim.claimed).toBe(false);
    expect(await spool.list('deferred')).toEqual([name]);
    await expect(claim.remove()).rejects.toThrow(/given up/);
    await claim.close();
  });

  it('hold during a delivery marks the claimed entry; the mark travels with it and release cancels it', async () => {
    const name = await queueMessage(spool, env, body);
    const claim = await claimForDelivery(spool, 'outgoing', name);
    const file = `${name}.${process.pid}`;
    expect(await holdEntries(spool, name.split('.')[0]!)).toEqual({ done: [], marked: [`delivering/${file}`], busy: [] });
    expect(await claim.holdRequested()).toMatchObject({ t: 'hold', reason: expect.stringMatching(/queue hold/) });
    // The relay's own records, appended through its descriptor, and the admin's land in one file.
    await claim.append([{ t: 'rcpt', at: new Date().toISOString(), rcpt: 'a@example.net', status: 'deferred', reply: '451 later' }]);
    await claim.moveTo('hold');
    await claim.close();
    const status = await spool.readStatus('hold', name);
    expect(status.map((r) => r.t)).toEqual(['hold', 'rcpt']);
    expect((await releaseEntries(spool, name)).done).toEqual([`hold/${name}`]);
    const released = await claimForDelivery(spool, 'outgoing', name);
    expect(await released.holdRequested()).toBeNull();
    await released.remove();
    await released.close();
    expect(await readdir(spool.dir('delivering'))).toEqual([]);
  });

  it('hold of an entry that is not being delivered moves it, as before', async () => {
    const name = await queueMessage(spool, env, body);
    expect(await holdEntries(spool, name)).toEqual({ done: [`outgoing/${name}`], busy: [] });
    expect(await spool.readStatus('hold', name)).toEqual([]);
  });

  it('reclaimFor(pid) marks each claimed message with a crash (alone only when it was the only one) and gives delivering/ back to outgoing/', async () => {
    const [a, b, c] = [await incoming(), await incoming(), await incoming()];
    await claimAs(111, a, b);
    await claimAs(222, c);
    const name = await queueMessage(spool, env, body);
    await rename(join(spool.dir('outgoing'), name), join(spool.dir('delivering'), `${name}.111`));

    expect(await spool.reclaimFor(111)).toBe(3);
    expect(await spool.list('outgoing')).toEqual([name]);
    expect(crashesSinceRelease(await spool.readStatus('incoming', a))).toEqual({ total: 1, alone: 0 });
    expect(crashesSinceRelease(await spool.readStatus('incoming', b))).toEqual({ total: 1, alone: 0 });
    expect(await spool.reclaimFor(222)).toBe(1);
    expect(crashesSinceRelease(await spool.readStatus('incoming', c))).toEqual({ total: 1, alone: 1 });
    // The body is untouched by the marks.
    const claimed = (await spool.claim(c))!;
    expect(claimed.body.equals(body)).toBe(true);
    expect(claimed.status).toEqual([expect.objectContaining({ t: 'crash', alone: true })]);
  });

  it('recover() groups the claims by process: one alone, two together', async () => {
    const [a, b, c] = [await incoming(), await incoming(), await incoming()];
    await claimAs(111, a, b);
    await claimAs(222, c);
    expect((await spool.recover()).reclaimed).toBe(3);
    expect(crashesSinceRelease(await spool.readStatus('incoming', a)).alone).toBe(0);
    expect(crashesSinceRelease(await spool.readStatus('incoming', c)).alone).toBe(1);
  });

  it('crash verdicts: clean, then suspect after a crash, poison after three crashes alone; held under its id; release starts the count again', async () => {
    const id = await incoming();
    const verdict = async () => crashVerdict(await spool.readStatus('incoming', id));
    expect(await verdict()).toEqual({ verdict: 'clean' });
    await claimAs(333, id, await incoming()); // died with another message in hand: a suspect, not counted
    await spool.reclaimFor(333);
    expect(await verdict()).toEqual({ verdict: 'suspect', crashes: 1 });
    for (let i = 0; i < MAX_CRASHES; i++) {
      expect((await verdict()).verdict).toBe('suspect');
      await claimAs(400 + i, id);
      await spool.reclaimFor(400 + i);
    }
    const v = await verdict();
    expect(v).toEqual({ verdict: 'poison', reason: 'processing crashed the worker 3 times' });

    const claimed = (await spool.claim(id))!;
    await holdClaimed(spool, claimed, 'processing crashed the worker 3 times');
    expect(await spool.list('active')).toEqual([]);
    expect(await spool.list('hold')).toEqual([id]);
    expect(holdRequested(await spool.readStatus('hold', id))).toMatchObject({ reason: 'processing crashed the worker 3 times' });

    expect((await releaseEntries(spool, id)).done).toEqual([`hold/${id}`]);
    expect(await verdict()).toEqual({ verdict: 'clean' });
    expect((await spool.claim(id))!.body.equals(body)).toBe(true);
  });
});
