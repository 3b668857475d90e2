/**
 * The whole gateway (smtpd → spool → worker → relay) delivering to two private real Postfix next
 * hops: `full` announces SMTPUTF8 and DSN (Postfix's defaults), `plain` announces neither
 * (smtputf8_enable = no, smtpd_discard_ehlo_keywords = dsn). Postfix's log (debug_peer_list) and
 * maildir are the oracle.
 *
 * SMTPUTF8 (RFC 6531): UTF-8 addresses and header fields reach `full` under SMTPUTF8, also when
 * only the header fields need it; `plain` gets an IDN domain in its A-label form, and a UTF-8
 * local part, which has no ASCII form, bounces 5.6.7 with nothing sent.
 *
 * DSN (RFC 3461): NOTIFY, ORCPT, RET and ENVID reach `full` (in its log), and the success notice
 * is then Postfix's own, none of ours; `plain` gets none of them, and Postern sends the
 * "relayed" notice (§4).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { tempDir } from '../helpers/config.js';
import { parseDsn } from '../helpers/dsn-parse.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { startPostfix, type PostfixInstance, type PostfixMessage } from '../helpers/postfix-instance.js';
import { waitUntil } from '../helpers/send.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';

describe('relay to a real Postfix next hop: SMTPUTF8 and DSN', () => {
  let full: PostfixInstance;
  let plain: PostfixInstance;
  let gw: Gateway;
  let port: number;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    [full, plain] = await Promise.all([
      startPostfix({ debugPeers: true }),
      startPostfix({ debugPeers: true, smtputf8: false, mainCf: ['smtpd_discard_ehlo_keywords = dsn'] }),
    ]);
    const t = await tempDir('postern-postfix-next-hop-');
    cleanup = t.cleanup;
    port = await freePort();
    const config = await writeGatewayConfig(t.dir, port);
    const hop = (p: PostfixInstance) => `smtp://${p.host}:${p.port}`;
    // example.com (our side: bounces and notices to alice) is kept by `full` too.
    const routes = ['utf8.example', 'dsn.example', 'example.com'].map((d) => `    ${d}: ${hop(full)}\n`).join('') + ['plain.example', 'xn--bcher-kva.example', 'nodsn.example'].map((d) => `    ${d}: ${hop(plain)}\n`).join('');
    await writeFile(config, (await readFile(config, 'utf8')).replace('relay:\n  routes:\n', `relay:\n  routes:\n${routes}`));
    gw = await startGateway(config);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await Promise.all([full?.stop(), plain?.stop()]);
    await cleanup?.();
  });

  /** One message from a trusted client, the MAIL and RCPT lines as given; its queue id. */
  async function send(mail: string, rcpts: string[], body: string): Promise<string> {
    const c = await SmtpTestClient.connect(port);
    try {
      expect((await c.cmd('EHLO client.test')).code).toBe(250);
      expect((await c.cmd(mail, true)).code).toBe(250);
      for (const r of rcpts) expect((await c.cmd(r, true)).code, r).toBe(250);
      expect((await c.cmd('DATA')).code).toBe(354);
      c.write(Buffer.from(body.replace(/\n/g, '\r\n') + '\r\n.\r\n', 'utf8'));
      const done = await c.read();
      expect(done?.code).toBe(250);
      await c.cmd('QUIT').catch(() => undefined);
      return /queued as (\S+)/.exec(done!.raw)![1]!;
    } finally {
      c.destroy();
    }
  }
  const find = async (p: PostfixInstance, pred: (m: PostfixMessage) => boolean, what: string): Promise<PostfixMessage> => {
    let found: PostfixMessage | undefined;
    await waitUntil(async () => (found = p.messages().find(pred)) !== undefined, 20_000, `${what}; log:\n${p.log().slice(-3000)}`);
    return found!;
  };
  const has = (m: PostfixMessage, s: string) => m.raw.toString('utf8').includes(s);

  describe('SMTPUTF8', () => {
    it('UTF-8 addresses and header fields reach a next hop that announces SMTPUTF8', async () => {
      await send('MAIL FROM:<jörg@example.com> SMTPUTF8', ['RCPT TO:<ünïcode@utf8.example>'], 'From: Jörg <jörg@example.com>\nTo: ünïcode@utf8.example\nSubject: Grüße aus Köln\n\nu1 body');
      const m = await find(full, (x) => has(x, 'u1 body'), 'u1 at full');
      expect(m.recipient).toBe('ünïcode@utf8.example');
      expect(m.sender).toBe('jörg@example.com');
      expect(m.raw.toString('utf8')).toContain('Subject: Grüße aus Köln');
      expect(full.log()).toMatch(/< \S+: MAIL FROM:<jörg@example\.com> .*SMTPUTF8/);
    });

    it('SMTPUTF8 is passed on for UTF-8 header fields even when every address is ASCII', async () => {
      await send('MAIL FROM:<alice@example.com> SMTPUTF8', ['RCPT TO:<bob@utf8.example>'], 'From: Alice <alice@example.com>\nTo: Bøb <bob@utf8.example>\nSubject: Smørrebrød\n\nu2 body');
      const m = await find(full, (x) => has(x, 'u2 body'), 'u2 at full');
      expect(m.raw.toString('utf8')).toContain('To: Bøb <bob@utf8.example>');
      expect(full.log()).toMatch(/< \S+: MAIL FROM:<alice@example\.com> .*SMTPUTF8/);
    });

    it('a next hop without SMTPUTF8 gets an IDN domain in its A-label form', async () => {
      await send('MAIL FROM:<alice@example.com> SMTPUTF8', ['RCPT TO:<bob@bücher.example>'], 'From: alice@example.com\nTo: bob@bücher.example\nSubject: idn\n\nu3 body');
      const m = await find(plain, (x) => has(x, 'u3 body'), 'u3 at plain');
      expect(m.recipient).toBe('bob@xn--bcher-kva.example');
      expect(plain.log()).toMatch(/< \S+: RCPT TO:<bob@xn--bcher-kva\.example>/);
      expect(plain.log()).not.toMatch(/SMTPUTF8/);
    });

    it('a UTF-8 local part to a next hop without SMTPUTF8 bounces 5.6.7, nothing sent', async () => {
      await send('MAIL FROM:<alice@example.com> SMTPUTF8', ['RCPT TO:<jörg@plain.example>'], 'From: alice@example.com\nTo: jörg@plain.example\nSubject: u4\n\nu4 body');
      const bounce = await find(full, (x) => x.recipient === 'alice@example.com' && x.sender === '' && has(x, 'Subject: u4'), 'bounce of u4');
      const dsn = await parseDsn(bounce.raw);
      // A UTF-8 address in the report: RFC 6533's global type.
      expect(dsn.reportType).toBe('global-delivery-status');
      expect(dsn.recipients).toEqual([
        expect.objectContaining({ 'final-recipient': 'utf-8; jörg@plain.example', status: '5.6.7', 'diagnostic-code': 'X-Postern; SMTPUTF8 is required, but was not offered by host 127.0.0.1[127.0.0.1]' }),
      ]);
      expect(plain.log()).not.toContain('jörg');
      expect(plain.messages().some((x) => has(x, 'u4 body'))).toBe(false);
    });
  });

  describe('DSN', () => {
    it('NOTIFY, ORCPT, RET and ENVID reach a Postfix that announces DSN; its success notice is the one, none from Postern', async () => {
      const id = await send('MAIL FROM:<alice@example.com> RET=HDRS ENVID=QQ+2B314', ['RCPT TO:<bob@dsn.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2BTeam@dsn.example'], 'From: alice@example.com\nTo: bob@dsn.example\nSubject: d1\n\nd1 body');
      await find(full, (x) => has(x, 'd1 body'), 'd1 at full');
      expect(full.log()).toMatch(/< \S+: MAIL FROM:<alice@example\.com> .*RET=HDRS ENVID=QQ\+2B314/);
      expect(full.log()).toMatch(/< \S+: RCPT TO:<bob@dsn\.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob\+2BTeam@dsn\.example/);
      // Postfix's own "delivered" notice, with the ENVID and ORCPT it was given.
      const notice = await find(full, (x) => x.recipient === 'alice@example.com' && x.sender === '' && has(x, 'Original-Envelope-Id: QQ+314'), 'Postfix success notice');
      const dsn = await parseDsn(notice.raw);
      expect(dsn.from).toMatch(/MAILER-DAEMON@postfix-/);
      expect(dsn.recipients[0]).toMatchObject({ action: 'delivered', 'original-recipient': 'rfc822;Bob+Team@dsn.example' });
      // Notices are queued before the entry goes, so once it is delivered any notice of ours is logged.
      await waitUntil(async () => gw.logs.some((l) => l.event === 'relay.delivered' && l.queueId === id), 10_000, 'relay.delivered');
      expect(gw.logs.filter((l) => l.event === 'relay.dsn' && l.queueId === id)).toEqual([]);
    });

    it('a Postfix without DSN gets none of the parameters, and Postern sends the "relayed" notice', async () => {
      const id = await send('MAIL FROM:<alice@example.com> RET=HDRS ENVID=QQ+2B315', ['RCPT TO:<carol@nodsn.example> NOTIFY=SUCCESS ORCPT=rfc822;carol@nodsn.example'], 'From: alice@example.com\nTo: carol@nodsn.example\nSubject: d2\n\nd2 body');
      await find(plain, (x) => has(x, 'd2 body'), 'd2 at plain');
      expect(plain.log()).toMatch(/< \S+: RCPT TO:<carol@nodsn\.example>\s*$/m);
      expect(plain.log()).not.toMatch(/NOTIFY=|ENVID=/);
      const notice = await find(full, (x) => x.recipient === 'alice@example.com' && x.sender === '' && has(x, 'Original-Envelope-Id: QQ+315'), 'Postern relayed notice');
      const dsn = await parseDsn(notice.raw);
      expect(dsn.from).toContain('MAILER-DAEMON@gw.test.example');
      expect(dsn.recipients[0]).toMatchObject({ 'final-recipient': 'rfc822; carol@nodsn.example', action: 'relayed' });
      expect(gw.logs.filter((l) => l.event === 'relay.dsn' && l.queueId === id)).toEqual([expect.objectContaining({ kind: 'success' })]);
    });
  });
});
