/**
 * Issue 14, fault 5: one outside address must not lock everyone out. The gateway sees 127.0.0.1
 * (and .3, .4) as outside clients and 127.0.0.2 as the internal mail server (trusted_networks);
 * Linux routes all of 127/8 to lo, and the clients bind their source address.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { waitUntil } from '../helpers/send.js';
import { SmtpTestClient, type Reply } from '../helpers/smtp-client.js';
import { startTestSmtpd, type SmtpdHarness } from '../helpers/smtp-harness.js';
import { swaks } from '../helpers/smtp-swaks.js';

const OUTSIDE = '127.0.0.1';
const INSIDE = '127.0.0.2';
const HOST = 'gw.test.example';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** EHLO, MAIL, RCPT, DATA: the client is then in the DATA phase. */
async function startData(c: SmtpTestClient, rcpt = 'alice@example.com'): Promise<void> {
  expect((await c.cmd('EHLO outside.example')).code).toBe(250);
  expect((await c.cmd('MAIL FROM:<mallory@outside.example>')).code).toBe(250);
  expect((await c.cmd(`RCPT TO:<${rcpt}>`)).code).toBe(250);
  expect((await c.cmd('DATA')).code).toBe(354);
}

describe('fault 5 over SMTP: 100 slow connections from one outside address (the real gateway)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-limits-'));
    port = await freePort();
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
    await writeFile(
      join(dir, 'postern.yaml'),
      `hostname: ${HOST}
data_dir: ./var
internal_domains: [example.com]
trusted_networks: ["${INSIDE}/32"]
workers: 1
log: { level: info }
smtp:
  listen: ["127.0.0.1:${port}"]
  max_connections: 20
  max_connections_per_client: 10
  data_timeout: 6s
relay:
  routes:
    "*": maildir:./maildir
policy: policy.yaml
admin: { listen: [] }
`,
    );
    gw = await startGateway(join(dir, 'postern.yaml'));
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await cleanup?.();
  });

  it('outsiders get 421 past their share, slow DATA gets 421 4.4.2 and leaves nothing in tmp, the internal server always gets 250', async () => {
    // 100 connections from one outside address, ten at a time (so the gate's socket cap, which
    // would close a burst without a word, stays out of this): 10 are served, 90 refused.
    const served: SmtpTestClient[] = [];
    const refused: Reply[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const clients = await Promise.all(Array.from({ length: 10 }, () => SmtpTestClient.connect(port, '127.0.0.1', OUTSIDE)));
      for (const c of clients) {
        if (c.greeting.code === 220) served.push(c);
        else {
          refused.push(c.greeting);
          await c.readUntilClosed();
        }
      }
    }
    expect(served).toHaveLength(10);
    expect(refused).toHaveLength(90);
    for (const r of refused) expect(r.raw).toBe(`421 4.7.0 ${HOST} Error: too many connections from ${OUTSIDE}`);

    // Other outside addresses fill the rest of max_connections (20); the next one is refused.
    const others = [
      ...(await Promise.all(Array.from({ length: 5 }, () => SmtpTestClient.connect(port, '127.0.0.1', '127.0.0.3')))),
      ...(await Promise.all(Array.from({ length: 5 }, () => SmtpTestClient.connect(port, '127.0.0.1', '127.0.0.4')))),
    ];
    expect(others.map((c) => c.greeting.code)).toEqual(Array(10).fill(220));
    const full = await SmtpTestClient.connect(port, '127.0.0.1', '127.0.0.5');
    expect(full.greeting.raw).toBe(`421 4.7.0 ${HOST} Error: too many connections`);
    await full.readUntilClosed();

    // The ten start a message and trickle a header line every 2 s: each line resets idle_timeout.
    for (const c of served) await startData(c);
    let line = 0;
    const trickle = setInterval(() => {
      line++;
      for (const c of served) c.write(`X-Trickle-${line}: still sending\r\n`);
    }, 2000);

    try {
      // The internal server, with every outside slot taken: swaks, an independent client.
      const token = `trusted-${Date.now()}`;
      const r = await swaks([
        '--server', '127.0.0.1', '--port', String(port), '--local-interface', INSIDE,
        '--from', 'alice@example.com', '--to', 'bob@partner.example', '--header', `Subject: ${token}`, '--body', token,
      ]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/<- {2}250 2\.0\.0 Ok: queued as \S+/);
      await maildirOf(() => dir).waitDelivered('bob@partner.example', token);
      for (const c of others) {
        c.write('QUIT\r\n');
        await c.readUntilClosed();
      }

      // data_timeout (6 s) ends every slow message, however alive the connection looks.
      for (const c of served) {
        const replies = await c.readUntilClosed(30_000);
        expect(replies.map((x) => x.raw)).toEqual([`421 4.4.2 ${HOST} Error: message not received in time; closing connection`]);
      }
    } finally {
      clearInterval(trickle);
    }
    // The answer comes only after the partial message is removed.
    expect(await readdir(join(dir, 'var', 'spool', 'tmp'))).toEqual([]);
    expect(await readdir(join(dir, 'var', 'spool', 'incoming'))).toEqual([]);

    // Their slots are free again, and every refusal was logged with its reason.
    const again = await SmtpTestClient.connect(port, '127.0.0.1', OUTSIDE);
    expect(again.greeting.code).toBe(220);
    again.write('QUIT\r\n');
    await again.readUntilClosed();
    // The gateway's log reaches us a little later than its replies (buffered stdout).
    const reasons = () => gw.logs.filter((l) => l.event === 'smtpd.reject').map((l) => l.reason);
    await waitUntil(async () => reasons().filter((x) => x === 'data_timeout').length >= 10, 10_000, 'the data_timeout log lines');
    expect(reasons().filter((x) => x === 'client_connections')).toHaveLength(90);
    expect(reasons().filter((x) => x === 'connections')).toHaveLength(1);
    expect(reasons().filter((x) => x === 'data_timeout')).toHaveLength(10);
    expect(gw.logs).toContainEqual(expect.objectContaining({ event: 'smtpd.queued', client: INSIDE }));
    // Ending the slow messages' streams cost smtpd nothing: no handler failed, no role died.
    expect(gw.logs.filter((l) => l.event === 'smtpd.internal_error' || l.event === 'supervisor.role_died')).toEqual([]);
    expect(gw.rolePids('smtpd')).toHaveLength(1);
  }, 120_000);
});

