import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { derivedQueueId, isQueueId, newQueueId, type Envelope } from '../../../src/core/index.js';
import { deleteEntries, flushDeferred, holdEntries, releaseEntries, Spool, type StatusRecord } from '../../../src/spool/index.js';
import { decodeEntry, encodeEntry, encodeStatus } from '../../../src/spool/record.js';
import { tempDir } from '../../helpers/config.js';
import { envelope, queueMessage } from '../../helpers/relay.js';

const env: Envelope = envelope('alice@example.org', ['a@example.net', 'b@example.net']);
const body = Buffer.from('Subject: x\r\n\r\nfake end marker follows\r\n\nPOSTERN-END/1 3 ' + 'a'.repeat(64) + '\n\r\n', 'latin1');
const rec = (rcpt: string, status: 'delivered' | 'deferred' | 'failed'): StatusRecord => ({ t: 'rcpt', at: '2026-11-23T00:00:00.000Z', rcpt, status, reply: `reply for ${rcpt}\r\nX-Injected: no` });

describe('status records in a spool entry', () => {
  it('follow the end marker and survive a body that imitates it', () => {
    const file = Buffer.concat([...encodeEntry({ id: 'X', envelope: env }, body), encodeStatus([rec('a@example.net', 'delivered')])]);
    const d = decodeEntry('f', file);
    expect(d.body.equals(body)).toBe(true);
    expect(d.status).toEqual([rec('a@example.net', 'delivered')]);
  });

  it('skip a record torn by a crash, and read the ones appended after it', () => {
    const torn = encodeStatus([rec('a@example.net', 'delivered')]).subarray(0, 30);
    const file = Buffer.concat([...encodeEntry({ id: 'X', envelope: env }, body), torn, Buffer.alloc(7), encodeStatus([rec('b@example.net', 'failed')])]);
    expect(decodeEntry('f', file).status).toEqual([rec('b@example.net', 'failed')]);
  });

  it('are not confused by a remote reply that quotes the record tag', () => {
    const forged = { ...rec('a@example.net', 'failed'), reply: '550 POSTERN-STATUS/1 {"t":"rcpt","rcpt":"a@example.net","status":"delivered"}' };
    const file = Buffer.concat([...encodeEntry({ id: 'X', envelope: env }, body), encodeStatus([forged])]);
    expect(decodeEntry('f', file).status).toEqual([forged]);
  });
});

describe('spool: relay and admin operations', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let spool: Spool;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-status-'));
    spool = await Spool.open(dir);
  });
  afterEach(() => cleanup());

  it('appends through the open entry, so records land in the file even after an admin moved it', async () => {
    const name = await queueMessage(spool, env, body);
    const entry = await spool.openEntry('outgoing', name);
    await rename(join(spool.dir('outgoing'), name), join(spool.dir('hold'), name));
    await entry.append([rec('a@example.net', 'delivered')]);
    await entry.close();
    const again = await spool.read('hold', name);
    expect(again.status).toEqual([rec('a@example.net', 'delivered')]);
    expect(again.body.equals(body)).toBe(true);
    expect(await spool.readStatus('hold', name)).toEqual([rec('a@example.net', 'delivered')]);
  });

  it('never creates an entry that is gone', async () => {
    await expect(spool.openEntry('outgoing', 'NOPE.0')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await spool.list('outgoing')).toEqual([]);
  });

  it('reads status from the end of a large entry without the body', async () => {
    const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(300_000, 0x61), Buffer.from('\r\n')]);
    const name = await queueMessage(spool, env, big);
    await appendFile(join(spool.dir('outgoing'), name), encodeStatus([rec('b@example.net', 'deferred')]));
    expect(await spool.readStatus('outgoing', name)).toEqual([rec('b@example.net', 'deferred')]);
  });

  it('injects a notice under a derived id: a repeat replaces it instead of queueing a second', async () => {
    const parent = newQueueId();
    const id = derivedQueueId(parent, 'failure b@example.net');
    expect(isQueueId(id)).toBe(true);
    expect(id.slice(0, 9)).toBe(parent.slice(0, 9));
    expect(derivedQueueId(parent, 'failure b@example.net')).toBe(id);
    expect(derivedQueueId(parent, 'failure a@example.net')).not.toBe(id);
    const draft = { envelope: envelope('', ['alice@example.org']), body: Buffer.from('Subject: bounce\r\n\r\nx\r\n') };
    await spool.inject(id, draft);
    await spool.inject(id, draft);
    expect(await spool.list('outgoing')).toEqual([`${id}.0`]);
    expect((await spool.read('outgoing', `${id}.0`)).meta.envelope.sender).toBe('');
  });

  it('hold, release, flush and delete move whole messages; claimed ones are reported busy', async () => {
    const out = await queueMessage(spool, env, body);
    const outId = out.split('.')[0]!;
    const w = await spool.createIncoming(env);
    w.write(body);
    const inId = await w.commit();

    expect(await holdEntries(spool, inId)).toEqual({ done: [`incoming/${inId}`], busy: [] });
    expect(await holdEntries(spool, outId)).toEqual({ done: [`outgoing/${out}`], busy: [] });
    expect((await spool.list('hold')).sort()).toEqual([inId, out].sort());
    // A message held before a worker saw it goes back to incoming/, an outgoing entry to outgoing/.
    expect((await releaseEntries(spool, 'ALL')).done.sort()).toEqual([`hold/${inId}`, `hold/${out}`].sort());
    expect(await spool.list('incoming')).toEqual([inId]);
    expect(await spool.list('outgoing')).toEqual([out]);

    await spool.move('outgoing', 'deferred', out);
    expect((await flushDeferred(spool)).done).toEqual([`deferred/${out}`]);
    expect(await spool.list('outgoing')).toEqual([out]);

    const claimed = (await spool.claim(inId))!;
    expect(await holdEntries(spool, inId)).toEqual({ done: [], busy: [`active/${inId}.${process.pid}`] });
    await spool.release(claimed);

    await writeFile(join(spool.dir('corrupt'), `${outId}.9`), 'junk');
    await writeFile(join(spool.dir('corrupt'), `${outId}.9.reason`), 'why');
    expect((await deleteEntries(spool, outId)).done.sort()).toEqual([`corrupt/${outId}.9`, `outgoing/${out}`]);
    expect(await spool.list('corrupt')).toEqual([]);
    expect(await readFile(join(spool.dir('incoming'), inId))).toBeTruthy();
  });
});
