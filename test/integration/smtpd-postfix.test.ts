/**
 * Postern's listener between two real Postfix instances: a front Postfix relays into the running
 * gateway (relayhost), which relays to a Postfix next hop; and the CHUNKING test client of
 * smtpd-chunking.test.ts checked against Postfix's own smtpd, the independent peer that says our
 * BDAT framing is what a real server reads.
 *
 * Postfix 3.7's SMTP client does not send BDAT (only its smtpd implements CHUNKING; the smtp
 * binary has no BDAT at all), so the front Postfix uses DATA although Postern offers CHUNKING.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BdatClient } from '../helpers/bdat-client.js';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { startPostfix, type PostfixInstance } from '../helpers/postfix-instance.js';
import { swaks } from '../helpers/smtp-swaks.js';

describe('Postfix → Postern → Postfix', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway | undefined;
  let next: PostfixInstance | undefined;
  let front: PostfixInstance | undefined;
  let port: number;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-postfix-front-'));
    next = await startPostfix({ debugPeers: true });
    port = await freePort();
    gw = await startGateway(await writeGatewayConfig(dir, port, '', `smtp://127.0.0.1:${next.port}`));
    front = await startPostfix({ relayTo: { host: '127.0.0.1', port }, debugPeers: true });
  }, 60_000);
  afterAll(async () => {
    await front?.stop();
    await gw?.stop();
    await next?.stop();
    await cleanup?.();
  });

  it('a front Postfix relays into Postern, which offers it CHUNKING, and the mail reaches the next hop intact', { timeout: 60_000 }, async () => {
    const token = `front-${Date.now()}`;
    const body = `${token}\nGrüße, a second line\n.a line with a leading dot\n`;
    const r = await swaks(['--server', '127.0.0.1', '--port', String(front!.port), '--from', 'alice@example.org', '--to', 'bob@partner.example', '--header', `Subject: ${token}`, '--body', body]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const [m] = await next!.waitForMessages(1, 30_000);
    const text = m!.raw.toString('utf8');
    expect(text).toContain(`Subject: ${token}`);
    expect(text).toContain('.a line with a leading dot');
    expect(m!.recipient).toBe('bob@partner.example');
    // Postern's own Received header, for the front Postfix as its client
    expect(text).toMatch(/^Received: from \S+ \(unknown \[127\.0\.0\.1\]\)\r?\n\tby gw\.test\.example \(Postern\) with ESMTP id \w+/m);

    // What the front Postfix saw of Postern, and what it sent.
    const log = front!.log();
    expect(log).toMatch(/< \S+\[127\.0\.0\.1\](?::\d+)?: 250-CHUNKING/);
    expect(log).toMatch(/status=sent \(250 2\.0\.0 Ok: queued as \w+\)/);
    const bdat = /> \S+\[127\.0\.0\.1\](?::\d+)?: BDAT \d+ LAST/.test(log);
    const data = /> \S+\[127\.0\.0\.1\](?::\d+)?: DATA/.test(log);
    expect(bdat || data).toBe(true);
    const queued = await gw!.waitFor((l) => l.event === 'smtpd.queued' && l.sender === 'alice@example.org');
    expect(queued.chunking === true).toBe(bdat);
  });

  it('our CHUNKING test client, against Postfix smtpd: pipelined chunks are read as we frame them', { timeout: 30_000 }, async () => {
    const content = Buffer.from(`Subject: bdat to postfix\r\n\r\nfirst chunk ends inside a line -->`, 'latin1');
    const more = Buffer.from(`<-- here\r\n.\r\nQUIT\r\n8-bit: \xe9\xe8\r\nend\r\n`, 'latin1');
    const c = await BdatClient.connect(next!.port);
    await c.envelope('alice@example.org', ['carol@partner.example'], 'BODY=8BITMIME');
    const replies = await c.send([content, more.subarray(0, 10), more.subarray(10)]);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250]);
    await c.quit();
    const messages = await next!.waitForMessages(2, 20_000);
    const got = messages.find((m) => m.recipient === 'carol@partner.example')!;
    // Postfix's maildir has LF line ends and its own trace headers in front of ours
    const sent = Buffer.concat([content, more]).toString('latin1').replace(/\r\n/g, '\n');
    expect(got.raw.toString('latin1').endsWith(sent.slice(sent.indexOf('\n\n')))).toBe(true);
    expect(next!.log()).toMatch(/< \S+\[127\.0\.0\.1\](?::\d+)?: BDAT \d+ LAST/);
  });
});
