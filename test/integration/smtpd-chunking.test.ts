/**
 * CHUNKING and BINARYMIME (RFC 3030) in smtpd, driven by a client that pipelines BDAT chunks
 * with any bytes in them: binary content stored byte-exact, the smuggling defence on 7BIT/8BITMIME
 * chunks, the size limit checked as chunks arrive (552 and the rest drained, the session still in
 * step), the sequence rules (BDAT without MAIL, DATA after BINARYMIME, DATA and BDAT mixed, RSET
 * between chunks), and clients that lie about sizes, go silent or hang up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BdatClient } from '../helpers/bdat-client.js';
import { eventually, splitReceived, startTestSmtpd, type SmtpdHarness } from '../helpers/smtp-harness.js';

/** Every byte value, with NUL, bare CR, bare LF, "CRLF.CRLF" and 8-bit among them. */
const BINARY = Buffer.concat([Buffer.from([0, 13, 10, 46, 13, 10, 0xff, 13, 13, 10, 10]), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from('\r\n.\r\nQUIT\r\n')]);

describe('smtpd CHUNKING / BINARYMIME', () => {
  let h: SmtpdHarness;
  beforeAll(async () => {
    h = await startTestSmtpd({ smtp: { max_message_size: 4000, idle_timeout: 400, data_timeout: 10_000 } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const queued = (raw: string | undefined) => /^250 2\.0\.0 Ok: queued as (\w+)$/.exec(raw ?? '')?.[1];

  it('stores BINARYMIME chunks pipelined in one write byte for byte, one reply per BDAT', async () => {
    const c = await BdatClient.connect(h.port);
    await c.envelope('alice@example.org', ['bob@example.com'], 'BODY=BINARYMIME');
    const parts = [BINARY.subarray(0, 7), BINARY.subarray(7, 200), BINARY.subarray(200)];
    const replies = await c.send(parts);
    expect(replies.map((r) => r.raw.replace(/queued as \w+/, 'queued as ID'))).toEqual(['250 2.0.0 7 octets received', '250 2.0.0 193 octets received', '250 2.0.0 Ok: queued as ID']);
    const id = queued(replies[2]!.raw)!;
    const entry = await h.spool.read('incoming', id);
    expect(splitReceived(entry.body).rest.equals(BINARY)).toBe(true);
    expect(entry.meta.envelope.body).toBe('BINARYMIME');
    expect(h.logs).toContainEqual(expect.objectContaining({ event: 'smtpd.queued', queueId: id, chunking: true, size: BINARY.length }));
    // the session goes on: the "QUIT" inside the chunk was content, not a command
    expect((await c.cmd('NOOP')).code).toBe(250);
    await c.quit();
  });

  it('takes a chunk split over many writes, and BDAT 0 LAST ends the message', async () => {
    const c = await BdatClient.connect(h.port);
    await c.envelope('alice@example.org', ['bob@example.com'], 'BODY=BINARYMIME');
    c.write(Buffer.from(`BDAT ${BINARY.length}\r\n`));
    for (let i = 0; i < BINARY.length; i += 50) {
      c.write(BINARY.subarray(i, i + 50));
      await new Promise((r) => setTimeout(r, 5));
    }
    expect((await c.read())!.raw).toBe(`250 2.0.0 ${BINARY.length} octets received`);
    const id = queued((await c.cmd('BDAT 0 LAST')).raw)!;
    expect(splitReceived((await h.spool.read('incoming', id)).body).rest.equals(BINARY)).toBe(true);
    await c.quit();
  });

  it('stores 7BIT content sent by BDAT as it is: a "." line is content, not an end', async () => {
    const text = Buffer.from('Subject: chunks\r\n\r\nline one\r\n.\r\n..two dots stay two\r\nend\r\n');
    const c = await BdatClient.connect(h.port);
    await c.envelope('alice@example.org', ['bob@example.com']);
    const replies = await c.send([text.subarray(0, 25), text.subarray(25)]);
    const id = queued(replies[1]?.raw)!;
    const entry = await h.spool.read('incoming', id);
    expect(splitReceived(entry.body).rest.equals(text)).toBe(true);
    expect(entry.meta.envelope.body).toBeUndefined();
    await c.quit();
  });

  it('refuses bare LF, bare CR and NUL in 8BITMIME chunks (550), drains the chunk and goes on', async () => {
    const before = (await h.incoming()).length;
    for (const [bad, status] of [
      ['Subject: x\r\n\r\nbare\nLF\r\n', '550 5.5.2 '],
      ['Subject: x\r\n\r\nbare\rCR\r\n', '550 5.5.2 '],
      ['Subject: x\r\n\r\nNUL\0\r\n', '550 5.6.0 '],
    ] as const) {
      const c = await BdatClient.connect(h.port);
      await c.envelope('alice@example.org', ['bob@example.com'], 'BODY=8BITMIME');
      const replies = await c.send([Buffer.from(bad), Buffer.from('NOOP\r\nNOOP\r\n')]);
      expect(replies.map((r) => r.raw.slice(0, 10))).toEqual([status, status]);
      // nothing of the chunks was read as commands, and the session is usable after RSET
      expect((await c.cmd('RSET')).raw).toBe('250 2.0.0 Flushed');
      expect((await c.cmd('MAIL FROM:<alice@example.org>')).code).toBe(250);
      await c.quit();
    }
    expect(await h.incoming()).toHaveLength(before);
    expect(await h.tmpFiles()).toEqual([]);
    expect(h.logs.filter((l) => l.event === 'smtpd.reject').map((l) => l.reason)).toEqual(expect.arrayContaining(['bare LF', 'bare CR', 'NUL']));
  });

  it('answers 552 5.3.4 when the chunks go over SIZE, drains the rest, and stays in step', async () => {
    const before = (await h.incoming()).length;
    const c = await BdatClient.connect(h.port);
    await c.envelope('big@example.org', ['bob@example.com'], 'BODY=BINARYMIME');
    // 3 × 1500 > 4000: the third chunk goes over, in its middle; its rest and the LAST chunk are
    // drained. Chunks full of "NOOP" lines show any byte read as a command.
    const noops = Buffer.from('NOOP\r\n'.repeat(250));
    const replies = await c.send([noops, noops, noops, Buffer.from('NOOP\r\n')]);
    expect(replies.map((r) => r.raw)).toEqual([
      '250 2.0.0 1500 octets received',
      '250 2.0.0 1500 octets received',
      '552 5.3.4 message exceeds fixed maximum message size',
      '552 5.3.4 message exceeds fixed maximum message size',
    ]);
    // LAST ended the failed transaction: a new one works on the same connection
    c.write('BDAT 2 LAST\r\nxx');
    expect((await c.read())!.raw).toBe('503 5.5.1 Error: need MAIL command');
    expect((await c.cmd('NOOP')).raw).toBe('250 2.0.0 OK');
    expect((await c.cmd('MAIL FROM:<big@example.org>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<bob@example.com>')).code).toBe(250);
    expect(queued((await c.send([Buffer.from('small\r\n')]))[0]?.raw)).toBeTruthy();
    await c.quit();
    expect(await h.incoming()).toHaveLength(before + 1);
    expect(await h.tmpFiles()).toEqual([]);
  });

  it('after 552 without LAST, RSET discards the transaction and the session is usable', async () => {
    const c = await BdatClient.connect(h.port);
    await c.envelope('big@example.org', ['bob@example.com']);
    const replies = await c.send([Buffer.alloc(3000, 0x61), Buffer.alloc(3000, 0x61)], { last: false });
    expect(replies.map((r) => r.code)).toEqual([250, 552]);
    expect((await c.cmd('RSET')).code).toBe(250);
    expect((await c.cmd('MAIL FROM:<big@example.org>')).code).toBe(250);
    await c.quit();
  });

  it('RSET between chunks throws the partial message away', async () => {
    const c = await BdatClient.connect(h.port);
    await c.envelope('alice@example.org', ['bob@example.com'], 'BODY=BINARYMIME');
    expect((await c.send([BINARY.subarray(0, 100)], { last: false }))[0]!.code).toBe(250);
    await eventually(async () => (await h.tmpFiles()).length > 0);
    expect((await c.cmd('RSET')).code).toBe(250);
    await eventually(async () => (await h.tmpFiles()).length === 0);
    c.write('BDAT 1 LAST\r\nx');
    expect((await c.read())!.raw).toBe('503 5.5.1 Error: need MAIL command');
    await c.quit();
  });

  it('refuses BDAT without MAIL or RCPT (503) after reading its chunk, and mixing DATA with BDAT', async () => {
    const c = await BdatClient.connect(h.port);
    expect((await c.cmd('EHLO x.test')).code).toBe(250);
    const chunk = Buffer.from('QUIT\r\n');
    expect((await c.send([chunk]))[0]!.raw).toBe('503 5.5.1 Error: need MAIL command');
    expect((await c.cmd('MAIL FROM:<a@example.org> BODY=BINARYMIME')).code).toBe(250);
    expect((await c.send([chunk]))[0]!.raw).toBe('503 5.5.1 Error: need RCPT command');
    expect((await c.cmd('RCPT TO:<bob@example.com>')).code).toBe(250);
    // RFC 3030 2: BINARYMIME content can only come by BDAT
    expect((await c.cmd('DATA')).raw).toMatch(/^503 5\.5\.1 BODY=BINARYMIME needs BDAT/);
    expect((await c.send([chunk], { last: false }))[0]!.code).toBe(250);
    expect((await c.cmd('DATA')).raw).toMatch(/^503 5\.5\.1 DATA after BDAT/);
    expect((await c.cmd('RCPT TO:<carol@example.com>')).code).toBe(503);
    expect(queued((await c.cmd('BDAT 0 LAST')).raw)).toBeTruthy();
    await c.quit();
  });

  it('refuses a size that is not a number (501) or larger than any message (552), and closes', async () => {
    for (const [line, reply] of [
      ['BDAT ten LAST', /^501 5\.5\.4 /],
      ['BDAT -5', /^501 5\.5\.4 /],
      ['BDAT 123456789012345678901 LAST', /^501 5\.5\.4 /],
      ['BDAT 99999999999999999999', /^552 5\.3\.4 /],
      ['BDAT 4001 LAST', /^552 5\.3\.4 /],
    ] as const) {
      const c = await BdatClient.connect(h.port);
      await c.envelope('alice@example.org', ['bob@example.com']);
      c.write(`${line}\r\nNOOP\r\n`);
      const replies = await c.smtp.readUntilClosed();
      expect(replies.map((r) => r.raw), line).toHaveLength(1);
      expect(replies[0]!.raw, line).toMatch(reply);
    }
    expect(await h.tmpFiles()).toEqual([]);
  });

  it('closes a client that sends fewer octets than announced and goes silent (idle_timeout)', async () => {
    const c = await BdatClient.connect(h.port);
    await c.envelope('alice@example.org', ['bob@example.com'], 'BODY=BINARYMIME');
    c.write(bdatBytes100Short());
    await eventually(async () => (await h.tmpFiles()).length > 0);
    const replies = await c.smtp.readUntilClosed();
    expect(replies.map((r) => r.raw)).toEqual(['421 4.4.2 gw.test.example Error: timeout exceeded']);
    await eventually(async () => (await h.tmpFiles()).length === 0);
  });

  it('leaves nothing behind when the client hangs up in the middle of a chunk, and logs it', async () => {
    const c = await BdatClient.connect(h.port);
    await c.envelope('gone@example.org', ['bob@example.com'], 'BODY=BINARYMIME');
    c.write(bdatBytes100Short());
    await eventually(async () => (await h.tmpFiles()).length > 0);
    c.smtp.destroy();
    await eventually(async () => (await h.tmpFiles()).length === 0);
    await eventually(async () => h.logs.some((l) => l.event === 'smtpd.reject' && l.reason === 'disconnect' && l.sender === 'gone@example.org'));
  });
});

describe('smtpd CHUNKING: data_timeout covers every chunk of a message', () => {
  let h: SmtpdHarness;
  beforeAll(async () => {
    h = await startTestSmtpd({ smtp: { data_timeout: 800, idle_timeout: 5000 } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('answers 421 4.4.2 to a client that keeps sending small chunks past data_timeout', async () => {
    const c = await BdatClient.connect(h.port);
    await c.envelope('slow@example.org', ['bob@example.com'], 'BODY=BINARYMIME');
    const replies: string[] = [];
    for (let i = 0; i < 20; i++) {
      c.write('BDAT 1\r\nx');
      const r = await c.read();
      if (!r) break;
      replies.push(r.raw);
      if (r.code !== 250) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(replies.at(-1)).toBe('421 4.4.2 gw.test.example Error: message not received in time; closing connection');
    expect(replies.length).toBeGreaterThan(2);
    expect(await c.smtp.readUntilClosed()).toEqual([]);
    expect(await h.tmpFiles()).toEqual([]);
    expect(await h.incoming()).toEqual([]);
  });
});

/** BDAT 100 LAST with only 40 octets of its chunk. */
function bdatBytes100Short(): Buffer {
  return Buffer.concat([Buffer.from('BDAT 100 LAST\r\n'), BINARY.subarray(0, 40)]);
}
