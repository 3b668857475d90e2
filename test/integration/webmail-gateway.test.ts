/**
 * Webmail end to end through the running gateway (issue 17), over SMTP into a maildir: the first
 * message for an outside recipient makes the mailbox; the sender's notice holds its password; the
 * recipient's notice holds the link and nothing of the message; the stored message opens with the
 * told password (unwrapAccountKey + openForAccount) and is what was sent; a second message sends
 * a second notice and no second password; a byte scan of portal.db finds no subject, body or
 * attachment; the null sender's first message is held; `postern webmail reset|list|delete` and
 * `policy explain` do what they say.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/index.js';
import { openPortalDb, type PortalDb, type WebmailAccount } from '../../src/keystore/portal-db.js';
import { openForAccount, unwrapAccountKey, webmailBodyAad, webmailSummaryAad } from '../../src/keystore/webmail-crypto.js';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { parseMail } from '../helpers/mail-parse.js';
import { sendRaw, waitUntil } from '../helpers/send.js';

const SUBJECT_MARK = 'Quarterly-subject-kx41';
const BODY_MARK = 'body-marker-zanzibar9';
const ATTACHMENT_MARK = 'attachment-marker-q7w3';

describe('webmail through the gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let config: string;
  let portal: PortalDb;
  const md = maildirOf(() => dir);

  /** `postern ARGS` in this process (the gateway runs from dist/; the commands only need the config). */
  const cli = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli([...args, '-c', config], 'postern', { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  };
  const ok = async (args: string[]) => {
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(0);
    return r;
  };
  /** The delivered files for `rcpt` that contain `token`, oldest first. */
  async function deliveries(rcpt: string, token: string): Promise<string[]> {
    const nd = join(dir, 'maildir', 'new');
    const out: { f: string; t: number }[] = [];
    for (const n of await readdir(nd).catch(() => [] as string[])) {
      const text = await readFile(join(nd, n), 'latin1');
      if (text.includes(`\r\nDelivered-To: ${rcpt}\r\n`) && text.includes(token)) out.push({ f: join(nd, n), t: Number(n.split('.')[0]) });
    }
    return out.sort((a, b) => a.t - b.t).map((x) => x.f);
  }
  async function waitCount(rcpt: string, token: string, n: number): Promise<string[]> {
    let files: string[] = [];
    await waitUntil(async () => (files = await deliveries(rcpt, token)).length >= n, 20_000, `${n} deliveries of ${token} to ${rcpt}`);
    return files;
  }
  /** The password in the notice to `sender` about `rcpt`'s mailbox. */
  async function toldPassword(sender: string, rcpt: string): Promise<string> {
    const file = await md.waitDelivered(sender, `the webmail mailbox of ${rcpt}`);
    const p = await parseMail(await readFile(file));
    return /\n {4}(\S+)\r?\n/.exec(p.payload!.toString('utf8'))![1]!;
  }
  async function account(address: string): Promise<WebmailAccount> {
    let a: WebmailAccount | null = null;
    await waitUntil(async () => (a = await portal.account(address)) !== null, 20_000, `the mailbox of ${address}`);
    return a!;
  }
  async function opened(a: WebmailAccount, password: string): Promise<{ body: Buffer; summary: Record<string, unknown> }[]> {
    const key = await unwrapAccountKey(password, (await portal.account(a.addressKey))!.wrapped);
    expect(key, 'the told password unwraps the mailbox key').not.toBeNull();
    const out = [];
    for (const m of await portal.listMessages(a.id)) {
      const full = (await portal.message(a.id, m.id))!;
      const body = openForAccount(key!, full.body, webmailBodyAad(a.id, full.generation, full.deliveryKey));
      const summary = openForAccount(key!, full.summary, webmailSummaryAad(a.id, full.generation, full.deliveryKey));
      expect(body && summary).toBeTruthy();
      out.push({ body: body!, summary: JSON.parse(summary!.toString('utf8')) as Record<string, unknown> });
    }
    return out;
  }
  async function heldReason(rcpt: string): Promise<string> {
    let name = '';
    await waitUntil(async () => {
      const list = (await cli(['queue', 'list', '--json'])).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { name: string; state: string; recipients: string[] });
      name = list.find((e) => e.state === 'hold' && e.recipients.includes(rcpt))?.name ?? '';
      return name !== '';
    }, 20_000, `the hold for ${rcpt}`);
    return (await cli(['queue', 'show', name, '--json'])).stdout;
  }

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-webmail-gw-'));
    port = await freePort();
    config = await writeGatewayConfig(dir, port, 'portal:\n  url: https://mail.example.com/\n  organisation: Example Ltd\n');
    await writeFile(join(dir, 'policy.yaml'), 'rules:\n  - name: partners read on the portal\n    when: { recipient: { domain: partner.example } }\n    do: [{ encrypt: { methods: [smime, pgp, webmail], require: true } }]\n');
    gw = await startGateway(config);
    portal = await openPortalDb(join(dir, 'portal.db'));
  }, 60_000);
  afterAll(async () => {
    portal?.close();
    await gw?.stop();
    await cleanup();
  });

  it('first mail makes the mailbox: the sender is told the password, the recipient gets the link and nothing else; the stored mail opens and is what was sent', async () => {
    const attachment = Buffer.concat([Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 13 + 5) & 0xff)), Buffer.from(ATTACHMENT_MARK)]);
    const raw = Buffer.from(
      `From: Alice <alice@example.com>\r\nTo: Bob <bob@partner.example>\r\nSubject: ${SUBJECT_MARK} w1\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <w1@example.com>\r\nMIME-Version: 1.0\r\n` +
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n' +
        `Hello Bob, ${BODY_MARK}.\r\n--b1\r\nContent-Type: application/octet-stream; name="figures.bin"\r\nContent-Disposition: attachment; filename="figures.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
        `${attachment.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--b1--\r\n`,
      'utf8',
    );
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example'], raw)).toMatch(/^250 /);

    // The recipient's notice: the link, from the organisation; no subject, body, attachment or message id.
    const [first] = await waitCount('bob@partner.example', 'https://mail.example.com/webmail/', 1);
    const notice = await readFile(first!, 'latin1');
    expect(notice).toMatch(/^From: "Example Ltd" <postmaster@gw\.test\.example>\r$/m);
    expect(notice).toMatch(/^Subject: Confidential message from alice@example\.com\r$/m);
    for (const secret of [SUBJECT_MARK, BODY_MARK, ATTACHMENT_MARK, 'figures.bin', 'w1@example.com', attachment.toString('base64').slice(0, 40)]) expect(notice).not.toContain(secret);

    // The sender's notice holds the password; it opens the stored message, which is what was sent.
    const password = await toldPassword('alice@example.com', 'bob@partner.example');
    const a = await account('bob@partner.example');
    await waitUntil(async () => (await portal.account('bob@partner.example'))!.passwordTold !== null, 10_000, 'the password marked told');
    const [m] = await opened(a, password);
    expect(m!.body.toString('latin1')).toContain(BODY_MARK);
    // What the worker had: the message as sent, below the header fields the gateway adds on its way in.
    expect(m!.body.includes(raw.subarray(raw.indexOf('Content-Type: multipart/mixed')))).toBe(true);
    expect(m!.summary).toMatchObject({ v: 1, subject: `${SUBJECT_MARK} w1`, messageId: '<w1@example.com>', to: ['bob@partner.example'], attachments: [{ name: 'figures.bin', type: 'application/octet-stream', size: attachment.length }], correspondents: ['alice@example.com'] });
    expect(await unwrapAccountKey('not-the-password', a.wrapped)).toBeNull();
  }, 60_000);

  it('a second mail: a second notice, no second password', async () => {
    const raw = Buffer.from(`From: carol@example.com\r\nTo: bob@partner.example\r\nSubject: ${SUBJECT_MARK} w2\r\nMessage-ID: <w2@example.com>\r\n\r\nsecond ${BODY_MARK}\r\n`);
    expect(await sendRaw(port, 'carol@example.com', ['bob@partner.example'], raw)).toMatch(/^250 /);
    const notices = await waitCount('bob@partner.example', 'https://mail.example.com/webmail/', 2);
    expect(await readFile(notices[1]!, 'latin1')).toMatch(/^Subject: Confidential message from carol@example\.com\r$/m);
    const a = await account('bob@partner.example');
    await waitUntil(async () => (await portal.listMessages(a.id)).length === 2, 10_000, 'the second message stored');
    expect(a.generation).toBe(1);
    // Neither sender got (another) password notice: alice one, carol none.
    expect(await deliveries('alice@example.com', 'the webmail mailbox of bob@partner.example')).toHaveLength(1);
    expect(await deliveries('carol@example.com', 'the webmail mailbox of')).toHaveLength(0);
  }, 60_000);

  it('five messages for a new recipient at once: one mailbox, five notices, one password', async () => {
    const sent = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => sendRaw(port, 'alice@example.com', ['fred@partner.example'], Buffer.from(`From: alice@example.com\r\nTo: fred@partner.example\r\nSubject: burst b${i}\r\n\r\nburst body ${i}\r\n`))),
    );
    for (const r of sent) expect(r).toMatch(/^250 /);
    await waitCount('fred@partner.example', 'https://mail.example.com/webmail/', 5);
    const a = await account('fred@partner.example');
    const password = await toldPassword('alice@example.com', 'fred@partner.example');
    const bodies = (await opened(a, password)).map((m) => /burst body (\d)/.exec(m.body.toString('latin1'))![1]).sort();
    expect(bodies).toEqual(['1', '2', '3', '4', '5']);
    expect(await deliveries('alice@example.com', 'the webmail mailbox of fred@partner.example')).toHaveLength(1);
    expect((await portal.account('fred@partner.example'))!.generation).toBe(1);
  }, 90_000);

  it('portal.db holds no subject, body or attachment bytes', async () => {
    await waitUntil(async () => (await portal.listMessages((await account('bob@partner.example')).id)).length === 2, 10_000, 'both stored');
    const files = (await readdir(dir)).filter((n) => n.startsWith('portal.db'));
    expect(files).toContain('portal.db');
    const bytes = Buffer.concat(await Promise.all(files.map((f) => readFile(join(dir, f)))));
    expect(bytes.length).toBeGreaterThan(4096);
    const b64 = (s: string) => Buffer.from(s).toString('base64').slice(0, 16);
    for (const needle of [SUBJECT_MARK, BODY_MARK, ATTACHMENT_MARK, 'figures.bin', 'w1@example.com', b64(ATTACHMENT_MARK), 'Hello Bob']) {
      expect(bytes.includes(Buffer.from(needle)), needle).toBe(false);
      expect(bytes.includes(Buffer.from(needle, 'utf16le')), `${needle} (UTF-16)`).toBe(false);
    }
  });

  it('a first mail from the null sender, or from outside, is held: nobody of ours to tell the password to', async () => {
    expect(await sendRaw(port, '', ['dora@partner.example'], Buffer.from('From: robot@elsewhere.example\r\nTo: dora@partner.example\r\nSubject: bounce n1\r\n\r\nn1body\r\n'))).toMatch(/^250 /);
    expect(await heldReason('dora@partner.example')).toMatch(/webmail needs a sender to tell the new mailbox password to, and this message has the null sender/);
    expect(await portal.account('dora@partner.example')).toBeNull();
    expect(await md.delivered('dora@partner.example', 'n1body')).toBeUndefined();
    // An outside sender: the password would go across the Internet — held too.
    expect(await sendRaw(port, 'robot@elsewhere.example', ['erik@partner.example'], Buffer.from('From: robot@elsewhere.example\r\nTo: erik@partner.example\r\nSubject: outside o1\r\n\r\no1body\r\n'))).toMatch(/^250 /);
    expect(await heldReason('erik@partner.example')).toMatch(/webmail tells the new mailbox password to the sender, and robot@elsewhere\.example is not in internal_domains/);
    expect(await portal.account('erik@partner.example')).toBeNull();
  }, 60_000);

  it('policy explain, webmail list, reset (printed, then mailed to our own sender only) and delete', async () => {
    const explained = (await ok(['policy', 'explain', '--from', 'alice@example.com', '--to', 'bob@partner.example', '--to', 'new@partner.example'])).stdout;
    expect(explained).toMatch(/<bob@partner\.example>[^]*→ webmail, account exists since \d{4}-\d\d-\d\d/);
    expect(explained).toMatch(/<new@partner\.example>[^]*→ webmail, new account, the sender will be told its password/);
    expect(explained).toMatch(/deliver to <bob@partner\.example>: encrypt with webmail/);

    const list = (await ok(['webmail', 'list'])).stdout;
    expect(list).toMatch(/^bob@partner\.example\t\S+\t2\t\d+\t-\ttold, not yet changed\tactive$/m);

    // Reset: a new password printed once, the old mail removed and counted, the old password void.
    const reset = await ok(['webmail', 'reset', 'Bob@Partner.Example']);
    expect(reset.stderr).toMatch(/new password for the webmail mailbox of bob@partner\.example .*2 messages removed/);
    const password = reset.stdout.trim();
    const a = (await portal.account('bob@partner.example'))!;
    expect(a.generation).toBe(2);
    expect(await portal.listMessages(a.id)).toEqual([]);
    expect(await unwrapAccountKey(password, a.wrapped)).not.toBeNull();
    // Mail after the reset is sealed to the new key and opens with the new password.
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example'], Buffer.from('From: alice@example.com\r\nTo: bob@partner.example\r\nSubject: after reset\r\n\r\nw3body\r\n'))).toMatch(/^250 /);
    await waitUntil(async () => (await portal.listMessages(a.id)).length === 1, 20_000, 'the message after the reset');
    expect((await opened(a, password))[0]!.body.toString('latin1')).toContain('w3body');

    // --notify: to our own user by mail; never to an outside address.
    const outside = await cli(['webmail', 'reset', 'bob@partner.example', '--notify', 'eve@elsewhere.example']);
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/not in internal_domains/);
    expect((await portal.account('bob@partner.example'))!.generation).toBe(2);
    const mailed = await ok(['webmail', 'reset', 'bob@partner.example', '--notify', 'alice@example.com']);
    expect(mailed.stdout).toMatch(/mailed to alice@example\.com \(queue id \S+\); 1 message removed/);
    const notice = await md.waitDelivered('alice@example.com', 'New password for the webmail mailbox of bob@partner.example');
    const told = /\n {4}(\S+)\r?\n/.exec((await parseMail(await readFile(notice))).payload!.toString('utf8'))![1]!;
    expect(await unwrapAccountKey(told, (await portal.account('bob@partner.example'))!.wrapped)).not.toBeNull();
    expect((await portal.auditRecords()).filter((r) => r.action === 'webmail.reset').map((r) => r.actor)).toEqual([expect.stringMatching(/^cli:/), expect.stringMatching(/^cli:/)]);

    expect((await ok(['webmail', 'delete', 'bob@partner.example'])).stdout).toMatch(/deleted the webmail mailbox of bob@partner\.example/);
    expect(await portal.account('bob@partner.example')).toBeNull();
    const gone = await cli(['webmail', 'reset', 'bob@partner.example']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/bob@partner\.example has no webmail mailbox/);
  }, 90_000);
});
