import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpoolWriteError } from '../../src/core/index.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';
import { eventually, splitReceived, startTestSmtpd, type SmtpdHarness } from '../helpers/smtp-harness.js';
import { swaks } from '../helpers/smtp-swaks.js';
import { python3 } from '../helpers/python.js';

async function ehlo(port: number, name = 'client.test'): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connect(port);
  const r = await c.cmd(`EHLO ${name}`);
  expect(r.code).toBe(250);
  return c;
}

async function quit(c: SmtpTestClient): Promise<void> {
  c.write('QUIT\r\n');
  await c.readUntilClosed();
}

/** A message using CRLF throughout, with a leading-dot line and 8-bit text. */
const MESSAGE = Buffer.from(
  'From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: smtpd test\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
    'Grüße aus Köln\r\n.a line that starts with a dot\r\n..two dots\r\nlast line\r\n',
  'utf8',
);

describe('smtpd', () => {
  let h: SmtpdHarness; // trusted 127.0.0.0/8
  let u: SmtpdHarness; // 127.0.0.1 is not trusted

  beforeAll(async () => {
    h = await startTestSmtpd({ smtp: { max_message_size: 64 * 1024, banner: 'Postern' } });
    u = await startTestSmtpd({ trusted_networks: ['10.9.9.0/24'] });
  });
  afterAll(async () => {
    await h?.stop();
    await u?.stop();
  });

  it('greets and advertises the extensions, without STARTTLS or AUTH when no certificate is set', async () => {
    const c = await SmtpTestClient.connect(h.port);
    expect(c.greeting.raw).toBe('220 gw.test.example ESMTP Postern');
    const r = await c.cmd('EHLO client.test');
    expect(r.lines[0]).toBe('gw.test.example');
    // CHUNKING/BINARYMIME (RFC 3030) and ETRN (RFC 1985) since issue 20; REQUIRETLS only inside TLS.
    expect(r.lines.slice(1).sort()).toEqual(['8BITMIME', 'BINARYMIME', 'CHUNKING', 'DSN', 'ENHANCEDSTATUSCODES', 'ETRN', 'PIPELINING', 'SIZE 65536', 'SMTPUTF8']);
    expect((await c.cmd('STARTTLS')).raw).toMatch(/^500 5\.5\.2 /);
    expect((await c.cmd('AUTH PLAIN AGJvYgBzZWNyZXQ=')).raw).toMatch(/^500 5\.5\.2 /);
    expect((await c.cmd('XCLIENT ADDR=10.9.9.9')).code).toBe(500);
    await quit(c);
  });

  it('queues what swaks sends, byte for byte, behind exactly one Received header', async () => {
    const file = join(h.dir, 'message.eml');
    // swaks ends the DATA with its own CRLF before the final dot, so the file has none.
    await writeFile(file, MESSAGE.subarray(0, MESSAGE.length - 2));
    const r = await swaks(['--server', '127.0.0.1', '--port', String(h.port), '--from', 'alice@example.org', '--to', 'bob@example.com', '--data', `@${file}`]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const id = /250 2\.0\.0 Ok: queued as (\w+)/.exec(r.stdout)?.[1];
    expect(id).toBeTruthy();
    const entry = await h.spool.read('incoming', id!);
    const { received, rest } = splitReceived(entry.body);
    expect(rest.equals(MESSAGE)).toBe(true);
    expect(rest.toString('latin1')).not.toMatch(/^Received:/m);
    expect(received).toMatch(
      new RegExp(`^Received: from \\S+ \\(unknown \\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby gw\\.test\\.example \\(Postern\\) with ESMTP id ${id}\\r\\n\\tfor <bob@example\\.com>; \\w{3}, \\d{1,2} \\w{3} \\d{4} \\d\\d:\\d\\d:\\d\\d \\+0000\\r\\n$`),
    );
    expect(entry.meta.envelope).toMatchObject({ sender: 'alice@example.org', recipients: [{ address: 'bob@example.com' }], client: { address: '127.0.0.1', protocol: 'ESMTP', trusted: true } });
  });

  it("queues what Python's smtplib sends, byte for byte; no \"for\" with several recipients", async () => {
    // An SMTP client library that is not ours: its EHLO, its dot-stuffing, its pipelining choices.
    const script = [
      'import smtplib, sys',
      "s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='py.client.test', timeout=10)",
      "s.ehlo(); s.mail('alice@example.org'); s.rcpt('bob@example.com'); s.rcpt('carol@example.com')",
      'code, resp = s.data(sys.stdin.buffer.read())',
      "print(code, resp.decode()); s.quit()",
    ].join('\n');
    const out = await new Promise<string>((resolve, reject) => {
      const p = execFile(python3(), ['-c', script, String(h.port)], (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout.trim())));
      p.stdin!.end(MESSAGE);
    });
    const id = /^250 2\.0\.0 Ok: queued as (\w+)$/.exec(out)?.[1];
    expect(id, out).toBeTruthy();
    const entry = await h.spool.read('incoming', id!);
    const { received, rest } = splitReceived(entry.body);
    expect(rest.equals(MESSAGE)).toBe(true);
    expect(received).toMatch(/^Received: from py\.client\.test \(unknown \[127\.0\.0\.1\]\)\r\n\tby gw\.test\.example \(Postern\) with ESMTP id \w+;\r\n\t\w{3}, /);
    expect(received).not.toContain('for <');
    expect(entry.meta.envelope.recipients.map((r) => r.address)).toEqual(['bob@example.com', 'carol@example.com']);
  });

  it('refuses to relay for an untrusted client (554 5.7.1), accepts its mail to internal domains', async () => {
    const c = await ehlo(u.port);
    expect((await c.cmd('MAIL FROM:<spammer@example.net>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<victim@example.org>')).raw).toBe('554 5.7.1 relay access denied');
    expect((await c.cmd('RCPT TO:<victim@sub.example.com>')).raw).toBe('554 5.7.1 relay access denied');
    expect((await c.cmd('RCPT TO:<bob@EXAMPLE.COM>')).raw).toBe('250 2.1.5 Accepted');
    expect((await c.cmd('DATA')).code).toBe(354);
    const r = await c.cmd('Subject: hi\r\n\r\nhello\r\n.');
    expect(r.raw).toMatch(/^250 2\.0\.0 Ok: queued as \w+$/);
    await quit(c);
    const entries = await u.incoming();
    expect(entries).toHaveLength(1);
    expect(entries[0]!.meta.envelope.recipients).toEqual([{ address: 'bob@example.com' }]);
    expect(entries[0]!.meta.envelope.client.trusted).toBe(false);
    expect(u.logs).toContainEqual(expect.objectContaining({ event: 'smtpd.reject', reason: 'relay', client: '127.0.0.1', reply: '554 5.7.1 relay access denied' }));
  });

  it('lets a trusted client relay to any domain', async () => {
    const c = await ehlo(h.port);
    expect((await c.cmd('MAIL FROM:<alice@example.com>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<someone@elsewhere.example.net>')).raw).toBe('250 2.1.5 Accepted');
    expect((await c.cmd('DATA')).code).toBe(354);
    expect((await c.cmd('Subject: out\r\n\r\nbye\r\n.')).code).toBe(250);
    await quit(c);
  });

  it('keeps DSN, BODY and SMTPUTF8 parameters in the envelope', async () => {
    const c = await ehlo(h.port);
    expect((await c.cmd('MAIL FROM:<dsn@example.org> RET=HDRS ENVID=QQ+2B314159 BODY=8BITMIME SMTPUTF8 SIZE=100')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<bob@example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob+40example.com')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<carol@example.com> NOTIFY=NEVER')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<dave@example.com> NOTIFY=NEVER,SUCCESS')).raw).toMatch(/^501 5\.5\.4 /);
    expect((await c.cmd('RCPT TO:<dave@example.com> NOTIFY=SOMETIMES')).raw).toMatch(/^501 5\.5\.4 /);
    expect((await c.cmd('RCPT TO:<dave@example.com> FOO=bar')).raw).toBe('555 5.5.4 unsupported RCPT TO parameter');
    expect((await c.cmd('DATA')).code).toBe(354);
    const r = await c.cmd('Subject: dsn\r\n\r\nx\r\n.');
    const id = /queued as (\w+)/.exec(r.raw)![1]!;
    await quit(c);
    const { meta } = await h.spool.read('incoming', id);
    expect(meta.envelope).toMatchObject({
      sender: 'dsn@example.org',
      ret: 'HDRS',
      envid: 'QQ+2B314159',
      body: '8BITMIME',
      smtputf8: true,
      recipients: [
        { address: 'bob@example.com', notify: ['SUCCESS', 'DELAY'], orcpt: 'rfc822;bob@example.com' },
        { address: 'carol@example.com', notify: ['NEVER'] },
      ],
      client: { protocol: 'UTF8SMTP' },
    });
  });

  it('refuses unknown MAIL parameters (REQUIRETLS included) and SIZE= over the limit at MAIL', async () => {
    const c = await ehlo(h.port);
    expect((await c.cmd('MAIL FROM:<a@example.org> FOO=1')).raw).toBe('555 5.5.4 unsupported MAIL FROM parameter');
    expect((await c.cmd('MAIL FROM:<a@example.org> SIZE=65537')).raw).toMatch(/^552 5\.3\.4 /);
    expect((await c.cmd('MAIL FROM:<a@example.org> SIZE=65536')).raw).toBe('250 2.1.0 Accepted');
    await quit(c);
  });

  it('refuses a message over the size limit after DATA and spools nothing', async () => {
    const before = (await h.incoming()).length;
    const c = await ehlo(h.port);
    await c.cmd('MAIL FROM:<big@example.org>');
    await c.cmd('RCPT TO:<bob@example.com>');
    expect((await c.cmd('DATA')).code).toBe(354);
    const line = 'x'.repeat(998) + '\r\n';
    c.write(`Subject: big\r\n\r\n${line.repeat(100)}.\r\n`);
    expect((await c.read())!.raw).toBe('552 5.3.4 message exceeds fixed maximum message size');
    // the session goes on
    expect((await c.cmd('NOOP')).code).toBe(250);
    await quit(c);
    expect(await h.incoming()).toHaveLength(before);
    expect(await h.tmpFiles()).toEqual([]);
  });

  it('answers 452 4.5.3 to the 101st recipient', async () => {
    const c = await ehlo(h.port);
    await c.cmd('MAIL FROM:<many@example.org>');
    let cmds = '';
    for (let i = 1; i <= 101; i++) cmds += `RCPT TO:<r${i}@example.com>\r\n`;
    c.write(cmds); // pipelined
    const replies = [];
    for (let i = 1; i <= 101; i++) replies.push((await c.read())!);
    expect(replies.slice(0, 100).every((r) => r.raw === '250 2.1.5 Accepted')).toBe(true);
    expect(replies[100]!.raw).toMatch(/^452 4\.5\.3 /);
    expect((await c.cmd('DATA')).code).toBe(354);
    expect((await c.cmd('Subject: many\r\n\r\nx\r\n.')).code).toBe(250);
    await quit(c);
  });

  it('leaves nothing in incoming/ or tmp/ when the client hangs up in the middle of DATA', async () => {
    const before = (await h.incoming()).length;
    const c = await ehlo(h.port);
    await c.cmd('MAIL FROM:<gone@example.org>');
    await c.cmd('RCPT TO:<bob@example.com>');
    expect((await c.cmd('DATA')).code).toBe(354);
    c.write('Subject: half\r\n\r\n' + 'data line\r\n'.repeat(5000));
    await eventually(async () => (await h.tmpFiles()).length > 0);
    c.destroy();
    await eventually(async () => (await h.tmpFiles()).length === 0);
    expect(await h.incoming()).toHaveLength(before);
    await eventually(async () => h.logs.some((l) => l.event === 'smtpd.reject' && l.reason === 'disconnect'));
  });

  it('answers 451 4.3.0 when the spool cannot store the message, so the client retries', async () => {
    const real = h.spool.createIncoming.bind(h.spool);
    h.spool.createIncoming = async () => {
      throw new SpoolWriteError(new Error('ENOSPC: no space left on device'));
    };
    const c = await ehlo(h.port);
    try {
      await c.cmd('MAIL FROM:<retry@example.org>');
      await c.cmd('RCPT TO:<bob@example.com>');
      await c.cmd('DATA');
      expect((await c.cmd('Subject: full disk\r\n\r\nx\r\n.')).raw).toBe('451 4.3.0 local error in processing; try again later');
      // a failing commit (fsync/rename) is answered the same way
      h.spool.createIncoming = async (env) => {
        const w = await real(env);
        w.commit = async () => {
          await w.abort();
          throw new SpoolWriteError(new Error('EIO'));
        };
        return w;
      };
      await c.cmd('MAIL FROM:<retry@example.org>');
      await c.cmd('RCPT TO:<bob@example.com>');
      await c.cmd('DATA');
      expect((await c.cmd('Subject: bad disk\r\n\r\nx\r\n.')).raw).toBe('451 4.3.0 local error in processing; try again later');
    } finally {
      h.spool.createIncoming = real;
    }
    // the retry works
    await c.cmd('MAIL FROM:<retry@example.org>');
    await c.cmd('RCPT TO:<bob@example.com>');
    await c.cmd('DATA');
    expect((await c.cmd('Subject: retry\r\n\r\nx\r\n.')).code).toBe(250);
    await quit(c);
    expect(await h.tmpFiles()).toEqual([]);
  });

  it('logs one line per queued message and per rejection, never the body', async () => {
    const queued = h.logs.filter((l) => l.event === 'smtpd.queued');
    expect(queued.length).toBe((await h.incoming()).length);
    for (const l of queued) {
      expect(l).toEqual(expect.objectContaining({ queueId: expect.any(String), client: '127.0.0.1', sender: expect.any(String), recipients: expect.any(Number), size: expect.any(Number) }));
    }
    expect(h.logs.filter((l) => l.event === 'smtpd.reject').map((l) => l.reason)).toEqual(expect.arrayContaining(['size', 'spool', 'disconnect', 'parameter']));
    const all = JSON.stringify(h.logs);
    expect(all).not.toContain('Grüße');
    expect(all).not.toContain('data line');
  });
});

describe('smtpd limits, shutdown and reload', () => {
  it('answers 421 4.7.0 to a client over max_connections', async () => {
    const h = await startTestSmtpd({ smtp: { max_connections: 2 } });
    try {
      const a = await SmtpTestClient.connect(h.port);
      const b = await SmtpTestClient.connect(h.port);
      const c = await SmtpTestClient.connect(h.port);
      expect(c.greeting.raw).toBe('421 4.7.0 gw.test.example Error: too many connections');
      await c.readUntilClosed();
      await quit(a);
      const d = await SmtpTestClient.connect(h.port); // a slot is free again
      expect(d.greeting.code).toBe(220);
      await quit(b);
      await quit(d);
    } finally {
      await h.stop();
    }
  });

  it('listens on every configured address and fails to start on a port in use', async () => {
    const h = await startTestSmtpd({ smtp: { listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0 }] } });
    try {
      expect(h.smtpd.addresses).toHaveLength(2);
      for (const a of h.smtpd.addresses) {
        const c = await SmtpTestClient.connect(a.port, a.host);
        expect(c.greeting.code).toBe(220);
        await quit(c);
      }
      const taken = h.smtpd.addresses[1]!.port;
      await expect(startTestSmtpd({ smtp: { listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: taken }] } })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await h.stop();
    }
  });

  it('closes a client that stays silent for idle_timeout', async () => {
    const h = await startTestSmtpd({ smtp: { idle_timeout: 300 } });
    try {
      const c = await ehlo(h.port);
      const started = Date.now();
      expect((await c.read())!.raw).toMatch(/^421 4\.4\.2 /);
      await c.closed;
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    } finally {
      await h.stop();
    }
  });

  it('close() lets a message in DATA finish, sends idle clients away, then stops listening', async () => {
    const h = await startTestSmtpd();
    const idle = await ehlo(h.port);
    const busy = await ehlo(h.port);
    await busy.cmd('MAIL FROM:<late@example.org>');
    await busy.cmd('RCPT TO:<bob@example.com>');
    expect((await busy.cmd('DATA')).code).toBe(354);
    busy.write('Subject: in flight\r\n\r\nfirst half\r\n');
    await new Promise((r) => setTimeout(r, 50));
    const closed = h.smtpd.close(5000);
    expect((await idle.read())!.raw).toBe('421 4.3.2 gw.test.example service shutting down');
    busy.write('second half\r\n.\r\n');
    expect((await busy.read())!.raw).toMatch(/^250 2\.0\.0 Ok: queued as \w+$/);
    busy.write('QUIT\r\n');
    await busy.readUntilClosed();
    await closed;
    expect(await h.incoming()).toHaveLength(1);
    await expect(SmtpTestClient.connect(h.port)).rejects.toThrow();
    await h.stop();
  });

  it('reload() changes relay control for new sessions; open sessions keep theirs', async () => {
    const h = await startTestSmtpd({ trusted_networks: ['10.9.9.0/24'] });
    try {
      const old = await ehlo(h.port);
      h.smtpd.reload({ ...h.config, internal_domains: ['example.com', 'example.net'] });
      const fresh = await ehlo(h.port);
      for (const c of [old, fresh]) await c.cmd('MAIL FROM:<x@example.org>');
      expect((await old.cmd('RCPT TO:<a@example.net>')).code).toBe(554);
      expect((await fresh.cmd('RCPT TO:<a@example.net>')).code).toBe(250);
      // an unusable config is refused and the running one kept
      h.smtpd.reload({ ...h.config, trusted_networks: ['not-a-network'] });
      expect(h.logs).toContainEqual(expect.objectContaining({ event: 'smtpd.reload_rejected' }));
      const after = await ehlo(h.port);
      await after.cmd('MAIL FROM:<x@example.org>');
      expect((await after.cmd('RCPT TO:<a@example.net>')).code).toBe(250);
      for (const c of [old, fresh, after]) await quit(c);
    } finally {
      await h.stop();
    }
  });
});

