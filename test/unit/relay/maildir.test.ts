import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deliverMaildir, maildirName, type OutboundMessage } from '../../../src/relay/index.js';
import { tempDir } from '../../helpers/config.js';

const body = Buffer.from('From: a@example.org\r\nSubject: t\r\n\r\n.leading dot\r\n\x00\xff\xfe binary\r\n', 'latin1');
const msg = (over: Partial<OutboundMessage> = {}): OutboundMessage => ({
  queueId: 'Q',
  sender: 'alice@example.org',
  recipients: ['bob@example.com'],
  body,
  eightBit: false,
  ...over,
});

describe('maildir delivery', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-maildir-'));
  });
  afterEach(() => cleanup());

  it('creates tmp/new/cur with private permissions and delivers into new/', async () => {
    const md = join(dir, 'deep', 'maildir');
    const out = await deliverMaildir(md, msg());
    expect(out).toEqual([{ recipient: 'bob@example.com', status: 'delivered', reply: expect.stringMatching(/^250 /) }]);
    for (const sub of ['tmp', 'new', 'cur']) expect((await stat(join(md, sub))).mode & 0o777).toBe(0o700);
    expect(await readdir(join(md, 'tmp'))).toEqual([]);
    const [name] = await readdir(join(md, 'new'));
    const file = join(md, 'new', name!);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const data = await readFile(file);
    const head = Buffer.from('Return-Path: <alice@example.org>\r\nDelivered-To: bob@example.com\r\n');
    expect(data.subarray(0, head.length).equals(head)).toBe(true);
    expect(data.subarray(head.length).equals(body)).toBe(true);
  });

  it('writes one file per recipient, each with its own Delivered-To, and <> for the null sender', async () => {
    const md = join(dir, 'md');
    const out = await deliverMaildir(md, msg({ sender: '', recipients: ['a@x.test', 'b@x.test', 'c@x.test'] }));
    expect(out.map((o) => o.status)).toEqual(['delivered', 'delivered', 'delivered']);
    const names = await readdir(join(md, 'new'));
    expect(new Set(names).size).toBe(3);
    const texts = await Promise.all(names.map((n) => readFile(join(md, 'new', n), 'latin1')));
    expect(texts.every((t) => t.startsWith('Return-Path: <>\r\nDelivered-To: '))).toBe(true);
    expect(texts.map((t) => /Delivered-To: (\S+)/.exec(t)![1]).sort()).toEqual(['a@x.test', 'b@x.test', 'c@x.test']);
  });

  it('names files <time>.<pid>_<counter>.<host> without "/" or ":"', () => {
    const a = maildirName(1_700_000_000_123);
    const b = maildirName(1_700_000_000_123);
    expect(a).toMatch(new RegExp(`^1700000000\\.${process.pid}_\\d+\\.[^/:]+$`));
    expect(a).not.toBe(b);
  });

  it('defers (never fails) when the maildir cannot be written', async () => {
    // A file where tmp/ should be: fails for root too, unlike a permission bit.
    const md = join(dir, 'broken');
    await mkdir(md);
    await writeFile(join(md, 'tmp'), 'not a directory');
    const out = await deliverMaildir(md, msg({ recipients: ['a@x.test', 'b@x.test'] }));
    expect(out.map((o) => o.status)).toEqual(['deferred', 'deferred']);
    expect(out[0]!.reply).toMatch(/^451 4\.3\.0 maildir write failed: E[A-Z]+/);
  });

  it('refuses addresses that would inject header lines', async () => {
    const out = await deliverMaildir(join(dir, 'md'), msg({ recipients: ['ok@x.test', 'evil@x.test\r\nX-Injected: 1'] }));
    expect(out.map((o) => o.status)).toEqual(['delivered', 'failed']);
    const [name] = await readdir(join(dir, 'md', 'new'));
    expect(await readFile(join(dir, 'md', 'new', name!), 'latin1')).not.toContain('X-Injected');
  });
});