describe('limits on reload (smtpd in-process)', () => {
  it('a reload changes max_connections_per_client for the next connection; sessions already admitted stay', async () => {
    const h = await startTestSmtpd({ trusted_networks: [`${INSIDE}/32`], smtp: { max_connections_per_client: 1 } });
    try {
      const first = await SmtpTestClient.connect(h.port, '127.0.0.1', OUTSIDE);
      expect(first.greeting.code).toBe(220);
      const second = await SmtpTestClient.connect(h.port, '127.0.0.1', OUTSIDE);
      expect(second.greeting.raw).toBe(`421 4.7.0 ${HOST} Error: too many connections from ${OUTSIDE}`);
      await second.readUntilClosed();
      h.smtpd.reload({ ...h.config, smtp: { ...h.config.smtp, max_connections_per_client: 2 } });
      const third = await SmtpTestClient.connect(h.port, '127.0.0.1', OUTSIDE);
      expect(third.greeting.code).toBe(220);
      expect((await first.cmd('NOOP')).code).toBe(250);
      for (const c of [first, third]) expect((await c.cmd('QUIT')).code).toBe(221);
    } finally {
      await h.stop();
    }
  });
});

describe('session_timeout (smtpd in-process)', () => {
  let h: SmtpdHarness;
  beforeAll(async () => {
    h = await startTestSmtpd({ trusted_networks: [`${INSIDE}/32`], smtp: { session_timeout: 1500, data_timeout: 60_000 } });
  });
  afterAll(async () => h?.stop());

  /** NOOP every 300 ms until the server answers otherwise (a 421 it sent on its own comes first). */
  async function noopUntilRefused(c: SmtpTestClient, max: number): Promise<Reply[]> {
    const out: Reply[] = [];
    for (let i = 0; i < max; i++) {
      c.write('NOOP\r\n');
      const reply = await c.read();
      if (!reply) return out;
      out.push(reply);
      if (reply.code !== 250) return out;
      await sleep(300);
    }
    return out;
  }

  it('hangs up on an outside client that keeps a session open too long, with 421 4.4.2', async () => {
    const c = await SmtpTestClient.connect(h.port, '127.0.0.1', OUTSIDE);
    expect((await c.cmd('EHLO outside.example')).code).toBe(250);
    const replies = await noopUntilRefused(c, 100);
    expect(replies.at(-1)!.raw).toBe(`421 4.4.2 ${HOST} Error: session time limit exceeded; closing connection`);
    expect(await c.readUntilClosed()).toEqual([]);
    expect(h.logs).toContainEqual(expect.objectContaining({ event: 'smtpd.reject', reason: 'session_timeout', client: OUTSIDE }));
  });

  it('lets a message in DATA finish (250), then hangs up', async () => {
    const before = (await h.incoming()).length;
    const c = await SmtpTestClient.connect(h.port, '127.0.0.1', OUTSIDE);
    await startData(c);
    // Past session_timeout while in DATA.
    for (let i = 0; i < 8; i++) {
      c.write(`X-Line-${i}: slow\r\n`);
      await sleep(300);
    }
    c.write('\r\nbody\r\n.\r\n');
    expect((await c.read())!.raw).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect((await c.readUntilClosed()).map((r) => r.raw)).toEqual([`421 4.4.2 ${HOST} Error: session time limit exceeded; closing connection`]);
    expect(await h.incoming()).toHaveLength(before + 1);
  });

  it('never applies to the internal mail server (trusted_networks)', async () => {
    const c = await SmtpTestClient.connect(h.port, '127.0.0.1', INSIDE);
    expect((await c.cmd('EHLO inside.example')).code).toBe(250);
    const replies = await noopUntilRefused(c, 10); // 3 s and more, twice session_timeout
    expect(replies.map((r) => r.code)).toEqual(Array(10).fill(250));
    expect((await c.cmd('QUIT')).code).toBe(221);
  });
});