describe('smtpd with STARTTLS', () => {
  let h: SmtpdHarness;
  let certDir: { dir: string; cleanup: () => Promise<void> };

  beforeAll(async () => {
    const { tempDir } = await import('../helpers/config.js');
    certDir = await tempDir('postern-smtpd-tls-');
    const key = join(certDir.dir, 'tls.key');
    const cert = join(certDir.dir, 'tls.crt');
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=test', '-days', '1', '-keyout', key, '-out', cert]);
    h = await startTestSmtpd({ smtp: { tls: { cert, key } } });
  });
  afterAll(async () => {
    await h?.stop();
    await certDir?.cleanup();
  });

  it('offers STARTTLS with the configured certificate', async () => {
    const c = await ehlo(h.port);
    const r = await c.cmd('EHLO again.test');
    expect(r.lines).toContain('STARTTLS');
    await quit(c);
  });

  it('accepts mail over TLS from swaks and says so in the Received header', async () => {
    const r = await swaks(['--server', '127.0.0.1', '--port', String(h.port), '--tls', '--from', 'alice@example.org', '--to', 'bob@example.com', '--body', 'over tls']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const id = /250 2\.0\.0 Ok: queued as (\w+)/.exec(r.stdout)![1]!;
    const entry = await h.spool.read('incoming', id);
    const { received } = splitReceived(entry.body);
    // Postfix's layout (its key exchange and signature lines are tested in smtpd-tls-received).
    expect(received).toMatch(/^Received: from \S+ \(unknown \[127\.0\.0\.1\]\)\r\n\t\(using TLSv1\.[23] with cipher [A-Z0-9_-]+ \(\d+\/\d+ bits\)(\r\n\t [^\r\n]+)?\)\r\n\t\(No client certificate requested\)\r\n\tby gw\.test\.example \(Postern\) with ESMTPS id /);
    expect(entry.meta.envelope.client).toMatchObject({ protocol: 'ESMTPS', tls: { protocol: expect.stringMatching(/^TLSv1\.[23]$/) } });
  });
});
