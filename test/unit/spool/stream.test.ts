import { open, readdir, readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CorruptEntryError, type Envelope } from '../../../src/core/index.js';
import { Spool, STREAM_THRESHOLD, streamRange } from '../../../src/spool/index.js';
import { decodeEntry } from '../../../src/spool/record.js';
import { readRanged } from '../../../src/spool/stream.js';
import { tempDir } from '../../helpers/config.js';

const envelope = (rcpts = ['bob@example.com']): Envelope => ({
  sender: 'alice@example.org',
  recipients: rcpts.map((address) => ({ address })),
  client: { address: '127.0.0.1', port: 1234, helo: 'client', hostname: '[127.0.0.1]', protocol: 'ESMTP', trusted: true },
  receivedAt: new Date().toISOString(),
});

/** A message above the streaming threshold, with the end-marker text inside its body (it must not confuse the reader). */
function bigMessage(size = STREAM_THRESHOLD * 3 + 12345): Buffer {
  const head = Buffer.from('From: a@example.org\r\nSubject: big\r\n\r\n\nPOSTERN-END/1 5 abc\n', 'latin1');
  const body = Buffer.alloc(size - head.length);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7919) & 0xff;
  return Buffer.concat([head, body]);
}

async function accept(spool: Spool, data: Buffer): Promise<string> {
  const w = await spool.createIncoming(envelope());
  for (let at = 0; at < data.length; at += 65536) w.write(data.subarray(at, at + 65536));
  return w.commit();
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(c);
  return Buffer.concat(out);
}

describe('spool entries as file ranges', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let spool: Spool;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    spool = await Spool.open(dir);
  });
  afterEach(() => cleanup());

  it('claims a large entry as a range checked by streaming; the body is loaded only when asked for', async () => {
    const msg = bigMessage();
    const id = await accept(spool, msg);
    const entry = (await spool.claim(id))!;
    expect(entry.range).toBeDefined();
    expect(entry.range!.length).toBe(msg.length);
    expect((await collect(streamRange(entry.range!))).equals(msg)).toBe(true);
    // Not loaded by the claim: the property is a getter until used.
    expect(Object.getOwnPropertyDescriptor(entry, 'body')?.get).toBeTypeOf('function');
    expect(entry.body.equals(msg)).toBe(true);
    expect(entry.meta.envelope.recipients[0]!.address).toBe('bob@example.com');
  });

  it('keeps small entries on the Buffer path', async () => {
    const id = await accept(spool, Buffer.from('Subject: small\r\n\r\nhi\r\n'));
    const entry = (await spool.claim(id))!;
    expect(entry.range).toBeUndefined();
    expect(entry.body.toString()).toBe('Subject: small\r\n\r\nhi\r\n');
  });

  it('writes an outgoing entry from a stream in the same record format as from a Buffer', async () => {
    const msg = bigMessage();
    const id = await accept(spool, Buffer.from('Subject: in\r\n\r\nx\r\n'));
    const entry = (await spool.claim(id))!;
    async function* pieces() {
      for (let at = 0; at < msg.length; at += 1000) yield msg.subarray(at, at + 1000);
    }
    const names = await spool.commitOutgoing(entry, [{ envelope: envelope(), chunks: pieces, notes: { streamed: true } }, { envelope: envelope(['carol@example.com']), body: Buffer.from('small\r\n') }]);
    expect(names).toHaveLength(2);
    const file = await readFile(join(dir, 'spool', 'outgoing', names[0]!));
    const decoded = decodeEntry('f', file); // the Buffer reader reads what the stream wrote
    expect(decoded.body.equals(msg)).toBe(true);
    expect(decoded.meta.notes).toEqual({ streamed: true });
    expect(decoded.meta.group).toBe(0);
    const ranged = await readRanged(join(dir, 'spool', 'outgoing', names[0]!));
    expect(ranged.meta).toEqual(decoded.meta);
    // The relay opens it as a range too, and appends status records to it as before.
    const open1 = await spool.openEntry('outgoing', names[0]!);
    expect(open1.range?.length).toBe(msg.length);
    await open1.append([{ t: 'attempt', at: new Date().toISOString(), n: 1, next: new Date().toISOString() }]);
    await open1.close();
    const open2 = await spool.openEntry('outgoing', names[0]!);
    expect(open2.status).toHaveLength(1);
    expect(open2.body.equals(msg)).toBe(true);
    await open2.close();
  });

  it('a stream that fails leaves nothing in outgoing/ and keeps the input', async () => {
    const id = await accept(spool, Buffer.from('Subject: in\r\n\r\nx\r\n'));
    const entry = (await spool.claim(id))!;
    async function* failing() {
      yield Buffer.alloc(100_000, 0x41);
      throw new Error('transform failed half way');
    }
    await expect(spool.commitOutgoing(entry, [{ envelope: envelope(), chunks: failing }])).rejects.toThrow();
    expect(await readdir(join(dir, 'spool', 'outgoing'))).toEqual([]);
    expect(await readdir(join(dir, 'spool', 'tmp'))).toEqual([]);
    expect(await readdir(join(dir, 'spool', 'active'))).toHaveLength(1);
  });

  it('detects a torn file while streaming: no end marker → corrupt/', async () => {
    const msg = bigMessage();
    const id = await accept(spool, msg);
    const path = join(dir, 'spool', 'incoming', id);
    await truncate(path, Math.floor(msg.length / 2));
    await expect(readRanged(path)).rejects.toThrow(CorruptEntryError);
    expect(await spool.claim(id)).toBeNull();
    expect(await readdir(join(dir, 'spool', 'corrupt'))).toEqual([id, `${id}.reason`].sort());
  });

  it('detects a wrong digest while streaming: one flipped byte in the middle → corrupt/', async () => {
    const msg = bigMessage();
    const id = await accept(spool, msg);
    const path = join(dir, 'spool', 'incoming', id);
    const fh = await open(path, 'r+');
    const at = Math.floor(msg.length / 2);
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0x01;
    await fh.write(b, 0, 1, at);
    await fh.close();
    await expect(readRanged(path)).rejects.toThrow(/checksum/);
    expect(await spool.claim(id)).toBeNull();
    expect((await readFile(join(dir, 'spool', 'corrupt', `${id}.reason`), 'utf8')).trim()).toMatch(/checksum/);
  });

  it('detects a length that disagrees with the end marker', async () => {
    const msg = bigMessage();
    const id = await accept(spool, msg);
    const path = join(dir, 'spool', 'incoming', id);
    const data = await readFile(path);
    // Remove one body byte: the marker's length no longer matches.
    const cut = Buffer.concat([data.subarray(0, 5000), data.subarray(5001)]);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, cut);
    await expect(readRanged(path)).rejects.toThrow(/body length/);
  });
});
