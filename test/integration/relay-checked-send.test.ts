/**
 * A large entry fresh from a worker is checked against its SHA-256 while the relay sends it (one
 * read instead of two): an intact one arrives byte for byte over SMTP and into a maildir; a
 * damaged one (same length, one byte changed) never arrives — the connection is dropped before
 * the final dot, the maildir keeps no file — and the next attempt, from deferred/, finds the damage
 * before sending and moves the entry to corrupt/.
 */
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Route } from '../../src/config/types.js';
import { STREAM_THRESHOLD } from '../../src/spool/index.js';
import { testConfig } from '../helpers/config.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';

/** A message above the streaming threshold, with lines that need dot-stuffing. */
function largeMessage(): Buffer {
  const head = 'From: a@example.org\r\nTo: b@example.net\r\nSubject: large\r\n\r\n';
  const lines: string[] = [];
  // The length is counted as lines are added: joining them to measure is quadratic (minutes for 2 MB).
  for (let i = 0, length = 0; length < STREAM_THRESHOLD * 2; i++) {
    const line = i % 50 === 0 ? `.dot line ${i}\r\n` : `line ${i} ${'x'.repeat(70)}\r\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(head + lines.join(''), 'latin1');
}

/** Change one byte in the middle of the entry's body, keeping its length. */
async function damage(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const { size } = await fh.stat();
    const at = Math.floor(size / 2);
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0] === 0x79 ? 0x7a : 0x79;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

describe('relay: large entries checked while sent', () => {
  const h = useRelayHarness('postern-relay-checked-');
  const start = (routes: Route[]) => h.start(testConfig(h.dir, { relay: { routes, retry: [200], concurrency: 2 } }));
  const body = largeMessage();

  it('delivers an intact large entry byte for byte over SMTP and into a maildir', async () => {
    const s = await h.sink();
    const maildir = join(h.dir, 'mail');
    await start([
      { pattern: 'example.net', target: { kind: 'smtp', host: s.host, port: s.port, tls: 'none' } },
      { pattern: '*', target: { kind: 'maildir', path: maildir } },
    ]);
    await queueMessage(h.spool, envelope('a@example.org', ['b@example.net']), body);
    await queueMessage(h.spool, envelope('a@example.org', ['c@example.com']), body);
    await s.waitFor(1);
    expect(s.transactions[0]!.data.equals(body)).toBe(true);
    await waitUntil(async () => (await readdir(join(maildir, 'new')).catch(() => [])).length === 1, 10_000, 'maildir delivery');
    const [file] = await readdir(join(maildir, 'new'));
    expect((await readFile(join(maildir, 'new', file!))).subarray(-body.length).equals(body)).toBe(true);
    expect(await h.spool.list('corrupt')).toEqual([]);
  });

  it.each([
    ['SMTP', 'smtp'],
    ['a maildir', 'maildir'],
  ])('never delivers a damaged large entry (%s): deferred once, then moved to corrupt/', async (_label, kind) => {
    const s = await h.sink();
    const maildir = join(h.dir, 'mail');
    const name = await queueMessage(h.spool, envelope('a@example.org', ['b@example.net']), body);
    await damage(join(h.spool.dir('outgoing'), name));
    await start([{ pattern: '*', target: kind === 'smtp' ? { kind: 'smtp', host: s.host, port: s.port, tls: 'none' } : { kind: 'maildir', path: maildir } }]);
    await waitUntil(async () => h.events('relay.corrupt').length > 0, 10_000, `relay.corrupt; logs: ${JSON.stringify(h.logs).slice(0, 2000)}`);
    expect((await readdir(h.spool.dir('corrupt'))).sort()).toEqual([name, `${name}.reason`]);
    expect(await readFile(join(h.spool.dir('corrupt'), `${name}.reason`), 'utf8')).toMatch(/checksum/);
    // The first attempt sent (or wrote) the bytes, found the damage at the end and never ended
    // the message: deferred as a local error; the second one did not send at all.
    const deferred = h.events('relay.deferred');
    expect(deferred).toHaveLength(1);
    expect(deferred[0]).toMatchObject({ attempt: 1 });
    expect(String(deferred[0]!.reason)).toMatch(/body checksum mismatch/);
    expect(s.transactions).toEqual([]);
    expect(await readdir(join(maildir, 'new')).catch(() => [])).toEqual([]);
    expect(await readdir(join(maildir, 'tmp')).catch(() => [])).toEqual([]);
    for (const q of ['outgoing', 'deferred', 'delivering'] as const) expect(await h.spool.list(q)).toEqual([]);
  });
});
