import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../../../src/core/index.js';
import { MAX_PER_CLIENT, PartialStore, partialKey, Spool, type PartialOwner } from '../../../src/spool/index.js';
import { tempDir } from '../../helpers/config.js';

const envelope = (): Envelope => ({
  sender: 'alice@example.org',
  recipients: [{ address: 'bob@example.com' }],
  client: { address: '192.0.2.7', port: 1234, helo: 'mx.example.org', hostname: '[192.0.2.7]', protocol: 'ESMTP', trusted: false },
  receivedAt: new Date().toISOString(),
});
const owner: PartialOwner = { address: '192.0.2.7', helo: 'mx.example.org', tls: false };
const TID = '<1234.5678@mx.example.org>';
const received = Buffer.from('Received: from mx.example.org by gw; now\r\n');
const line = (n: number) => Buffer.from(`line ${n} ${'x'.repeat(50)}\r\n`);

describe('partial transactions (RFC 1845) in spool/partial', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let spool: Spool;
  let store: PartialStore;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-partial-'));
    spool = await Spool.open(dir);
    store = new PartialStore(spool);
    await store.sweep();
  });
  afterEach(async () => {
    await cleanup();
  });

  it('keeps a cut transaction at its last mark and resumes it byte-identically, once', async () => {
    const w = store.begin(owner, TID, envelope())!;
    w.write(received);
    const sent = [line(1), line(2), line(3)];
    let offset = 0;
    for (const l of sent) {
      w.write(l);
      offset += l.length;
      w.mark(offset);
    }
    // Half a line arrives, then the connection is lost: only whole marked lines count.
    w.write(Buffer.from('line 4 partial'));
    expect(await w.keep()).toBe(offset);
    expect(await spool.list('incoming')).toEqual([]);

    // Bytes past the checkpoint are on the file but not durable by our word: cut on resume.
    const r = store.resume(owner, TID);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.writer.resumed).toBe(true);
    expect(r.writer.offset).toBe(offset);
    expect(r.writer.envelope.sender).toBe('alice@example.org');
    const rest = Buffer.from('line 4 whole\r\nend\r\n');
    r.writer.write(rest);
    const id = await r.writer.commit();

    const entry = await spool.read('incoming', id);
    expect(entry.body.equals(Buffer.concat([received, ...sent, rest]))).toBe(true);
    expect(await spool.list('incoming')).toEqual([id]);
    expect(await readdir(spool.dir('partial'))).toEqual([]);
    // Committed: nothing left to resume, so the TRANSID starts afresh.
    expect(store.resume(owner, TID)).toEqual({ ok: false, reason: 'none' });
  });

  it('survives a new store (smtpd restarted) and a second cut', async () => {
    const w = store.begin(owner, TID, envelope())!;
    w.write(received);
    w.write(line(1));
    w.mark(line(1).length);
    await w.checkpoint();
    w.write(line(2));
    w.mark(line(1).length + line(2).length);
    // A crash: no keep(), the process is gone. Only the checkpoint written counts.
    const again = new PartialStore(spool);
    expect(await again.sweep()).toBe(0);
    expect(again.size).toBe(1);
    const r = again.resume(owner, TID);
    if (!r.ok) throw new Error(r.reason);
    expect(r.writer.offset).toBe(line(1).length);
    r.writer.write(line(2));
    r.writer.mark(line(1).length + line(2).length);
    expect(await r.writer.keep()).toBe(line(1).length + line(2).length);
    const r2 = again.resume(owner, TID);
    if (!r2.ok) throw new Error(r2.reason);
    r2.writer.write(line(3));
    const id = await r2.writer.commit();
    expect((await spool.read('incoming', id)).body.equals(Buffer.concat([received, line(1), line(2), line(3)]))).toBe(true);
  });

  it('gives one client nothing of another: other address, EHLO name, TLS state or TRANSID', async () => {
    const w = store.begin(owner, TID, envelope())!;
    w.write(received);
    w.write(line(1));
    w.mark(line(1).length);
    await w.keep();
    for (const other of [
      { ...owner, address: '192.0.2.8' },
      { ...owner, helo: 'evil.example' },
      { ...owner, tls: true },
    ]) {
      expect(store.resume(other, TID)).toEqual({ ok: false, reason: 'none' });
    }
    expect(store.resume(owner, '<1234.5679@mx.example.org>')).toEqual({ ok: false, reason: 'none' });
    // TRANSIDs are case-sensitive; EHLO names are not.
    expect(store.resume(owner, TID.toUpperCase())).toEqual({ ok: false, reason: 'none' });
    expect(store.resume({ ...owner, helo: 'MX.Example.ORG' }, TID).ok).toBe(true);
  });

  it('refuses a second session on a TRANSID still being received', async () => {
    const w = store.begin(owner, TID, envelope())!;
    expect(store.resume(owner, TID)).toEqual({ ok: false, reason: 'busy' });
    expect(store.begin(owner, TID, envelope())).toBeNull();
    await w.abort();
    expect(store.resume(owner, TID)).toEqual({ ok: false, reason: 'none' });
  });

  it('keeps nothing when no line was complete, and nothing of a refused message', async () => {
    const w = store.begin(owner, TID, envelope())!;
    w.write(received);
    w.write(Buffer.from('no line end yet'));
    expect(await w.keep()).toBe(0);
    expect(await readdir(spool.dir('partial'))).toEqual([]);

    const w2 = store.begin(owner, TID, envelope())!;
    w2.write(line(1));
    w2.mark(line(1).length);
    await w2.checkpoint();
    await w2.abort();
    expect(await readdir(spool.dir('partial'))).toEqual([]);
  });

  it('drops a partial whose bytes no longer match the checkpoint checksum', async () => {
    const w = store.begin(owner, TID, envelope())!;
    w.write(received);
    w.write(line(1));
    w.mark(line(1).length);
    await w.keep();
    const msg = join(spool.dir('partial'), `${partialKey(owner, TID)}.msg`);
    const bytes = readFileSync(msg);
    bytes[bytes.length - 4] = bytes[bytes.length - 4]! ^ 0x20;
    writeFileSync(msg, bytes);
    expect(store.resume(owner, TID)).toEqual({ ok: false, reason: 'corrupt' });
    expect(existsSync(msg)).toBe(false);
  });

  it('expires a partial a day after its last checkpoint, on resume and in the sweep', async () => {
    const keep = async (tid: string) => {
      const w = store.begin(owner, tid, envelope())!;
      w.write(line(1));
      w.mark(line(1).length);
      await w.keep();
      const ckpt = join(spool.dir('partial'), `${partialKey(owner, tid)}.ckpt`);
      const old = (Date.now() - store.lifetimeMs - 60_000) / 1000;
      utimesSync(ckpt, old, old);
      return ckpt;
    };
    const first = await keep('<a@b>');
    expect(store.resume(owner, '<a@b>')).toEqual({ ok: false, reason: 'expired' });
    expect(existsSync(first)).toBe(false);
    const second = await keep('<c@d>');
    expect(await store.sweep()).toBe(2);
    expect(existsSync(second)).toBe(false);
    expect(await readdir(spool.dir('partial'))).toEqual([]);
  });

  it('sweeps leftovers: a message never checkpointed, a checkpoint without its message, junk', async () => {
    const w = store.begin(owner, '<x@y>', envelope())!;
    w.write(line(1));
    // The process dies before any checkpoint: only the .msg exists.
    const fresh = new PartialStore(spool);
    const kept = store.begin(owner, '<k@y>', envelope())!;
    kept.write(line(1));
    kept.mark(line(1).length);
    await kept.keep();
    writeFileSync(join(spool.dir('partial'), `.${'0'.repeat(40)}.ckpt`), 'torn');
    writeFileSync(join(spool.dir('partial'), `${'1'.repeat(40)}.ckpt`), 'POSTERN-PARTIAL/1 {}\n');
    writeFileSync(join(spool.dir('partial'), 'stray'), 'x');
    expect(await fresh.sweep()).toBe(4);
    expect((await readdir(spool.dir('partial'))).sort()).toEqual([`${partialKey(owner, '<k@y>')}.ckpt`, `${partialKey(owner, '<k@y>')}.msg`]);
    expect(fresh.size).toBe(1);
    void w;
  });

  it(`keeps at most ${MAX_PER_CLIENT} cut transactions per client address, dropping the oldest`, async () => {
    const keys: string[] = [];
    for (let i = 0; i <= MAX_PER_CLIENT; i++) {
      const tid = `<t${i}@mx.example.org>`;
      const w = store.begin(owner, tid, envelope())!;
      w.write(line(i));
      w.mark(line(i).length);
      await w.keep();
      keys.push(partialKey(owner, tid));
    }
    expect(store.size).toBe(MAX_PER_CLIENT);
    expect(existsSync(join(spool.dir('partial'), `${keys[0]}.ckpt`))).toBe(false);
    expect(existsSync(join(spool.dir('partial'), `${keys[MAX_PER_CLIENT]}.ckpt`))).toBe(true);
    // Another client is not limited by this one.
    const w = store.begin({ ...owner, address: '192.0.2.9' }, '<t0@mx.example.org>', envelope());
    expect(w).not.toBeNull();
    await w!.abort();
  });

  it('writes files private to the spool (0600) and never names them after the TRANSID', async () => {
    const hostile = '<../../etc@passwd>';
    const w = store.begin(owner, hostile, envelope())!;
    w.write(line(1));
    w.mark(line(1).length);
    await w.keep();
    const names = await readdir(spool.dir('partial'));
    expect(names.every((n) => /^[0-9a-f]{40}\.(msg|ckpt)$/.test(n))).toBe(true);
    for (const n of names) expect(statSync(join(spool.dir('partial'), n)).mode & 0o777).toBe(0o600);
  });
});
