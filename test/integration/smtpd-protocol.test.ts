/**
 * Postern's own ESMTP layer where smtp-server used to decide: command line limits (RFC 5321
 * 4.5.3.1.4), VRFY that says nothing, too many errors, STARTTLS that throws away what was
 * pipelined in clear (CVE-2011-0411), REQUIRETLS only inside TLS (RFC 8689), and the ETRN
 * replies of RFC 1985 (the delivery it starts is tested against a real gateway in
 * smtpd-etrn.test.ts).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTls } from '../helpers/bdat-client.js';
import { tempDir } from '../helpers/config.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';
import { startTestSmtpd, type SmtpdHarness } from '../helpers/smtp-harness.js';

const run = promisify(execFile);

async function ehlo(port: number): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connect(port);
  expect((await c.cmd('EHLO client.test')).code).toBe(250);
  return c;
}

describe('smtpd protocol', () => {
  let h: SmtpdHarness; // trusted
  let u: SmtpdHarness; // 127.0.0.1 untrusted
  let certs: { dir: string; cleanup: () => Promise<void> };

  beforeAll(async () => {
    certs = await tempDir('postern-smtpd-protocol-');
    const key = join(certs.dir, 'tls.key');
    const cert = join(certs.dir, 'tls.crt');
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=gw.test.example', '-days', '1', '-keyout', key, '-out', cert]);
    h = await startTestSmtpd({ smtp: { tls: { cert, key } } });
    u = await startTestSmtpd({ trusted_networks: ['10.9.9.0/24'] });
  });
  afterAll(async () => {
    await h?.stop();
    await u?.stop();
    await certs?.cleanup();
  });

  it('refuses a command line over 512 octets (MAIL and RCPT have room for their parameters)', async () => {
    const c = await ehlo(h.port);
    expect((await c.cmd(`NOOP ${'x'.repeat(505)}`)).code).toBe(250); // 512 with CRLF
    expect((await c.cmd(`NOOP ${'x'.repeat(506)}`)).raw).toBe('500 5.5.2 Error: line too long');
    expect((await c.cmd(`MAIL FROM:<a@example.org> ENVID=${'e'.repeat(100)} SIZE=100 RET=HDRS BODY=8BITMIME AUTH=<> ${' '.repeat(500)}`)).code).toBe(250);
    expect((await c.cmd(`RCPT TO:<${'r'.repeat(60)}@example.com> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;${'o'.repeat(400)}@example.com`)).code).toBe(250);
    // a line that never ends is not buffered: it is answered once its end comes
    c.write('X'.repeat(100_000));
    expect((await c.cmd('Y')).raw).toBe('500 5.5.2 Error: line too long');
    expect((await c.cmd('NOOP')).code).toBe(250);
    c.write('QUIT\r\n');
    await c.readUntilClosed();
  });

  it('answers VRFY with 252 and no information, HELP with 214, and knows no AUTH, XCLIENT, XFORWARD', async () => {
    const c = await ehlo(h.port);
    const a = await c.cmd('VRFY bob@example.com');
    const b = await c.cmd('VRFY nosuchuser');
    expect(a.raw).toMatch(/^252 2\.5\.2 /);
    expect(b.raw).toBe(a.raw);
    expect((await c.cmd('VRFY')).code).toBe(501);
    expect((await c.cmd('HELP')).code).toBe(214);
    for (const cmd of ['AUTH PLAIN AGJvYgBzZWNyZXQ=', 'XCLIENT ADDR=10.9.9.9', 'XFORWARD ADDR=10.9.9.9', 'WIZ', 'SHELL']) expect((await c.cmd(cmd)).raw).toBe('500 5.5.2 Error: command not recognized');
    c.write('QUIT\r\n');
    await c.readUntilClosed();
  });

  it('hangs up after 10 protocol errors, and answers nothing pipelined after that', async () => {
    const c = await ehlo(h.port);
    c.write('BOGUS\r\n'.repeat(9) + 'RCPT TO:<x@example.com>\r\nNOOP\r\nNOOP\r\n');
    const replies = await c.readUntilClosed();
    expect(replies.map((r) => r.code)).toEqual([...Array(9).fill(500), 503, 421]);
    expect(replies.at(-1)!.raw).toBe('421 4.7.0 gw.test.example Error: too many errors');
  });

  it('answers 221 to QUIT and reads nothing after it', async () => {
    const c = await ehlo(h.port);
    c.write('QUIT\r\nNOOP\r\nMAIL FROM:<a@example.org>\r\n');
    expect((await c.readUntilClosed()).map((r) => r.raw)).toEqual(['221 2.0.0 Bye']);
  });

  it('throws away commands pipelined behind STARTTLS in clear (CVE-2011-0411)', async () => {
    const c = await ehlo(h.port);
    c.write('STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n');
    const r = await c.read();
    expect(r!.raw).toBe('220 2.0.0 Ready to start TLS');
    c.socket.removeAllListeners('data');
    const { connect } = await import('node:tls');
    const tls = connect({ socket: c.socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', () => resolve());
      tls.once('error', reject);
    });
    let got = '';
    tls.on('data', (d: Buffer) => (got += d.toString('latin1')));
    // inside TLS the session starts over: no HELO yet, no transaction
    tls.write('RCPT TO:<bob@example.com>\r\nEHLO again.test\r\nRCPT TO:<bob@example.com>\r\nQUIT\r\n');
    await new Promise((resolve) => tls.once('close', resolve));
    const codes = got.split('\r\n').filter((l) => /^\d{3} /.test(l)).map((l) => l.slice(0, 3));
    expect(codes).toEqual(['503', '250', '503', '221']);
    expect(got).toContain('503 5.5.1 Error: send HELO/EHLO first');
    expect(got).toContain('503 5.5.1 Error: need MAIL command');
  });

  it('accepts REQUIRETLS only inside TLS (RFC 8689), and keeps it in the envelope', async () => {
    const c = await SmtpTestClient.connect(h.port);
    const plain = await c.cmd('EHLO client.test');
    expect(plain.lines).toContain('STARTTLS');
    expect(plain.lines).not.toContain('REQUIRETLS');
    expect((await c.cmd('MAIL FROM:<alice@example.org> REQUIRETLS')).raw).toMatch(/^530 5\.7\.10 /);
    const { tls, cmd } = await startTls(c);
    const e = await cmd('EHLO client.test');
    expect(e.split('\r\n')).toContain('250-REQUIRETLS');
    expect(e).not.toContain('STARTTLS');
    expect(await cmd('MAIL FROM:<alice@example.org> REQUIRETLS=yes')).toMatch(/^501 5\.5\.4 /);
    expect(await cmd('MAIL FROM:<alice@example.org> REQUIRETLS')).toBe('250 2.1.0 Accepted');
    expect(await cmd('RCPT TO:<bob@example.com>')).toBe('250 2.1.5 Accepted');
    expect(await cmd('DATA')).toMatch(/^354 /);
    const done = await cmd('Subject: requiretls\r\n\r\nhello\r\n.');
    const id = /queued as (\w+)/.exec(done)![1]!;
    expect(await cmd('QUIT')).toBe('221 2.0.0 Bye');
    tls.destroy();
    const { meta } = await h.spool.read('incoming', id);
    expect(meta.envelope).toMatchObject({ requireTls: true, client: { protocol: 'ESMTPS' } });
  });

  it('ETRN: 501 without a domain, 503 inside a transaction, 459 for #queues, 251 with nothing deferred', async () => {
    const c = await ehlo(h.port);
    expect((await c.cmd('ETRN')).raw).toMatch(/^501 5\.5\.4 /);
    expect((await c.cmd('ETRN not a domain')).raw).toMatch(/^501 5\.5\.4 /);
    expect((await c.cmd('ETRN #outbound')).raw).toMatch(/^459 4\.3\.0 Node #outbound not allowed/);
    expect((await c.cmd('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.cmd('ETRN example.net')).raw).toMatch(/^503 5\.5\.1 /);
    expect((await c.cmd('RSET')).code).toBe(250);
    expect((await c.cmd('ETRN @example.net')).raw).toBe('251 2.0.0 OK, no messages waiting for node @example.net');
    // one scan of the deferred queue a second: the next one at once is told to come back
    expect((await c.cmd('ETRN example.net')).raw).toMatch(/^458 4\.3\.0 Unable to queue messages for node example\.net/);
    c.write('QUIT\r\n');
    await c.readUntilClosed();
    expect(h.logs).toContainEqual(expect.objectContaining({ event: 'smtpd.etrn', node: '@example.net', messages: 0 }));
  });

  it('ETRN: refused to a client outside trusted_networks (459), logged', async () => {
    const c = await ehlo(u.port);
    expect((await c.cmd('ETRN example.com')).raw).toBe('459 4.7.1 Node example.com not allowed: client not in trusted_networks');
    c.write('QUIT\r\n');
    await c.readUntilClosed();
    expect(u.logs).toContainEqual(expect.objectContaining({ event: 'smtpd.reject', reason: 'etrn', client: '127.0.0.1' }));
  });
});
