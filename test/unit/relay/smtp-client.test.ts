/**
 * The relay's SMTP client against scripted peers on 127.0.0.1 (test/helpers/scripted-smtp.ts):
 * the exact replies real servers give only now and then — multi-line refusals, a refused RCPT
 * inside a pipelined batch, 421 in mid-session, a greeting that never comes, a hang-up during
 * the body, a cached connection gone stale — and what goes on the wire (pipelining, DSN and other
 * ESMTP parameters, dot-stuffing).
 */
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpTransport, type SmtpTarget } from '../../../src/relay/smtp-transport.js';
import type { ClientEnvelope } from '../../../src/relay/smtp-client-transaction.js';
import { scriptedPeer, type ScriptOptions, type ScriptedPeer } from '../../helpers/scripted-smtp.js';

const body = Buffer.from('Subject: t\r\n\r\nhello\r\n');
const env = (rcpts: string[], over: Partial<ClientEnvelope> = {}): ClientEnvelope => ({ sender: 'alice@example.org', recipients: rcpts.map((address) => ({ address })), eightBit: false, ...over });

describe('SMTP client', () => {
  let peers: ScriptedPeer[] = [];
  let transports: SmtpTransport[] = [];
  afterEach(async () => {
    for (const t of transports) t.close(true);
    for (const p of peers) await p.close();
    peers = [];
    transports = [];
  });
  async function setup(opts: ScriptOptions = {}, cacheTime = 5000, timeouts = { connection: 2000, greeting: 1000, socket: 2000 }) {
    const peer = await scriptedPeer(opts);
    peers.push(peer);
    const transport = new SmtpTransport({ hostname: 'gw.test.example', cacheTime, timeouts });
    transports.push(transport);
    const target: SmtpTarget = { kind: 'smtp', host: '127.0.0.1', port: peer.port, tls: 'none' };
    return { peer, transport, send: (e: ClientEnvelope, b: Parameters<SmtpTransport['send']>[2] = body) => transport.send(target, e, b) };
  }

  it('pipelines MAIL, every RCPT and DATA in one write; a refused RCPT fails alone, the others are delivered', async () => {
    const { peer, send } = await setup({
      // No reply to MAIL until DATA has arrived: a client that waited for it would time out.
      holdRepliesUntil: /^DATA$/,
      reply: (l) => (l.startsWith('RCPT TO:<bad@') ? '550-5.1.1 <bad@example.net>: no such user\r\n550 5.1.1 try another' : undefined),
    });
    const out = await send(env(['a@example.net', 'bad@example.net', 'c@example.net']));
    expect(out).toEqual([
      { recipient: 'a@example.net', status: 'delivered', reply: '250 2.0.0 queued', remote: '127.0.0.1' },
      { recipient: 'bad@example.net', status: 'failed', reply: '550-5.1.1 <bad@example.net>: no such user 550 5.1.1 try another', remote: '127.0.0.1' },
      { recipient: 'c@example.net', status: 'delivered', reply: '250 2.0.0 queued', remote: '127.0.0.1' },
    ]);
    const c = peer.connections[0]!;
    expect(c.batches).toContainEqual(['MAIL FROM:<alice@example.org> SIZE=21', 'RCPT TO:<a@example.net>', 'RCPT TO:<bad@example.net>', 'RCPT TO:<c@example.net>', 'DATA']);
    expect(c.data).toEqual([Buffer.concat([body, Buffer.from('.\r\n')])]);
  });

  it('every RCPT refused: no message content goes out, and the connection is reset for the next message', async () => {
    const { peer, send } = await setup({
      reply: (l) => (l.startsWith('RCPT') ? '450 4.2.0 mailbox busy' : l === 'DATA' ? '554 5.5.1 no valid recipients' : undefined),
    });
    const out = await send(env(['a@example.net', 'b@example.net']));
    expect(out.map((o) => [o.status, o.reply])).toEqual([
      ['deferred', '450 4.2.0 mailbox busy'],
      ['deferred', '450 4.2.0 mailbox busy'],
    ]);
    await expect.poll(() => peer.connections[0]!.commands.at(-1)).toBe('RSET');
    expect(peer.connections[0]!.data).toEqual([]);
  });

  it('without PIPELINING, one command per reply; a refused MAIL FROM answers for every recipient', async () => {
    const { peer, send } = await setup({
      ehlo: ['8BITMIME'],
      reply: (l) => (l.startsWith('MAIL') ? '553 5.7.1 sender rejected' : undefined),
    });
    const out = await send(env(['a@example.net', 'b@example.net']));
    expect(out.map((o) => [o.status, o.reply])).toEqual([
      ['failed', '553 5.7.1 sender rejected'],
      ['failed', '553 5.7.1 sender rejected'],
    ]);
    const c = peer.connections[0]!;
    expect(c.commands.slice(0, 2)).toEqual(['EHLO gw.test.example', 'MAIL FROM:<alice@example.org>']);
    expect(c.commands).not.toContain('RCPT TO:<a@example.net>');
    expect(c.batches.every((b) => b.length <= 1)).toBe(true);
  });

  it('falls back to HELO when EHLO is refused, and then sends no ESMTP parameter', async () => {
    const { peer, send } = await setup({ reply: (l) => (l.startsWith('EHLO') ? '502 5.5.2 command not recognized' : undefined) });
    const out = await send(env(['a@example.net'], { eightBit: true, ret: 'HDRS', envid: 'x' }));
    expect(out[0]!.status).toBe('delivered');
    expect(peer.connections[0]!.commands.slice(0, 3)).toEqual(['EHLO gw.test.example', 'HELO gw.test.example', 'MAIL FROM:<alice@example.org>']);
  });

  it('passes RET, ENVID, NOTIFY and ORCPT to a next hop that announces DSN, byte for byte, and nothing to one that does not', async () => {
    const dsnEnv = env([], {
      sender: '',
      ret: 'HDRS',
      envid: 'QQ+2B1 23',
      recipients: [
        { address: 'a@example.net', notify: ['SUCCESS', 'DELAY'], orcpt: 'rfc822;A+2Bx@Example.NET' },
        { address: 'b@example.net', notify: ['NEVER'] },
        { address: 'c@example.net' },
      ],
      eightBit: true,
    });
    const withDsn = await setup();
    await withDsn.send(dsnEnv);
    expect(withDsn.peer.connections[0]!.commands.slice(1, 5)).toEqual([
      // A space could not have come from smtpd's xtext, but must not end the parameter either.
      'MAIL FROM:<> SIZE=21 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1+2023',
      'RCPT TO:<a@example.net> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;A+2Bx@Example.NET',
      'RCPT TO:<b@example.net> NOTIFY=NEVER',
      'RCPT TO:<c@example.net>',
    ]);
    const without = await setup({ ehlo: ['PIPELINING', '8BITMIME'] });
    await without.send(dsnEnv);
    expect(without.peer.connections[0]!.commands.slice(1, 3)).toEqual(['MAIL FROM:<> BODY=8BITMIME', 'RCPT TO:<a@example.net>']);
  });

  it('SMTPUTF8: asked for when an address needs it; a next hop without it is a permanent failure, nothing sent', async () => {
    const utf8 = await setup();
    const out = await utf8.send(env(['jörg@exämple.net']));
    expect(out[0]!.status).toBe('delivered');
    expect(utf8.peer.connections[0]!.commands[1]).toBe('MAIL FROM:<alice@example.org> SIZE=21 SMTPUTF8');
    // The domain goes out in its ASCII form, the local part as given.
    expect(utf8.peer.connections[0]!.commands[2]).toBe('RCPT TO:<jörg@xn--exmple-cua.net>'.replace('ö', Buffer.from('ö').toString('latin1')));
    const ascii = await setup({ ehlo: ['PIPELINING'] });
    const refused = await ascii.send(env(['jörg@example.net']));
    expect(refused[0]).toEqual({ recipient: 'jörg@example.net', status: 'failed', reply: 'SMTPUTF8 is required, but was not offered by host 127.0.0.1[127.0.0.1]', dsn: '5.6.7', kind: 'bounced_smtputf8' });
    expect(ascii.peer.connections[0]!.commands.filter((c) => c.startsWith('MAIL'))).toEqual([]);
  });

  it('a message larger than the announced SIZE is refused without a MAIL FROM', async () => {
    const { peer, send } = await setup({ ehlo: ['PIPELINING', 'SIZE 10'] });
    const out = await send(env(['a@example.net']));
    expect(out[0]).toEqual({ recipient: 'a@example.net', status: 'failed', reply: 'message size 21 exceeds size limit 10 of server 127.0.0.1[127.0.0.1]', dsn: '5.3.4', kind: 'bounced_size' });
    expect(peer.connections[0]!.commands.some((c) => c.startsWith('MAIL'))).toBe(false);
  });

  it('a 421 in mid-session: the reply for everyone, the connection not reused, the next message on a new one', async () => {
    let first = true;
    const { peer, send } = await setup({
      reply: (l) => {
        if (!l.startsWith('RCPT TO:<b@') || !first) return undefined;
        first = false;
        return '421 4.3.2 shutting down';
      },
    });
    const out = await send(env(['a@example.net', 'b@example.net', 'c@example.net']));
    expect(out.map((o) => [o.status, o.reply, o.hostFailure])).toEqual([
      ['deferred', '421 4.3.2 shutting down', true],
      ['deferred', '421 4.3.2 shutting down', true],
      ['deferred', '421 4.3.2 shutting down', true],
    ]);
    expect(peer.connections[0]!.data).toEqual([]);
    expect((await send(env(['d@example.net'])))[0]!.status).toBe('delivered');
    expect(peer.connections).toHaveLength(2);
  });

  it('a greeting that never comes: "conversation with … timed out while receiving the initial server greeting"', async () => {
    const { send } = await setup({ greeting: 'stall' }, 5000, { connection: 2000, greeting: 200, socket: 2000 });
    const [o] = await send(env(['a@example.net']));
    expect(o).toMatchObject({ status: 'deferred', reply: 'conversation with 127.0.0.1[127.0.0.1] timed out while receiving the initial server greeting', dsn: '4.4.2', hostFailure: true });
    expect(o).not.toHaveProperty('remote');
  });

  it('a 5xx greeting is the next hop refusing to talk: deferred with its reply, never a bounce', async () => {
    const { send } = await setup({ greeting: '554 5.7.1 no service for you' });
    const [o] = await send(env(['a@example.net']));
    expect(o).toMatchObject({ status: 'deferred', reply: '554 5.7.1 no service for you', remote: '127.0.0.1', hostFailure: true });
  });

  it('a next hop that hangs up in the middle of a streamed body: "lost connection … while sending message body"', async () => {
    const { send } = await setup({ closeInBodyAfter: 64 * 1024 });
    const big = 8 * 1024 * 1024;
    const line = Buffer.from('x'.repeat(998) + '\r\n');
    const source = { size: big, open: () => Readable.from((function* () { for (let i = 0; i < big / 1000; i++) yield line; })()) };
    const [o] = await send(env(['a@example.net']), source);
    expect(o).toMatchObject({ status: 'deferred', reply: 'lost connection with 127.0.0.1[127.0.0.1] while sending message body', dsn: '4.4.2' });
  });

  it('streams a body source, dot-stuffed across chunk boundaries, byte-exact', async () => {
    const { peer, send } = await setup();
    const chunks = ['.first\r\n', 'line\r\n', '.', '.two\r\n.\r\n', 'end .\r\n', '\r\n'].map((s) => Buffer.from(s));
    const size = chunks.reduce((n, c) => n + c.length, 0);
    const out = await send(env(['a@example.net']), { size, open: () => Readable.from(chunks) });
    expect(out[0]!.status).toBe('delivered');
    expect(peer.connections[0]!.data[0]!.toString()).toBe('..first\r\nline\r\n...two\r\n..\r\nend .\r\n\r\n.\r\n');
  });

  it('reuses the connection with RSET between messages, and says QUIT after the cache time', async () => {
    const { peer, send } = await setup({}, 300);
    await send(env(['a@example.net']));
    await expect.poll(() => peer.connections[0]!.commands.at(-1)).toBe('RSET');
    await send(env(['b@example.net']));
    expect(peer.connections).toHaveLength(1);
    await expect.poll(() => peer.connections[0]!.commands.at(-1), { timeout: 3000 }).toBe('QUIT');
    expect(peer.connections[0]!.commands.filter((c) => c === 'RSET')).toHaveLength(2);
  });

  it('with a cache time of 0 every message has its own connection, ended with QUIT', async () => {
    const { peer, send } = await setup({}, 0);
    await send(env(['a@example.net']));
    await send(env(['b@example.net']));
    expect(peer.connections).toHaveLength(2);
    await expect.poll(() => peer.connections.map((c) => c.commands.at(-1))).toEqual(['QUIT', 'QUIT']);
  });

  it('a cached connection that turns out dead before taking anything: the message goes on a new one', async () => {
    const { peer, send } = await setup({ reply: (l, _c, n) => (n === 0 && l.startsWith('MAIL FROM:<second') ? 'close' : undefined) });
    await send(env(['a@example.net']));
    await expect.poll(() => peer.connections[0]!.commands.at(-1)).toBe('RSET');
    const out = await send(env(['b@example.net'], { sender: 'second@example.org' }));
    expect(out[0]!.status).toBe('delivered');
    expect(peer.connections).toHaveLength(2);
    expect(peer.connections[1]!.data).toHaveLength(1);
  });

  it('a refused connection: "connect to host[addr]:port: Connection refused"', async () => {
    const peer = await scriptedPeer();
    const port = peer.port;
    await peer.close();
    const transport = new SmtpTransport({ hostname: 'gw.test.example' });
    transports.push(transport);
    const [o] = await transport.send({ kind: 'smtp', host: '127.0.0.1', port, tls: 'none' }, env(['a@example.net']), body);
    expect(o).toMatchObject({ status: 'deferred', reply: `connect to 127.0.0.1[127.0.0.1]:${port}: Connection refused`, dsn: '4.4.1', hostFailure: true });
  });

  it('a reply that is not SMTP: "host … violated the SMTP protocol"', async () => {
    const { send } = await setup({ reply: (l) => (l.startsWith('EHLO') ? 'hello there' : undefined) });
    const [o] = await send(env(['a@example.net']));
    expect(o).toMatchObject({ status: 'deferred', reply: 'host 127.0.0.1[127.0.0.1] violated the SMTP protocol', dsn: '4.4.2' });
  });
});
