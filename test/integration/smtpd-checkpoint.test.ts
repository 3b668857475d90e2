/**
 * RFC 1845 CHECKPOINT/RESTART through smtpd, driven by the client the tests write
 * (test/helpers/checkpoint-client.ts): a transaction cut off in the middle of DATA and resumed
 * on a new connection with the same TRANSID ends as one message in incoming/, byte-identical to
 * the original behind our one Received header.
 */
import { existsSync, utimesSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSmtpd, type Smtpd } from '../../src/smtpd/index.js';
import { partialKey } from '../../src/spool/index.js';
import { cutDuringData, dataStream, openTransaction, sendRest, transactionOffset, type Transaction } from '../helpers/checkpoint-client.js';
import { captureLogger, eventually, splitReceived, startTestSmtpd, type SmtpdHarness } from '../helpers/smtp-harness.js';

/** Lines of text, one of them dot-led (stuffed on the wire), CRLF throughout. */
function message(lines: number, tag: string): Buffer {
  const out = [`From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: ${tag}\r\n\r\n`];
  for (let i = 0; i < lines; i++) out.push(i % 7 === 3 ? `.dot-led line ${i} of ${tag}\r\n` : `line ${i} of ${tag} ${'x'.repeat(60)}\r\n`);
  return Buffer.from(out.join(''), 'latin1');
}

const tx = (transid: string, over: Partial<Transaction> = {}): Transaction => ({
  helo: 'mta.example.org',
  sender: 'alice@example.org',
  recipients: ['bob@example.com', 'carol@example.com'],
  transid,
  ...over,
});

