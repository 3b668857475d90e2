import { copyFile, readdir, readFile, rename, writeFile, truncate, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CorruptEntryError, isQueueId, type Envelope } from '../../../src/core/index.js';
import { outputNames, Spool } from '../../../src/spool/index.js';
import { appendRecords } from '../../../src/spool/marks.js';

import { DirSyncer } from '../../../src/spool/dirsync.js';
import { decodeEntry, encodeEntry } from '../../../src/spool/record.js';
import { tempDir } from '../../helpers/config.js';

const envelope = (rcpts = ['bob@example.com']): Envelope => ({
  sender: 'alice@example.org',
  recipients: rcpts.map((address) => ({ address })),
  client: { address: '127.0.0.1', port: 1234, helo: 'client', hostname: '[127.0.0.1]', protocol: 'ESMTP', trusted: true },
  receivedAt: new Date().toISOString(),
});

const body = Buffer.from('From: a@example.org\r\nSubject: t\r\n\r\nhello\r\n.. dotted\r\n\x00\xff binary\r\n', 'latin1');

async function accept(spool: Spool, env = envelope(), data = body): Promise<string> {
  const w = await spool.createIncoming(env);
  // chunked, like smtpd
  w.write(data.subarray(0, 7));
  w.write(data.subarray(7));
  return w.commit();
}

describe('spool record', () => {
  it('round-trips envelope and exact bytes', () => {
    const meta = { id: 'X', envelope: envelope() };
    const file = Buffer.concat(encodeEntry(meta, body));
    const d = decodeEntry('f', file);
    expect(d.body.equals(body)).toBe(true);
    expect(d.meta).toEqual(meta);
  });

  it('detects truncation, tampering and foreign files', () => {
    const file = Buffer.concat(encodeEntry({ id: 'X', envelope: envelope() }, body));
    expect(() => decodeEntry('f', file.subarray(0, file.length - 5))).toThrow(CorruptEntryError);
    expect(() => decodeEntry('f', file.subarray(0, file.length - 120))).toThrow(/end marker/);
    const flipped = Buffer.from(file);
    flipped[flipped.indexOf('hello')] = 0x48;
    expect(() => decodeEntry('f', flipped)).toThrow(/checksum/);
    expect(() => decodeEntry('f', Buffer.from('From: x\r\n\r\nhi'))).toThrow(/bad magic/);
    expect(() => decodeEntry('f', Buffer.from('POSTERN-SPOOL/1\n{"id":1}\n'))).toThrow(CorruptEntryError);
  });
});

