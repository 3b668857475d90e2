/**
 * Webmail end to end through the running gateway and its portal over HTTPS, in Chromium (issue
 * 17, "Done when" 2): an internal user's mail to an outside recipient makes the mailbox; the
 * sender's notice holds the password, the recipient's notice the link; the recipient follows the
 * link, signs in, must choose a password, reads the message, downloads its attachment (bytes
 * equal), replies with a file (the internal sender's mailbox receives it, file intact, threaded),
 * and signs out. portal.db (and its -wal) is scanned afterwards for the mail's subject, body and
 * attachment: nothing of them is there in clear, however much the pages were used.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot, type TestBrowser } from '../helpers/browser.js';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { header, parseMail, type ParsedPart } from '../helpers/mail-parse.js';
import { sendRaw } from '../helpers/send.js';

const run = promisify(execFile);

const SUBJECT = 'Quarterly-figures-kx41 for you';
const BODY_MARK = 'body-marker-zanzibar9';
const ATTACHMENT = Buffer.concat([Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 13 + 5) & 0xff)), Buffer.from('attachment-marker-q7w3')]);
const CHOSEN = 'a passphrase of my own 7';
const REPLY_FILE = Buffer.from('reply-file-marker-8821\nsigned contract\n');

const leaves = (p: ParsedPart): ParsedPart[] => (p.parts.length ? p.parts.flatMap(leaves) : [p]);

describe('webmail through the gateway, in Chromium over HTTPS', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let portalUrl: string;
  let browser: TestBrowser;
  const md = maildirOf(() => dir);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-webmail-portal-'));
    port = await freePort();
    const portalPort = await freePort();
    portalUrl = `https://127.0.0.1:${portalPort}`;
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'portal.key'), '-out', join(dir, 'portal.crt')]);
    const config = await writeGatewayConfig(
      dir,
      port,
      `portal:\n  listen: ["127.0.0.1:${portalPort}"]\n  tls: { cert: portal.crt, key: portal.key }\n  url: ${portalUrl}\n  organisation: Example Ltd\n`,
    );
    await writeFile(join(dir, 'policy.yaml'), 'rules:\n  - name: partners read on the portal\n    when: { recipient: { domain: partner.example } }\n    do: [{ encrypt: { methods: [smime, pgp, webmail], require: true } }]\n');
    // Five roles and Chromium on a shared two-core machine: start-up gets more than the helper's 20 s.
    gw = await startGateway(config, { waitReady: false });
    await gw.waitFor((l) => l.event === 'supervisor.ready', 90_000);
    browser = await launchBrowser();
  }, 150_000);
  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await cleanup?.();
  });

  it('first mail, notices, sign-in, password change, read, download, reply, sign-out; portal.db holds none of it in clear', async () => {
    const raw = Buffer.from(
      `From: Alice <alice@example.com>\r\nTo: Bob <bob@partner.example>\r\nSubject: ${SUBJECT}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <wp1@example.com>\r\nMIME-Version: 1.0\r\n` +
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n' +
        `Hello Bob, ${BODY_MARK}. Grüße aus München.\r\n--b1\r\nContent-Type: application/octet-stream; name="figures.bin"\r\nContent-Disposition: attachment; filename="figures.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
        `${ATTACHMENT.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--b1--\r\n`,
      'utf8',
    );
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example'], raw)).toMatch(/^250 /);

    // The recipient's notice: a link to the portal, and nothing of the message.
    const notice = (await readFile(await md.waitDelivered('bob@partner.example', `${portalUrl}/webmail/`, 30_000), 'latin1')).replace(/=\r\n/g, '');
    for (const secret of [SUBJECT, BODY_MARK, 'figures.bin']) expect(notice).not.toContain(secret);
    const link = new RegExp(`${portalUrl.replace(/[.:/]/g, '\\$&')}/webmail/\\S*`).exec(notice)![0];
    // The sender's notice: the mailbox's password.
    const told = await parseMail(await readFile(await md.waitDelivered('alice@example.com', 'the webmail mailbox of bob@partner.example', 30_000)));
    const password = /\n {4}(\S+)\r?\n/.exec(leaves(told).find((p) => p.contentType === 'text/plain')!.payload!.toString('utf8'))![1]!;

    const ctx = await browser.context({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    await page.goto(link);
    await screenshot(page, 'webmail-gateway-sign-in');
    await page.fill('#address', 'bob@partner.example');
    await page.fill('#password', password);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    expect(new URL(page.url()).pathname).toBe('/webmail/password');
    await page.fill('#current', password);
    await page.fill('#new1', CHOSEN);
    await page.fill('#new2', CHOSEN);
    await Promise.all([page.waitForNavigation(), page.click('form.card button[type=submit]')]);
    expect(new URL(page.url()).pathname).toBe('/webmail/inbox');
    await screenshot(page, 'webmail-gateway-inbox');
    expect(await page.locator('table.inbox tbody tr').count()).toBe(1);
    await Promise.all([page.waitForNavigation(), page.click(`a:text("${SUBJECT}")`)]);
    const article = await page.locator('article').innerText();
    expect(article).toContain(`Hello Bob, ${BODY_MARK}. Grüße aus München.`);
    expect(article).toContain('Alice <alice@example.com>');
    await screenshot(page, 'webmail-gateway-message');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('ul.files a:text("figures.bin")')]);
    expect(download.suggestedFilename()).toBe('figures.bin');
    expect((await readFile((await download.path())!)).equals(ATTACHMENT)).toBe(true);

    await Promise.all([page.waitForNavigation(), page.click('a.button:text("Reply")')]);
    expect(await page.locator('input[name=to]').evaluateAll((boxes) => boxes.map((b) => (b as unknown as { value: string }).value))).toEqual(['alice@example.com']);
    await page.fill('#text', 'Thanks Alice, the contract is attached. reply-text-marker-5521');
    await page.setInputFiles('#files', { name: 'contract.txt', mimeType: 'text/plain', buffer: REPLY_FILE });
    await screenshot(page, 'webmail-gateway-reply');
    await Promise.all([page.waitForNavigation(), page.click('form.card button[type=submit]')]);
    expect(await page.locator('main').innerText()).toContain('Your reply was sent.');

    // The reply went through the worker's policy like any mail from outside, to Alice's mailbox.
    const reply = await parseMail(await readFile(await md.waitDelivered('alice@example.com', 'reply-text-marker-5521', 30_000)));
    expect(header(reply, 'From')).toBe('bob@partner.example');
    expect(header(reply, 'Subject')).toBe(`Re: ${SUBJECT}`);
    expect(header(reply, 'In-Reply-To')).toBe('<wp1@example.com>');
    const file = leaves(reply).find((p) => p.filename === 'contract.txt');
    expect(file?.payload?.equals(REPLY_FILE)).toBe(true);

    await Promise.all([page.waitForNavigation(), page.click('header form button')]);
    expect(await page.locator('main').innerText()).toContain('You have signed out.');
    await page.goto(`${portalUrl}/webmail/inbox`);
    expect(new URL(page.url()).pathname).toBe('/webmail/');
    await ctx.close();

    // At rest: neither the mail nor the reply is anywhere in portal.db's files in clear (UTF-8,
    // base64 of the attachment, the subject as the list showed it).
    const files = (await readdir(dir)).filter((f) => f.startsWith('portal.db'));
    expect(files).toContain('portal.db');
    for (const f of files) {
      const bytes = await readFile(join(dir, f));
      for (const secret of [SUBJECT, 'Quarterly-figures-kx41', BODY_MARK, 'attachment-marker-q7w3', ATTACHMENT.subarray(0, 48).toString('base64'), 'figures.bin', 'reply-text-marker-5521', 'reply-file-marker-8821', CHOSEN, password]) {
        expect(bytes.includes(Buffer.from(secret, 'utf8')), `${secret} in ${f}`).toBe(false);
      }
      expect(bytes.includes(ATTACHMENT.subarray(100, 164)), `attachment bytes in ${f}`).toBe(false);
    }
  }, 180_000);
});