describe('smtpd CHECKPOINT/RESTART (RFC 1845)', () => {
  let h: SmtpdHarness;
  let restarted: Smtpd | null = null;

  beforeAll(async () => {
    h = await startTestSmtpd({ smtp: { checkpoint: true } });
  });
  let second: SmtpdHarness | null = null;
  afterEach(async () => {
    await restarted?.close(2000);
    await second?.stop();
    restarted = second = null;
  });
  afterAll(async () => {
    await h?.stop();
  });

  const partials = () => readdir(h.spool.dir('partial'));
  const kept = (transid: string, helo = 'mta.example.org') => existsSync(join(h.spool.dir('partial'), `${partialKey({ address: '127.0.0.1', helo, tls: false }, transid)}.ckpt`));

  /** Open, cut after `octets` of the DATA stream, wait until the server has kept what it got. */
  async function cutAt(port: number, t: Transaction, msg: Buffer, octets: number): Promise<void> {
    const { client, mail } = await openTransaction(port, t);
    expect(mail.code).toBe(250);
    const before = h.logs.length;
    await cutDuringData(client, dataStream(msg), octets);
    await eventually(async () => h.logs.slice(before).some((l) => l.event === 'smtpd.transaction_checkpointed'));
    expect(kept(t.transid!, t.helo)).toBe(true);
  }

  /** The line start at or before `octets` of the unstuffed message (where a resume must start). */
  const lineStartBefore = (msg: Buffer, octets: number) => msg.lastIndexOf('\r\n', octets - 2) + 2;

  it('announces CHECKPOINT and resumes a cut DATA from the last line start: one message, byte-identical', async () => {
    const msg = message(200, 'resume');
    const { ehlo } = await openTransaction(h.port, tx('<r1@mta.example.org>'));
    expect(ehlo.lines).toContain('CHECKPOINT');
    // The cut falls in the middle of a line, well into the message.
    const stream = dataStream(msg);
    const cut = Math.floor(stream.length / 2) + 17;
    await cutAt(h.port, tx('<r2@mta.example.org>'), msg, cut);
    expect(await h.spool.list('incoming')).toEqual([]);

    const { client, mail } = await openTransaction(h.port, tx('<r2@mta.example.org>'));
    const offset = transactionOffset(mail);
    expect(mail.raw).toBe(`355 ${offset} is the transaction offset`);
    // Unstuffed octets up to the last CRLF the server had: the stream has one extra "." per
    // dot-led line before the cut.
    const unstuffedAtCut = cut - (stream.subarray(0, cut).toString('latin1').match(/\r\n\.\./g)?.length ?? 0);
    expect(offset).toBe(lineStartBefore(msg, unstuffedAtCut));
    // RCPT may repeat a stored recipient, never add one.
    expect((await client.cmd('RCPT TO:<bob@example.com>')).code).toBe(250);
    expect((await client.cmd('RCPT TO:<mallory@example.com>')).raw).toMatch(/^503 5\.5\.1 /);
    const done = await sendRest(client, msg, offset);
    expect(done.raw).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await client.cmd('QUIT');

    const [entry, ...more] = await h.incoming();
    expect(more).toEqual([]);
    expect(splitReceived(entry!.body).rest.equals(msg)).toBe(true);
    expect(entry!.meta.envelope.recipients.map((r) => r.address)).toEqual(['bob@example.com', 'carol@example.com']);
    expect(await partials()).toEqual([]);
    expect(h.logs.some((l) => l.event === 'smtpd.transaction_resumed' && l.offset === offset)).toBe(true);
    await clearIncoming();
  });

  it('resumes at the line start when the cut falls right after a CR, or inside a stuffed "CRLF.."', async () => {
    const msg = message(40, 'edges');
    const stream = dataStream(msg);
    const afterCr = stream.indexOf('\r\n', 900) + 1;
    const insideDots = stream.indexOf('\r\n..', 900) + 3;
    for (const [i, cut] of [afterCr, insideDots].entries()) {
      const t = tx(`<edge${i}@mta.example.org>`);
      await cutAt(h.port, t, msg, cut);
      const { client, mail } = await openTransaction(h.port, t);
      const offset = transactionOffset(mail);
      // Right after a CR the line is not complete; after "CRLF." the dot-led line has not begun.
      const unstuffed = cut - (stream.subarray(0, cut).toString('latin1').match(/\r\n\.\./g)?.length ?? 0);
      expect(offset).toBe(lineStartBefore(msg, unstuffed));
      expect(msg.subarray(offset - 2, offset).toString()).toBe('\r\n');
      expect((await sendRest(client, msg, offset)).code).toBe(250);
      await client.cmd('QUIT');
      const [entry, ...more] = await h.incoming();
      expect(more).toEqual([]);
      expect(splitReceived(entry!.body).rest.equals(msg)).toBe(true);
      await clearIncoming();
    }
  });

  it('gives no resume to another client address, another EHLO name, or a changed sender', async () => {
    const msg = message(60, 'owner');
    const t = tx('<own@mta.example.org>');
    await cutAt(h.port, t, msg, 2000);

    // 127.0.0.2 is loopback too, but another client: its MAIL starts a new transaction.
    const other = await openTransaction(h.port, t, '127.0.0.2');
    expect(other.mail.code).toBe(250);
    await other.client.cmd('QUIT');
    const otherHelo = await openTransaction(h.port, { ...t, helo: 'evil.example' });
    expect(otherHelo.mail.code).toBe(250);
    await otherHelo.client.cmd('QUIT');
    const changed = await openTransaction(h.port, { ...t, sender: 'mallory@example.org' });
    expect(changed.mail.raw).toMatch(/^501 5\.5\.4 TRANSID belongs to a transaction with another sender/);
    await changed.client.cmd('QUIT');
    // Still there for its owner.
    const mine = await openTransaction(h.port, t);
    expect(mine.mail.code).toBe(355);
    // BDAT cannot continue it (the RFC restarts DATA).
    expect((await mine.client.cmd('BDAT 0 LAST')).raw).toMatch(/^503 5\.5\.1 a resumed transaction continues with DATA/);
    expect((await sendRest(mine.client, msg, transactionOffset(mine.mail))).code).toBe(250);
    await mine.client.cmd('QUIT');
    expect((await h.incoming()).length).toBe(1);
    await clearIncoming();
  });

  it('checkpoints a large message as it arrives and resumes it after the last line start', async () => {
    // 3 MB: several periodic checkpoints (every MiB) before the cut at about 2.5 MB.
    const msg = message(40_000, 'large');
    const t = tx('<large@mta.example.org>');
    const stream = dataStream(msg);
    await cutAt(h.port, t, msg, Math.floor(stream.length * 0.8));
    const { client, mail } = await openTransaction(h.port, t);
    const offset = transactionOffset(mail);
    expect(offset).toBeGreaterThan(2 * (1 << 20));
    expect(msg.subarray(offset - 2, offset).toString()).toBe('\r\n');
    expect((await sendRest(client, msg, offset)).code).toBe(250);
    await client.cmd('QUIT');
    const [entry, ...more] = await h.incoming();
    expect(more).toEqual([]);
    expect(splitReceived(entry!.body).rest.equals(msg)).toBe(true);
    await clearIncoming();
  });

  it('counts the resumed octets against max_message_size: over it, 552 and the partial is gone', async () => {
    const small = await startTestSmtpd({ smtp: { checkpoint: true, max_message_size: 20_000 } });
    second = small;
    const msg = message(400, 'too big'); // about 30 kB
    const t = tx('<big@mta.example.org>');
    const { client: c1 } = await openTransaction(small.port, t);
    await cutDuringData(c1, dataStream(msg), 15_000);
    await eventually(async () => small.logs.some((l) => l.event === 'smtpd.transaction_checkpointed'));
    const { client, mail } = await openTransaction(small.port, t);
    const offset = transactionOffset(mail);
    expect(offset).toBeGreaterThan(10_000);
    expect((await sendRest(client, msg, offset)).raw).toMatch(/^552 5\.3\.4 /);
    await client.cmd('QUIT');
    expect(await readdir(small.spool.dir('partial'))).toEqual([]);
    expect(await small.spool.list('incoming')).toEqual([]);
  });

  it('keeps the transaction when DATA runs out of smtp.data_timeout (421), for a resume', async () => {
    const slow = await startTestSmtpd({ smtp: { checkpoint: true, data_timeout: 800 } });
    second = slow;
    const msg = message(80, 'slow');
    const t = tx('<slow@mta.example.org>');
    const { client: c1 } = await openTransaction(slow.port, t);
    expect((await c1.cmd('DATA')).code).toBe(354);
    c1.write(dataStream(msg).subarray(0, 3000));
    // The client stalls; the server gives up on the message, answers 421 and hangs up.
    const replies = await c1.readUntilClosed();
    expect(replies.map((r) => r.code)).toEqual([421]);
    expect(slow.logs.some((l) => l.event === 'smtpd.transaction_checkpointed')).toBe(true);
    const { client, mail } = await openTransaction(slow.port, t);
    const offset = transactionOffset(mail);
    expect(offset).toBe(lineStartBefore(msg, 3000 - (dataStream(msg).subarray(0, 3000).toString('latin1').match(/\r\n\.\./g)?.length ?? 0)));
    expect((await sendRest(client, msg, offset)).code).toBe(250);
    await client.cmd('QUIT');
    const [entry, ...more] = await slow.incoming();
    expect(more).toEqual([]);
    expect(splitReceived(entry!.body).rest.equals(msg)).toBe(true);
  });

  it('refuses hostile TRANSIDs with 501 and keeps nothing of them', async () => {
    // A space ends the parameter: "b@c>" is then a parameter of its own, unknown (555).
    const cases: [string, number][] = [['<a b@c>', 555], ['<a@b@c>', 501], [`<${'a'.repeat(90)}@b>`, 501], ['plain@text', 501], ['<../../x@y>z', 501], ['<a\x7f@b>', 501], ['<a(b)@c>', 501]];
    for (const [bad, code] of cases) {
      const { client, mail } = await openTransaction(h.port, tx(bad));
      expect([bad, mail.code]).toEqual([bad, code]);
      await client.cmd('QUIT');
    }
    expect(await partials()).toEqual([]);
  });

  it('forgets an expired partial transaction: MAIL gets 250 and the files are gone', async () => {
    const msg = message(30, 'expiry');
    const t = tx('<old@mta.example.org>');
    await cutAt(h.port, t, msg, 1500);
    const ckpt = join(h.spool.dir('partial'), `${partialKey({ address: '127.0.0.1', helo: t.helo, tls: false }, t.transid!)}.ckpt`);
    const dayAndMore = (Date.now() - 25 * 3600_000) / 1000;
    utimesSync(ckpt, dayAndMore, dayAndMore);
    const { client, mail } = await openTransaction(h.port, t);
    expect(mail.code).toBe(250);
    expect(await partials()).toEqual([]);
    // It is an ordinary transaction now: the whole message, checkpointed afresh.
    client.write('DATA\r\n');
    expect((await client.read())!.code).toBe(354);
    client.write(dataStream(msg));
    expect((await client.read())!.code).toBe(250);
    await client.cmd('QUIT');
    expect(splitReceived((await h.incoming())[0]!.body).rest.equals(msg)).toBe(true);
    await clearIncoming();
  });

  it('keeps the partial transaction across an smtpd restart', async () => {
    // An smtpd of its own, stopped between the cut and the resume; a new one on the same spool.
    const first = await startTestSmtpd({ smtp: { checkpoint: true } });
    second = first;
    const msg = message(300, 'restart');
    const t = tx('<restart@mta.example.org>');
    const { client: c1, mail: m1 } = await openTransaction(first.port, t);
    expect(m1.code).toBe(250);
    await cutDuringData(c1, dataStream(msg), 9000);
    await first.smtpd.close(2000);
    expect((await readdir(first.spool.dir('partial'))).length).toBe(2);

    restarted = await startSmtpd({ config: first.config, spool: first.spool, log: captureLogger([]) });
    const { client, mail } = await openTransaction(restarted.addresses[0]!.port, t);
    const offset = transactionOffset(mail);
    expect(offset).toBeGreaterThan(5000);
    expect((await sendRest(client, msg, offset)).code).toBe(250);
    await client.cmd('QUIT');
    const [entry, ...more] = await first.incoming();
    expect(more).toEqual([]);
    expect(splitReceived(entry!.body).rest.equals(msg)).toBe(true);
  });

  async function clearIncoming(): Promise<void> {
    const { rm } = await import('node:fs/promises');
    for (const n of await h.spool.list('incoming')) await rm(join(h.spool.dir('incoming'), n));
  }
});

describe('smtpd with smtp.checkpoint false (the default)', () => {
  let h: SmtpdHarness;
  beforeAll(async () => {
    h = await startTestSmtpd();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('does not announce CHECKPOINT and refuses TRANSID as an unknown parameter; a cut DATA leaves nothing', async () => {
    const { client, ehlo, mail } = await openTransaction(h.port, tx('<off@mta.example.org>'));
    expect(ehlo.lines).not.toContain('CHECKPOINT');
    expect(mail.raw).toMatch(/^555 5\.5\.4 /);
    await client.cmd('QUIT');
    const plain = await openTransaction(h.port, { ...tx('<off@mta.example.org>'), transid: undefined });
    await cutDuringData(plain.client, dataStream(message(50, 'off')), 2000);
    await eventually(async () => (await h.tmpFiles()).length === 0);
    expect(await readdir(h.spool.dir('partial'))).toEqual([]);
    expect(await h.spool.list('incoming')).toEqual([]);
  });
});
