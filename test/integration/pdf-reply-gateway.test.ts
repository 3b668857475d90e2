/**
 * The PDF reply end to end through the running gateway (issue 17): an outside recipient gets a
 * PDF; the Reply link is read from the PDF's link annotation (MuPDF, with the password the sender
 * was told); Debian's Chromium opens it over HTTPS (a certificate made by openssl), signs in,
 * writes a reply with an attachment; our user's mailbox gets the reply (attachment intact,
 * In-Reply-To the original) and the replier gets a copy that qpdf opens with the password and not
 * without. Attacks on the real portal: a wrong password and the lock-out, a forged link, the
 * session cookie replayed after sign-out. Screenshots of each page.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot, type TestBrowser } from '../helpers/browser.js';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { header, parseMail, type ParsedPart } from '../helpers/mail-parse.js';
import { pdfLinks, popplerAttachments, reader } from '../helpers/pdf-mail.js';
import { sendRaw } from '../helpers/send.js';

const run = promisify(execFile);

function leaves(p: ParsedPart): ParsedPart[] {
  return p.parts.length ? p.parts.flatMap(leaves) : [p];
}

describe('PDF reply through the gateway and Chromium', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let browser: TestBrowser;
  let smtpPort: number;
  let portalUrl: string;
  const md = maildirOf(() => dir);
  const mail = async (rcpt: string, token: string) => parseMail(await readFile(await md.waitDelivered(rcpt, token, 60_000)));

  /** A PDF mail from alice to carol; its file, the password alice was told, and the Reply link in it. */
  async function pdfMail(token: string): Promise<{ file: string; password: string; link: string }> {
    const raw = Buffer.from(
      `From: Alice <alice@example.com>\r\nTo: carol@plain.example\r\nSubject: Figures ${token}\r\nMessage-ID: <${token}@example.com>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n` +
        `Content-Type: text/plain; charset=utf-8\r\n\r\nThe figures, ${token}.\r\n`,
    );
    expect(await sendRaw(smtpPort, 'alice@example.com', ['carol@plain.example'], raw)).toMatch(/^250 /);
    const carrier = await mail('carol@plain.example', `${token}@example.com`);
    const file = join(dir, `${token}.pdf`);
    await writeFile(file, leaves(carrier).find((p) => p.contentType === 'application/pdf')!.payload!);
    const notice = (await readFile(await md.waitDelivered('alice@example.com', 'PDF mail to carol@plain.example', 60_000))).toString('utf8');
    const password = /\r\n\r\n {4}(\S+)\r\n\r\n/.exec(notice.replace(/=\r\n/g, ''))![1]!;
    const links = await pdfLinks(file, password);
    const link = links.find((l) => l.startsWith(`${portalUrl}/r/`));
    expect(link, `a Reply link among ${JSON.stringify(links)}`).toBeDefined();
    return { file, password, link: link! };
  }

  async function signIn(page: Page, link: string, password: string): Promise<void> {
    await page.goto(link);
    await page.fill('#password', password);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  }

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-reply-gw-'));
    smtpPort = await freePort();
    const portalPort = await freePort();
    portalUrl = `https://127.0.0.1:${portalPort}`;
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'portal.key'), '-out', join(dir, 'portal.crt')]);
    const config = await writeGatewayConfig(
      dir,
      smtpPort,
      `portal:\n  listen: ["127.0.0.1:${portalPort}"]\n  url: ${portalUrl}\n  tls: { cert: portal.crt, key: portal.key }\n  max_upload: 2MB\n` +
        '  lockout: { account: 3, client: 50, backoff: 10m, max_backoff: 1h }\npdf:\n  organisation: Example Ltd\n',
    );
    await writeFile(join(dir, 'policy.yaml'), 'rules:\n  - name: outside without keys gets PDF\n    when: { direction: outbound }\n    do: [{ encrypt: { methods: [pdf], require: true } }]\n');
    // Five roles and a browser on a shared machine: starting may take longer than startGateway's 20 s.
    gw = await startGateway(config, { waitReady: false });
    await gw.waitFor((l) => l.event === 'supervisor.ready', 120_000);
    browser = await launchBrowser();
    await mkdir(join(dir, 'upload'));
  }, 240_000);
  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await cleanup?.();
  });

  it('a reply with an attachment reaches our user; the replier\'s copy opens with the password only; after sign-out the cookie opens nothing', async () => {
    const { password, link } = await pdfMail('r1tok');
    const ctx: BrowserContext = await browser.context({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    await page.goto(link);
    expect(await page.textContent('main')).toContain('alice@example.com');
    await screenshot(page, 'pdf-reply-1-password');
    await signIn(page, link, password);
    expect(await page.inputValue('#subject')).toBe('Re: Figures r1tok');
    expect(await page.inputValue('#to')).toBe('alice@example.com');
    const attachment = Buffer.concat([randomBytes(300_000), Buffer.from('attachment-marker-r1')]);
    await page.fill('#text', 'Thanks Alice, figures attached.\nreplytext-r1 Grüße');
    await page.setInputFiles('#files', [{ name: 'Zahlen März.bin', mimeType: 'application/octet-stream', buffer: attachment }]);
    await screenshot(page, 'pdf-reply-2-form');
    await Promise.all([page.waitForNavigation(), page.click('#send')]);
    expect(await page.textContent('#sent')).toContain('alice@example.com');
    expect(await page.textContent('#copy')).toContain('carol@plain.example');
    await screenshot(page, 'pdf-reply-3-sent');

    // Sign out; the session cookie, replayed in another browser, opens nothing.
    const cookies = await ctx.cookies();
    expect(cookies.find((c) => c.name === '__Host-postern-session')).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
    await Promise.all([page.waitForNavigation(), page.click('#signout')]);
    expect(await page.textContent('#signed-out')).toBeTruthy();
    await screenshot(page, 'pdf-reply-4-signed-out');
    const thief = await browser.context({ ignoreHTTPSErrors: true });
    await thief.addCookies(cookies);
    const stolen = await thief.newPage();
    await stolen.goto(link);
    expect(await stolen.$('#reply-form')).toBeNull();
    expect(await stolen.$('#password')).not.toBeNull();
    await thief.close();

    // Our user's mailbox: the reply, through the worker's policy as inbound mail.
    const reply = await mail('alice@example.com', 'replytext-r1');
    expect(reply.defects).toEqual([]);
    expect([header(reply, 'From'), header(reply, 'To'), header(reply, 'Subject'), header(reply, 'In-Reply-To')]).toEqual(['carol@plain.example', 'alice@example.com', 'Re: Figures r1tok', '<r1tok@example.com>']);
    expect(reply.headers.filter(([k]) => k === 'Received').map(([, v]) => v).join('\n')).toMatch(/from \[127\.0\.0\.1\] \(\[127\.0\.0\.1\]\) by 127\.0\.0\.1 \(Postern portal\) with HTTPS/);
    const parts = leaves(reply);
    expect(parts[0]!.payload!.toString('utf8')).toBe('Thanks Alice, figures attached.\nreplytext-r1 Grüße\n');
    const got = parts.find((p) => p.filename === 'Zahlen März.bin');
    expect(got?.payload?.equals(attachment)).toBe(true);

    // The replier's copy: from the gateway, the reply inside a PDF under the same password.
    const copy = await mail('carol@plain.example', 'Copy of your reply to alice@example.com');
    expect(copy.defects).toEqual([]);
    const copyFile = join(dir, 'copy.pdf');
    await writeFile(copyFile, leaves(copy).find((p) => p.contentType === 'application/pdf')!.payload!);
    expect((await readFile(copyFile)).includes('attachment-marker-r1')).toBe(false);
    const without = await reader('qpdf', ['--decrypt', copyFile, join(dir, 'copy-clear.pdf')]);
    expect(without.code).not.toBe(0);
    expect(without.stderr).toMatch(/invalid password/);
    const withPw = await reader('qpdf', [`--password=${password}`, '--decrypt', copyFile, join(dir, 'copy-clear.pdf')]);
    expect(withPw.code, withPw.stderr).toBe(0);
    const files = await popplerAttachments(copyFile, password);
    expect([...files.values()].some((b) => b.equals(attachment))).toBe(true);

    // The log: the reply, never the password, the subject or the text.
    await gw.waitFor((l) => l.event === 'portal.reply.sent');
    const logText = JSON.stringify(gw.logs.filter((l) => l.role === 'portal'));
    for (const secret of [password, 'replytext-r1', 'Figures r1tok']) expect(logText).not.toContain(secret);
    await ctx.close();
  }, 180_000);

  it('refuses a wrong password and locks the link after three; a forged link is a 404', async () => {
    const { password, link } = await pdfMail('r2tok');
    const ctx = await browser.context({ ignoreHTTPSErrors: true, locale: 'de-DE' });
    const page = await ctx.newPage();
    for (let i = 0; i < 3; i++) {
      await signIn(page, link, `wrong-password-${i}`);
      expect(await page.textContent('main')).toContain('Dieses Passwort öffnet das PDF nicht');
      if (i === 0) await screenshot(page, 'pdf-reply-5-wrong-password');
    }
    await signIn(page, link, password);
    expect(await page.textContent('main')).toContain('Zu viele Fehlversuche');
    expect(await page.$('#reply-form')).toBeNull();
    await screenshot(page, 'pdf-reply-6-locked');

    const forged = `${portalUrl}/r/${randomBytes(24).toString('base64url')}`;
    const res = await page.goto(forged);
    expect(res?.status()).toBe(404);
    expect(await page.textContent('main')).toContain('Diese Seite gibt es nicht, oder der Link ist abgelaufen.');
    await screenshot(page, 'pdf-reply-7-unknown-link');
    await gw.waitFor((l) => l.event === 'portal.reply.locked');
    await ctx.close();
  }, 180_000);
});