describe('spool', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let spool: Spool;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    spool = await Spool.open(dir);
  });
  afterEach(() => cleanup());

  it('creates the queue directories with private permissions', async () => {
    const names = await readdir(join(dir, 'spool'));
    expect(names.sort()).toEqual(['active', 'corrupt', 'deferred', 'delivering', 'hold', 'incoming', 'outgoing', 'partial', 'tmp']);
    expect((await stat(join(dir, 'spool', 'incoming'))).mode & 0o777).toBe(0o700);
  });

  it('accepts into incoming/ only on commit, with nothing left in tmp/', async () => {
    const w = await spool.createIncoming(envelope());
    w.write(body);
    expect(await spool.list('incoming')).toEqual([]);
    expect((await spool.list('tmp')).length).toBe(1);
    const id = await w.commit();
    expect(isQueueId(id)).toBe(true);
    expect(await spool.list('incoming')).toEqual([id]);
    expect(await spool.list('tmp')).toEqual([]);
    expect((await stat(join(dir, 'spool', 'incoming', id))).mode & 0o777).toBe(0o600);
    const e = await spool.read('incoming', id);
    expect(e.body.equals(body)).toBe(true);
    expect(e.meta.id).toBe(id);
  });

  it('abort leaves no trace', async () => {
    const w = await spool.createIncoming(envelope());
    w.write(body);
    await w.abort();
    expect(await spool.list('tmp')).toEqual([]);
    expect(await spool.list('incoming')).toEqual([]);
  });

  it('lets exactly one of two concurrent claimers win', async () => {
    const id = await accept(spool);
    const other = await Spool.open(dir);
    const [a, b] = await Promise.all([spool.claim(id), other.claim(id)]);
    expect([a, b].filter(Boolean).length).toBe(1);
    expect(await spool.list('incoming')).toEqual([]);
    expect(await spool.activeIds()).toEqual(new Set([id]));
  });

  it('writes outgoing entries under deterministic names before removing the input', async () => {
    const id = await accept(spool, envelope(['a@example.com', 'b@example.net']));
    const e = (await spool.claim(id))!;
    const names = await spool.commitOutgoing(e, [
      { envelope: { ...e.meta.envelope, recipients: [e.meta.envelope.recipients[0]!] }, body: e.body, key: 'deliver:a' },
      { envelope: { ...e.meta.envelope, recipients: [e.meta.envelope.recipients[1]!] }, body: Buffer.from('other\r\n'), key: 'deliver:a' },
    ]);
    // Named by what they are and whom they are for: "<id>.<12 hex>", the same for the same drafts.
    expect(names).toHaveLength(2);
    for (const n of names) expect(n).toMatch(new RegExp(`^${id}\\.[0-9a-f]{12}$`));
    // The name depends on the output's kind and recipients, not on its place in the list.
    expect(outputNames(id, [1, 0].map((i) => ({ envelope: { ...e.meta.envelope, recipients: [e.meta.envelope.recipients[i]!] }, body: Buffer.alloc(0), key: 'deliver:a' })))).toEqual([names[1], names[0]]);
    expect(await spool.list('outgoing')).toEqual([...names].sort());
    expect(await spool.list('active')).toEqual([]);
    const out1 = await spool.read('outgoing', names[1]!);
    expect(out1.meta.group).toBe(1);
    expect(out1.body.toString()).toBe('other\r\n');
  });

  it('a re-run after a crash that decides otherwise replaces the outputs of the first run, never adds to them', async () => {
    const env = envelope(['a@example.com', 'b@example.net']);
    const id = await accept(spool, env);
    const e = (await spool.claim(id))!;
    const kept = join(spool.dir('active'), 'kept');
    await copyFile(e.path, kept);
    const [a, b] = env.recipients.map((r) => ({ ...env, recipients: [r] }));
    // First run: two groups (signed for a, in clear for b); the worker dies before the input is gone.
    const first = await spool.commitOutgoing(e, [
      { envelope: a!, body: Buffer.from('signed\r\n'), key: 'deliver:signed' },
      { envelope: b!, body: Buffer.from('clear\r\n'), key: 'deliver:clear' },
    ]);
    await rename(kept, e.path);
    await appendRecords(e.path, [{ t: 'crash', at: new Date().toISOString(), alone: true }]);
    await rename(e.path, join(spool.dir('incoming'), id));
    // Second run: b's key was found meanwhile, one group for both.
    const again = (await spool.claim(id))!;
    const second = await spool.commitOutgoing(again, [{ envelope: env, body: Buffer.from('encrypted\r\n'), key: 'deliver:encrypted' }]);
    expect(second[0]).not.toBe(first[0]);
    expect(await spool.list('outgoing')).toEqual(second);
    expect((await spool.read('outgoing', second[0]!)).body.toString()).toBe('encrypted\r\n');
  });

  it('recover() puts claimed entries back and clears tmp/', async () => {
    const id = await accept(spool);
    await spool.claim(id);
    await writeFile(join(dir, 'spool', 'tmp', '999.half-written'), 'partial');
    const r = await spool.recover();
    expect(r).toEqual({ reclaimed: 1, tmpRemoved: 1 });
    expect(await spool.list('incoming')).toEqual([id]);
    expect((await spool.read('incoming', id)).body.equals(body)).toBe(true);
  });

  it('reclaimFor(pid) takes back only that process’s claims', async () => {
    const id1 = await accept(spool);
    const id2 = await accept(spool);
    await spool.claim(id1);
    // a claim by another (live) process
    const { rename } = await import('node:fs/promises');
    await rename(join(dir, 'spool', 'incoming', id2), join(dir, 'spool', 'active', `${id2}.1`));
    expect(await spool.reclaimFor(process.pid)).toBe(1);
    expect(await spool.list('incoming')).toEqual([id1]);
    expect(await spool.list('active')).toEqual([`${id2}.1`]);
  });

  it('moves an unreadable entry to corrupt/ with its reason, never deleting it', async () => {
    const id = await accept(spool);
    await truncate(join(dir, 'spool', 'incoming', id), 60);
    expect(await spool.claim(id)).toBeNull();
    expect(await spool.list('corrupt')).toEqual([id, `${id}.reason`]);
    expect(await readFile(join(dir, 'spool', 'corrupt', `${id}.reason`), 'utf8')).toMatch(/truncated|end marker/);
    const listed = await spool.inspect();
    expect(listed.map((e) => [e.queue, e.id])).toEqual([['corrupt', id]]);
    expect(listed[0]!.error).toMatch(/truncated|end marker/);
  });

  it('inspect() reads envelopes without bodies', async () => {
    const id = await accept(spool);
    const [e] = await spool.inspect();
    expect(e).toMatchObject({ id, queue: 'incoming', size: expect.any(Number) });
    expect(e!.meta!.envelope.sender).toBe('alice@example.org');
  });
});

describe('DirSyncer', () => {
  class Counting extends DirSyncer {
    rounds = 0;
    protected override async fsyncOnce(): Promise<void> {
      this.rounds++;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('shares fsync rounds among concurrent callers, each covered by a round that started after it', async () => {
    const s = new Counting('/tmp');
    const order: string[] = [];
    const first = s.sync().then(() => order.push('first'));
    const many = Array.from({ length: 50 }, (_, i) => s.sync().then(() => order.push(`late${i}`)));
    await Promise.all([first, ...many]);
    // one round for the first caller, one shared round for the 50 that arrived during it
    expect(s.rounds).toBe(2);
    expect(order[0]).toBe('first');
  });
});
