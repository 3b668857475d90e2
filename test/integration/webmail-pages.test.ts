/**
 * The webmail pages in Chromium over HTTPS, against a real portal.db and spool (no gateway: the
 * messages are sealed as the worker seals them, test/helpers/webmail-store.ts; the whole path
 * through SMTP is webmail-gateway.test.ts). The reader signs in with the given password, must
 * choose a new one, reads, downloads, replies, deletes and signs out; and each attack is tried:
 * a hostile HTML mail (nothing runs, nothing loads until "show images"), a forged CSRF token, a
 * reply to someone else than the message's correspondents, a session cookie replayed after
 * sign-out, wrong passwords up to the lock-out, a reset while signed in.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPortalDb, type PortalDb, type WebmailAccount } from '../../src/keystore/portal-db.js';
import { newAccountKeys } from '../../src/keystore/webmail-crypto.js';
import { silentLogger } from '../../src/log/index.js';
import { startPortal, type Portal } from '../../src/portal/index.js';
import { registerWebmail, spooledReplies } from '../../src/portal/webmail/index.js';
import { Spool } from '../../src/spool/index.js';
import { launchBrowser, screenshot, type TestBrowser } from '../helpers/browser.js';
import { tempDir, testConfig } from '../helpers/config.js';
import { makeAccount, storeMessage } from '../helpers/webmail-store.js';

const run = promisify(execFile);
const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');

const READER = 'reader@partner.example';
const GIVEN = 'given-password-1';
const CHOSEN = 'my own passphrase 42';
const FILE = randomBytes(5000);
/** A 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');

describe('webmail pages in Chromium', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let db: PortalDb;
  let spool: Spool;
  let portal: Portal;
  let tracker: Server;
  let trackerHits: string[];
  let ca: Buffer;
  let browser: TestBrowser;
  let ctx: BrowserContext;
  let page: Page;
  let account: WebmailAccount;
  let base: string;
  const ids = { old: 0, report: 0, hostile: 0, pictures: 0 };

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-webmail-pages-'));
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=portal.example.com',
      '-addext', 'subjectAltName=DNS:portal.example.com,IP:127.0.0.1', '-keyout', join(dir, 'portal.key'), '-out', join(dir, 'portal.crt')]);
    ca = await readFile(join(dir, 'portal.crt'));
    // A host on "the Internet" that a mail's remote image points at: it counts who asks.
    trackerHits = [];
    tracker = createServer({ cert: ca, key: await readFile(join(dir, 'portal.key')) }, (req, res) => {
      trackerHits.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'image/gif' }).end(Buffer.from('R0lGODlhAQABAAAAACwAAAAAAQABAAA=', 'base64'));
    });
    await new Promise<void>((r) => tracker.listen(0, '127.0.0.1', r));
    const trackerUrl = `https://127.0.0.1:${(tracker.address() as AddressInfo).port}`;

    db = await openPortalDb(join(dir, 'portal.db'));
    spool = await Spool.open(dir);
    account = await makeAccount(db, READER, GIVEN);
    await makeAccount(db, 'other@partner.example', 'other-password-1');
    const day = 86_400_000;
    const t0 = Date.now() - 3 * day;
    ids.pictures = await storeMessage(
      db,
      account,
      crlf(`From: bob@example.com
Subject: Pictures
MIME-Version: 1.0
Content-Type: multipart/related; boundary="r"

--r
Content-Type: text/html; charset=utf-8

<p>Our logo: <img src="cid:logo@example.com" alt="logo" id="logo"> and a drawing: <img src="cid:drawing@example.com" alt="drawing"></p>
--r
Content-Type: image/png
Content-ID: <logo@example.com>
Content-Transfer-Encoding: base64

${PNG.toString('base64')}
--r
Content-Type: image/svg+xml
Content-ID: <drawing@example.com>

<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>
--r--
`),
      { from: 'bob@example.com', subject: 'Pictures', correspondents: ['bob@example.com'] },
      new Date(t0 - day),
    );
    ids.old = await storeMessage(db, account, crlf('From: bob@example.com\nSubject: Old news\n\nAn older message.\n'), { from: 'bob@example.com', subject: 'Old news', correspondents: ['bob@example.com'] }, new Date(t0));
    ids.report = await storeMessage(
      db,
      account,
      crlf(`From: Alice <alice@example.com>
To: reader@partner.example
Subject: Quarterly report
Message-ID: <report-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain; charset=utf-8

Dear reader,

the report is attached. Grüße, Alice
--b
Content-Type: application/octet-stream; name="report.bin"
Content-Disposition: attachment; filename="../../../etc/report.bin"
Content-Transfer-Encoding: base64

${FILE.toString('base64').replace(/.{76}/g, '$&\n')}
--b--
`),
      { from: 'Alice <alice@example.com>', subject: 'Quarterly report', messageId: '<report-1@example.com>', attachments: [{ name: 'report.bin', type: 'application/octet-stream', size: FILE.length }], correspondents: ['alice@example.com'] },
      new Date(t0 + day),
    );
    ids.hostile = await storeMessage(
      db,
      account,
      crlf(`From: mallory@partner.example
Subject: Look at this
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><head><script>window.__pwned = 'head'</script><style>body { display: none }</style>
<meta http-equiv="refresh" content="0;url=${trackerUrl}/refresh"></head>
<body onload="window.__pwned = 'onload'">
<p id="hello" onclick="window.__pwned = 'click'" onmouseover="window.__pwned = 'hover'">Hello <b>there</b></p>
<img src="${trackerUrl}/pixel.gif" alt="logo">
<img src="x" onerror="window.__pwned = 'onerror'; alert(1)">
<a id="js" href="javascript:window.__pwned='link';alert(2)">click me</a>
<a href="${trackerUrl}/page">a real link</a>
<iframe src="${trackerUrl}/frame"></iframe>
<svg><script>window.__pwned = 'svg'</script></svg>
<form action="${trackerUrl}/steal"><input name="password"></form>
<div style="background: url(${trackerUrl}/bg.png)">styled</div>
<script>window.__pwned = 'body'; alert(3)</script>
</body></html>
`),
      { from: 'mallory@partner.example', subject: 'Look at this' },
      new Date(t0 + 2 * day),
    );

    const config = testConfig(dir, {
      hostname: 'gw.example.com',
      portal: {
        listen: [{ host: '127.0.0.1', port: 0 }],
        tls: { cert: join(dir, 'portal.crt'), key: join(dir, 'portal.key') },
        lockout: { account: 2, client: 100, backoff: 600_000, max_backoff: 3_600_000 },
        max_upload: 100_000,
        max_uploads: 3,
      },
    });
    portal = await startPortal({
      config,
      store: { listPgpKeys: async () => [], pgpKeysFor: async () => [] },
      log: silentLogger(),
      pages: [(app, pages) => registerWebmail(app, pages, { db, sendReply: spooledReplies({ spool, portalHost: 'portal.example.com', tls: true }) })],
    });
    base = `https://127.0.0.1:${portal.addresses[0]!.port}`;
    browser = await launchBrowser();
    ctx = await browser.context({ ignoreHTTPSErrors: true });
    page = await ctx.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await portal?.close();
    await new Promise((r) => tracker?.close(r));
    db?.close();
    await cleanup?.();
  });

  const signIn = async (p: Page, address: string, password: string) => {
    await p.goto(`${base}/webmail/`);
    await p.fill('#address', address);
    await p.fill('#password', password);
    return Promise.all([p.waitForNavigation(), p.click('button[type=submit]')]).then(([r]) => r);
  };

  /** GET with only the given cookie, as a client other than the browser would replay it. */
  const rawGet = (path: string, cookie: string) =>
    new Promise<{ status: number; location?: string }>((resolve, reject) => {
      const req = request(`${base}${path}`, { ca, servername: 'portal.example.com', headers: { cookie, accept: 'text/html' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, ...(res.headers.location ? { location: res.headers.location } : {}) }));
      });
      req.on('error', reject);
      req.end();
    });

  it('refuses a wrong password and an unknown address with the same page', async () => {
    const wrong = await signIn(page, READER, 'not-the-password');
    const wrongText = await page.locator('main').innerText();
    await screenshot(page, 'webmail-sign-in-failed');
    const unknown = await signIn(page, 'nobody@partner.example', 'not-the-password');
    const unknownText = await page.locator('main').innerText();
    expect(wrong!.status()).toBe(401);
    expect(unknown!.status()).toBe(401);
    expect(wrongText).toContain('The address or the password is not right.');
    expect(unknownText).toBe(wrongText);
    const failures = (await db.auditRecords()).filter((r) => r.action === 'webmail.login_failed');
    expect(failures.map((r) => r.actor).sort()).toEqual(['nobody@partner.example', READER]);
    expect(JSON.stringify(await db.auditRecords())).not.toContain('not-the-password');
  });

  it('the first sign-in must choose a new password before anything else; the mail stays readable under it', async () => {
    await page.goto(`${base}/webmail/`);
    await screenshot(page, 'webmail-sign-in');
    await signIn(page, ` ${READER.toUpperCase()} `, GIVEN);
    expect(new URL(page.url()).pathname).toBe('/webmail/password');
    await page.goto(`${base}/webmail/inbox`);
    expect(new URL(page.url()).pathname).toBe('/webmail/password');
    await screenshot(page, 'webmail-password');
    const change = async (current: string, a: string, b: string) => {
      await page.fill('#current', current);
      await page.fill('#new1', a);
      await page.fill('#new2', b);
      // The browser's own checks (minlength) are not what is tested: the server's are.
      await page.locator('input[minlength]').evaluateAll((inputs) => inputs.forEach((i) => i.removeAttribute('minlength')));
      await Promise.all([page.waitForNavigation(), page.click('form.card button[type=submit]')]);
      return page.locator('main').innerText();
    };
    expect(await change(GIVEN, CHOSEN, `${CHOSEN}!`)).toContain('The two new passwords differ.');
    expect(await change(GIVEN, 'short', 'short')).toContain('at least 10 characters');
    expect(await change(GIVEN, GIVEN, GIVEN)).toContain('different from the one you were given');
    expect(await change('wrong-current', CHOSEN, CHOSEN)).toContain('The current password is not right.');
    await change(GIVEN, CHOSEN, CHOSEN);
    expect(new URL(page.url()).pathname).toBe('/webmail/inbox');
    expect(await page.locator('main').innerText()).toContain('Your password was changed.');
    const stored = (await db.account('reader@partner.example'))!;
    expect(stored.mustChangePassword).toBe(false);
    // Rewrapped, not replaced: the same public key, so mail sealed before still opens.
    expect(stored.publicKey.equals(account.publicKey)).toBe(true);
    expect((await db.auditRecords()).map((r) => r.action)).toEqual(expect.arrayContaining(['webmail.login', 'webmail.password_changed']));
  });

  it('lists the mailbox newest first, unread in bold, with the attachment mark', async () => {
    await page.goto(`${base}/webmail/inbox`);
    await screenshot(page, 'webmail-inbox');
    const rows = page.locator('table.inbox tbody tr');
    expect(await rows.count()).toBe(4);
    expect(await rows.locator('td:nth-child(2) a').allInnerTexts()).toEqual(['Look at this', 'Quarterly report', 'Old news', 'Pictures']);
    expect(await rows.evaluateAll((trs) => trs.map((tr) => [tr.className, tr.ownerDocument.defaultView!.getComputedStyle(tr.querySelector('td')!).fontWeight]))).toEqual([
      ['unread', '600'],
      ['unread', '600'],
      ['unread', '600'],
      ['unread', '600'],
    ]);
    expect(await rows.nth(1).locator('td.clip [aria-label]').count()).toBe(1);
    expect(await rows.nth(0).locator('td.clip [aria-label]').count()).toBe(0);
  });

  it('shows a message, marks it read, and downloads its attachment as a file (bytes equal, a safe name)', async () => {
    await page.goto(`${base}/webmail/m/${ids.report}`);
    await screenshot(page, 'webmail-message');
    const text = await page.locator('article').innerText();
    expect(text).toContain('Quarterly report');
    expect(text).toContain('Grüße, Alice');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('ul.files a')]);
    expect(download.suggestedFilename()).toBe('_.._.._etc_report.bin');
    expect((await readFile((await download.path())!)).equals(FILE)).toBe(true);
    const head = await page.request.get(`${base}/webmail/m/${ids.report}/file/0`);
    expect(head.headers()['content-type']).toBe('application/octet-stream');
    expect(head.headers()['content-disposition']).toBe(`attachment; filename="_.._.._etc_report.bin"; filename*=UTF-8''_.._.._etc_report.bin`);
    expect(head.headers()['x-content-type-options']).toBe('nosniff');
    expect(head.headers()['content-security-policy']).toContain('sandbox');
    await page.goto(`${base}/webmail/inbox`);
    expect(await page.locator(`tr[data-id="${ids.report}"]`).getAttribute('class')).toBe('read');
    // Another account's message, or a part number that is no part: the same "not found".
    expect((await page.request.get(`${base}/webmail/m/${ids.report}/file/9`)).status()).toBe(404);
    expect((await page.request.get(`${base}/webmail/m/${ids.report}/file/..%2F..%2Fetc%2Fpasswd`)).status()).toBe(404);
  });

  it('an HTML mail with script, handlers, javascript: links and remote images: nothing runs, nothing loads until "show images"', async () => {
    const dialogs: string[] = [];
    const consoleErrors: string[] = [];
    const requests: string[] = [];
    const onDialog = (d: { message(): string; dismiss(): Promise<void> }) => {
      dialogs.push(d.message());
      void d.dismiss();
    };
    page.on('dialog', onDialog);
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('request', (r) => requests.push(r.url()));
    trackerHits.length = 0;
    await page.goto(`${base}/webmail/m/${ids.hostile}`);
    await page.hover('.mailhtml p');
    await page.click('.mailhtml p');
    await page.click('.mailhtml a:text("click me")');
    await page.waitForTimeout(300);
    await screenshot(page, 'webmail-hostile-html');
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    expect(dialogs).toEqual([]);
    expect(consoleErrors).toEqual([]);
    expect(requests.filter((u) => !u.startsWith(base))).toEqual([]);
    expect(trackerHits).toEqual([]);
    const mail = page.locator('.mailhtml');
    expect(await mail.locator('script, style, iframe, form, input, svg, meta, [onclick], [onload], [onerror], [style], [id]').count()).toBe(0);
    expect(await mail.locator('a').evaluateAll((as) => as.map((a) => [a.getAttribute('href'), a.getAttribute('rel'), a.getAttribute('target')]))).toEqual([
      [null, 'noopener noreferrer', '_blank'],
      [expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+\/page$/), 'noopener noreferrer', '_blank'],
    ]);
    expect(await mail.innerText()).toContain('Hello there');

    await Promise.all([page.waitForNavigation(), page.click('a:text("Show images")')]);
    await page.waitForLoadState('networkidle');
    await screenshot(page, 'webmail-images-shown');
    expect(trackerHits).toEqual(['/pixel.gif']);
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    expect(dialogs).toEqual([]);
    page.off('dialog', onDialog);
  });

  it('shows a message\'s own raster cid: images, never an SVG one', async () => {
    await page.goto(`${base}/webmail/m/${ids.pictures}`);
    const img = page.locator('.mailhtml img');
    expect(await img.count()).toBe(1);
    const src = (await img.getAttribute('src'))!;
    expect(src).toBe(`/webmail/m/${ids.pictures}/inline/0`);
    expect(await img.evaluate((i) => (i as unknown as { naturalWidth: number }).naturalWidth)).toBe(1);
    expect(await page.locator('.mailhtml').innerText()).toContain('[drawing]');
    const png = await page.request.get(`${base}${src}`);
    expect(png.headers()['content-type']).toBe('image/png');
    expect(png.headers()['content-security-policy']).toBe("default-src 'none'; sandbox");
    expect((await png.body()).equals(PNG)).toBe(true);
    expect((await page.request.get(`${base}/webmail/m/${ids.pictures}/inline/1`)).status()).toBe(404);
    // The SVG is still there to download, as bytes.
    expect((await page.request.get(`${base}/webmail/m/${ids.pictures}/file/1`)).headers()['content-type']).toBe('application/octet-stream');
    // The logo is shown, so not listed again as a file; the drawing is.
    expect(await page.locator('ul.files li').allInnerTexts()).toEqual([expect.stringMatching(/^attachment-2\.svg /)]);
  });

  it('replies only to the message\'s internal correspondents, with an attachment, through the spool', async () => {
    await page.goto(`${base}/webmail/m/${ids.report}/reply`);
    expect(await page.inputValue('#subject')).toBe('Re: Quarterly report');
    expect(await page.inputValue('#text')).toContain('> the report is attached.');
    await page.fill('#text', 'Thank you, received.');
    await page.setInputFiles('#files', { name: 'answer.txt', mimeType: 'text/plain', buffer: Buffer.from('my answer\n') });
    await screenshot(page, 'webmail-reply');
    await Promise.all([page.waitForNavigation(), page.click('form.card button[type=submit]')]);
    expect(await page.locator('main').innerText()).toContain('Your reply was sent.');
    const queued = await spool.list('incoming');
    expect(queued).toHaveLength(1);
    const entry = await spool.read('incoming', queued[0]!);
    expect(entry.meta.envelope.sender).toBe(READER);
    expect(entry.meta.envelope.recipients.map((r) => r.address)).toEqual(['alice@example.com']);
    const body = entry.body.toString('utf8');
    expect(body).toMatch(/^In-Reply-To: <report-1@example\.com>\r$/m);
    expect(body).toContain('Thank you, received.');
    expect(body).toContain(Buffer.from('my answer\n').toString('base64'));

    // The same form with another recipient slipped in: refused, nothing spooled.
    await page.goto(`${base}/webmail/m/${ids.report}/reply`);
    await page.locator('input[name=to]').first().evaluate((box) => {
      const input = box as unknown as { value: string; checked: boolean };
      input.value = 'mallory@evil.example';
      input.checked = true;
    });
    const forged = await Promise.all([page.waitForNavigation(), page.click('form.card button[type=submit]')]).then(([r]) => r);
    expect(forged!.status()).toBe(403);
    expect(await spool.list('incoming')).toHaveLength(1);
    expect((await db.auditRecords()).map((r) => r.action)).toEqual(expect.arrayContaining(['webmail.reply', 'webmail.reply_refused']));
    // Posts the page's script would never send: a file before the form's token; files over
    // portal.max_upload together, one file over it, more files than portal.max_uploads.
    await page.goto(`${base}/webmail/m/${ids.report}/reply`);
    const token = await page.inputValue('input[name=_csrf]');
    const post = async (parts: [string, string | { name: string; size: number }][]) => {
      const form = new FormData();
      for (const [k, v] of parts) {
        if (typeof v === 'string') form.append(k, v);
        else form.append(k, new Blob([randomBytes(v.size)]), v.name);
      }
      return (await page.request.post(`${base}/webmail/m/${ids.report}/reply`, { multipart: form, headers: { accept: 'text/html' } })).status();
    };
    const fields: [string, string][] = [['to', 'alice@example.com'], ['subject', 'x'], ['text', 'y']];
    expect(await post([['files', { name: 'a.bin', size: 10 }], ['_csrf', token], ...fields])).toBe(403);
    expect(await post([['_csrf', token], ...fields, ['files', { name: 'a.bin', size: 60_000 }], ['files', { name: 'b.bin', size: 60_000 }]])).toBe(413);
    expect(await post([['_csrf', token], ...fields, ['files', { name: 'a.bin', size: 150_000 }]])).toBe(413);
    expect(await post([['_csrf', token], ...fields, ...[1, 2, 3, 4].map((i): [string, { name: string; size: number }] => ['files', { name: `${i}.bin`, size: 10 }])])).toBe(413);
    expect(await spool.list('incoming')).toHaveLength(1);
    // A message with no internal correspondent offers no reply at all.
    expect((await page.goto(`${base}/webmail/m/${ids.hostile}/reply`))!.status()).toBe(404);
  });

  it('refuses a delete with a forged CSRF token, and deletes after the confirmation', async () => {
    const forged = await page.request.post(`${base}/webmail/m/${ids.old}/delete`, { form: { _csrf: 'A'.repeat(43) }, headers: { accept: 'text/html' } });
    expect(forged.status()).toBe(403);
    const missing = await page.request.post(`${base}/webmail/m/${ids.old}/delete`, { form: {}, headers: { accept: 'text/html' } });
    expect(missing.status()).toBe(403);
    expect(await db.message(account.id, ids.old)).not.toBeNull();
    await page.goto(`${base}/webmail/m/${ids.old}`);
    let asked = '';
    page.once('dialog', (d) => {
      asked = d.message();
      void d.accept();
    });
    await Promise.all([page.waitForNavigation(), page.click('button.danger')]);
    expect(asked).toBe('Delete this message for good?');
    expect(await page.locator('main').innerText()).toContain('The message was deleted.');
    expect(await db.message(account.id, ids.old)).toBeNull();
  });

  it('signing out ends the session on the server: the cookie replayed afterwards opens nothing', async () => {
    const cookie = (await ctx.cookies()).filter((c) => c.name.endsWith('postern-session')).map((c) => `${c.name}=${c.value}`).join('; ');
    expect(cookie).toMatch(/^__Host-postern-session=/);
    expect((await rawGet('/webmail/inbox', cookie)).status).toBe(200);
    await Promise.all([page.waitForNavigation(), page.click('header form button')]);
    expect(await page.locator('main').innerText()).toContain('You have signed out.');
    await screenshot(page, 'webmail-signed-out');
    expect(await rawGet('/webmail/inbox', cookie)).toEqual({ status: 303, location: '/webmail/?ended=1' });
    expect(await rawGet(`/webmail/m/${ids.report}/file/0`, cookie)).toEqual({ status: 303, location: '/webmail/?ended=1' });
  });

  it('locks an account out after repeated failures, and then refuses even the right password unchecked', async () => {
    const p = await (await browser.context({ ignoreHTTPSErrors: true })).newPage();
    for (let i = 0; i < 2; i++) expect((await signIn(p, 'other@partner.example', `wrong-${i}-password`))!.status()).toBe(401);
    const locked = await signIn(p, 'other@partner.example', 'other-password-1');
    expect(locked!.status()).toBe(429);
    expect(await p.locator('main').innerText()).toContain('Too many failed attempts. Try again in 10 minutes.');
    await screenshot(p, 'webmail-locked');
    // An address without an account locks the same way (nothing to learn from the difference).
    for (let i = 0; i < 2; i++) await signIn(p, 'ghost@partner.example', `wrong-${i}-password`);
    expect((await signIn(p, 'ghost@partner.example', 'whatever-password'))!.status()).toBe(429);
    expect((await db.auditRecords()).some((r) => r.action === 'webmail.locked' && r.actor === 'other@partner.example')).toBe(true);
    await p.context().close();
  });

  it('after a reset the open session is void and the page says the earlier mail was removed', async () => {
    await signIn(page, READER, CHOSEN);
    expect(new URL(page.url()).pathname).toBe('/webmail/inbox');
    await db.resetAccount(account.id, await newAccountKeys('a-new-given-password'));
    await page.goto(`${base}/webmail/inbox`);
    expect(new URL(page.url()).pathname).toBe('/webmail/');
    expect(await page.locator('main').innerText()).toContain('Your mailbox was reset: the messages you had here were removed');
    await screenshot(page, 'webmail-reset');
    await signIn(page, READER, 'a-new-given-password');
    expect(new URL(page.url()).pathname).toBe('/webmail/password');
    expect(await page.locator('main').innerText()).toContain('mail from before the reset was removed');
  });

  it('speaks German to a German browser', async () => {
    const p = await (await browser.context({ ignoreHTTPSErrors: true, locale: 'de-DE' })).newPage();
    await p.goto(`${base}/webmail/`);
    expect(await p.locator('h1').innerText()).toBe('Anmelden und geschützte E-Mail lesen');
    await screenshot(p, 'webmail-sign-in-de');
    await p.context().close();
  });
});
