/**
 * The admin console in Chromium against a real gateway (the built binary under its supervisor),
 * accounts made with `postern admin add`. The Administrator signs in, finds a deferred message on
 * the dashboard and holds it on the queue pages, imports an openssl-made certificate, types a
 * policy rule with a typo — the editor shows the problem at its line — fixes it and activates it,
 * and mail sent through SMTP afterwards carries the rule's header in the maildir (mail sent
 * before does not). The Auditor then sees the same pages with every change control disabled
 * (titled with the permission it needs), and a change posted anyway with a valid form token is
 * refused with 403 and changes nothing. Screenshots: test-output/screenshots/admin-*.png (or
 * POSTERN_SCREENSHOTS=docs/screenshots).
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot, type TestBrowser } from '../helpers/browser.js';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { opensslCa, opensslMailbox } from '../helpers/pki-openssl.js';
import { sendTokens, waitUntil } from '../helpers/send.js';

const PASSWORD = 'console test passphrase 7';
const TYPO_POLICY = `rules:
  - name: tag mail the console activated
    when: { recipient: { domain: example.com } }
    do: [{ add_heder: { X-Console-Rule: activated } }]
`;
const GOOD_POLICY = TYPO_POLICY.replace('add_heder', 'add_header');

describe('admin console in Chromium against a running gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let browser: TestBrowser;
  let smtpPort: number;
  let base: string;
  let certPem: string;
  let fingerprint = '';
  let deferredId = '';
  const maildir = maildirOf(() => dir);

  async function signIn(ctx: BrowserContext, name: string): Promise<Page> {
    const page = await ctx.newPage();
    await page.goto(`${base}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.fill('#name', name);
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
    return page;
  }

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-admin-console-'));
    smtpPort = await freePort();
    const adminPort = await freePort();
    const deadHop = await freePort();
    const config = await writeGatewayConfig(dir, smtpPort, `admin:\n  listen: ["127.0.0.1:${adminPort}"]\n`);
    // example.net's next hop is down and retries are an hour apart: its mail waits in deferred/.
    await writeFile(config, (await readFile(config, 'utf8')).replace('relay:\n  routes:\n', `relay:\n  retry: [1h]\n  routes:\n    example.net: smtp://127.0.0.1:${deadHop}\n`));
    const ca = await opensslCa(dir, 'Console Test CA');
    certPem = await readFile((await opensslMailbox(dir, ca, 'carol@example.com')).cert, 'utf8');
    gw = await startGateway(config);
    await gw.waitFor((l) => l.event === 'admin.listening');
    for (const [name, role] of [['boss', 'administrator'], ['watcher', 'auditor']]) {
      const r = await runPostern(config, ['admin', 'add', name!, '--role', role!], { ...process.env, POSTERN_ADMIN_PASSWORD: PASSWORD });
      expect(r.code, r.stderr).toBe(0);
    }
    base = `http://127.0.0.1:${adminPort}`;
    browser = await launchBrowser();
    expect((await sendTokens(smtpPort, ['con-deferred'], { to: ['far@example.net'] })).accepted).toEqual(['con-deferred']);
    await waitUntil(async () => (await readdir(join(dir, 'spool', 'deferred')).catch(() => [])).length === 1, 20_000, 'a deferred message');
    deferredId = (await readdir(join(dir, 'spool', 'deferred')))[0]!.split('.')[0]!;
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await cleanup?.();
  });

  it('Administrator: dashboard, queue hold, certificate import, policy typo shown at its line, fixed, activated, and mail follows it', async () => {
    const ctx = await browser.context();
    const login = await ctx.newPage();
    await login.goto(`${base}/queue`);
    expect(new URL(login.url()).pathname).toBe('/login');
    await screenshot(login, 'admin-login');
    await login.close();

    const page = await signIn(ctx, 'boss');
    // Dashboard: the supervisor's roles, the deferred message and why it waits.
    expect(await page.locator('[data-queue="deferred"] .n').textContent()).toBe('1');
    expect(await page.locator('tr[data-role="smtpd"] .badge').textContent()).toBe('running');
    expect(await page.locator('#deferred-reasons').textContent()).toContain('example.net');
    // Every role's recent warnings came through the supervisor (no "incomplete").
    expect(await page.locator('h2:has-text("Recent warnings and errors") small').textContent()).toBe('every role');
    await screenshot(page, 'admin-dashboard');

    // Queue: the listing, the message, Hold.
    await page.click('[data-queue="deferred"]');
    await page.click(`#queue-list tr[data-id="${deferredId}"] a`);
    expect(page.url()).toBe(`${base}/queue/${deferredId}`);
    await page.click('#queue-actions button:has-text("Hold")');
    await page.waitForURL(`${base}/queue/${deferredId}?done=queue.hold`);
    expect(await page.locator('.notice.ok').textContent()).toContain('The message is held');
    expect((await readdir(join(dir, 'spool', 'hold'))).map((n) => n.split('.')[0])).toEqual([deferredId]);
    await page.goto(`${base}/queue`);
    await screenshot(page, 'admin-queue');

    // Keys: import the openssl-made certificate as PEM text.
    await page.goto(`${base}/keys`);
    await page.fill('#pem', certPem);
    await Promise.all([page.waitForURL(/\/keys\/certificates\/[0-9a-f]{64}\?done=cert\.import$/), page.click('#import button[type=submit]')]);
    fingerprint = /certificates\/([0-9a-f]{64})/.exec(page.url())![1]!;
    expect(await page.locator('.notice.ok').textContent()).toBe('Imported.');
    expect(await page.locator('dl.meta').first().textContent()).toContain('carol@example.com');
    await screenshot(page, 'admin-certificate');
    const download = await page.request.get(`${base}/keys/certificates/${fingerprint}/download`);
    expect(download.headers()['content-disposition']).toBe(`attachment; filename="${fingerprint.slice(0, 16)}.pem"`);
    expect((await download.text()).replace(/\s/g, '')).toBe(certPem.replace(/\s/g, ''));
    await page.goto(`${base}/keys`);
    expect(await page.locator(`#certificates tr[data-fingerprint="${fingerprint}"]`).count()).toBe(1);
    await screenshot(page, 'admin-keys');
    await page.goto(`${base}/`);
    expect(await page.locator('#expiring').textContent()).toContain('carol@example.com');

    // Before the new policy, mail carries no X-Console-Rule.
    expect((await sendTokens(smtpPort, ['con-before'])).accepted).toEqual(['con-before']);
    expect(await readFile(await maildir.waitDelivered('bob@example.com', 'con-before'), 'latin1')).not.toContain('X-Console-Rule');

    // Policy: a typo is a problem at its line (4), marked in the listing; the file stays as it was.
    await page.goto(`${base}/policy`);
    const hashBefore = await page.inputValue('input[name=hash]');
    await page.fill('#policy-text', TYPO_POLICY);
    await page.click('button[value=validate]');
    const problem = page.locator('#validation ol.problems li').first();
    expect(await problem.textContent()).toMatch(/^line 4, column \d+: .*add_heder/);
    expect(await page.locator('ol.listing li.bad').evaluateAll((lis) => lis.map((li) => li.id))).toEqual(['L4']);
    expect(await page.inputValue('#policy-text')).toBe(TYPO_POLICY);
    await problem.locator('a').click();
    // The script took the caret to that line of the editor.
    const caretLine = await page.$eval('#policy-text', (t) => {
      const area = t as unknown as { value: string; selectionStart: number };
      return area.value.slice(0, area.selectionStart).split('\n').length;
    });
    expect(caretLine).toBe(4);
    await screenshot(page, 'admin-policy-problem');
    // Activating it anyway is refused with the same problem.
    await page.click('button[value=activate]');
    expect(await page.locator('.notice.error').textContent()).toContain('does not validate');
    expect(await readFile(join(dir, 'policy.yaml'), 'utf8')).toBe('rules: []\n');

    // Explain the fixed draft, then activate it.
    await page.fill('#policy-text', GOOD_POLICY);
    await page.fill('#x-from', 'alice@example.org');
    await page.fill('#x-to', 'bob@example.com');
    await page.click('button[value=explain]');
    expect(await page.locator('#explanation').textContent()).toContain('tag mail the console activated');
    expect(await page.inputValue('input[name=hash]')).toBe(hashBefore);
    await Promise.all([page.waitForURL(`${base}/policy?done=policy.activate`), page.click('button[value=activate]')]);
    expect(await page.locator('.notice.ok').textContent()).toContain('The new policy is active');
    expect(await readFile(join(dir, 'policy.yaml'), 'utf8')).toBe(GOOD_POLICY);
    expect(await page.locator('#versions tbody tr').count()).toBe(2);
    await screenshot(page, 'admin-policy');

    // Mail sent now follows the new rule (the workers take the reload message a moment after the supervisor sends it).
    await gw.waitFor((l) => l.event === 'supervisor.reloaded');
    let n = 0;
    await waitUntil(async () => {
      const token = `con-after-${++n}`;
      if ((await sendTokens(smtpPort, [token])).accepted.length !== 1) return false;
      return /^X-Console-Rule: activated\r$/m.test(await readFile(await maildir.waitDelivered('bob@example.com', token), 'latin1'));
    }, 30_000, 'mail with the header of the activated rule');
    await ctx.close();
  }, 180_000);

  it('Auditor: the same pages, every change control disabled, a forged change refused', async () => {
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const ctx = await browser.context();
    const page = await signIn(ctx, 'watcher');
    for (const path of ['/', '/queue', `/queue/${deferredId}`, '/keys', `/keys/certificates/${fingerprint}`, '/policy', '/audit', '/config']) {
      const res = await page.goto(`${base}${path}`);
      expect(res?.status(), path).toBe(200);
      const controls = await page.locator('button[data-permission]').evaluateAll((bs) =>
        bs.map((b) => ({ permission: b.getAttribute('data-permission')!, disabled: (b as unknown as { disabled: boolean }).disabled, title: b.getAttribute('title') })),
      );
      const changes = controls.filter((c) => !c.permission.endsWith('.read'));
      // The dashboard and the audit trail have nothing to change; every other page has.
      if (path !== '/' && path !== '/audit') expect(changes.length, path).toBeGreaterThan(0);
      for (const c of changes) {
        expect(c.disabled, `${path} ${c.permission}`).toBe(true);
        expect(c.title).toMatch(new RegExp(`^needs ${c.permission.replace('.', '\\.')} \\(Administrator`));
      }
      // Reading stays possible: validate and explain are the Auditor's too.
      for (const c of controls.filter((x) => x.permission.endsWith('.read'))) expect(c.disabled, `${path} ${c.permission}`).toBe(false);
      if (path === '/keys') expect(await page.locator('#import fieldset').getAttribute('disabled')).toBe('');
      if (path === '/policy') await screenshot(page, 'admin-policy-auditor');
    }

    // The audit trail shows the Administrator's changes through the console, the policy's before and after among them.
    await page.goto(`${base}/audit?actor=boss`);
    const rows = await page.locator('#audit tbody tr').evaluateAll((trs) => trs.map((tr) => tr.textContent ?? ''));
    expect(rows.find((r) => r.includes('policy.activate'))).toMatch(/boss\s*console · 127\.0\.0\.1/);
    expect(rows.some((r) => r.includes('cert.import') && r.includes('carol@example.com'))).toBe(true);
    expect(rows.some((r) => r.includes('queue.hold'))).toBe(true);
    await screenshot(page, 'admin-audit');
    const exported = await page.request.get(`${base}/audit/export?action=policy.activate`);
    expect(exported.headers()['content-disposition']).toMatch(/^attachment; filename="postern-audit-\d{4}-\d{2}-\d{2}\.jsonl"$/);
    const lines = (await exported.text()).trim().split('\n').map((l) => JSON.parse(l) as { actor: string; before: string; after: string });
    expect(lines).toEqual([expect.objectContaining({ actor: 'boss', before: 'rules: []\n', after: GOOD_POLICY })]);

    // A change posted anyway, with this session's valid form token: refused by the API's guard.
    await page.goto(`${base}/queue/${deferredId}`);
    const csrf = await page.inputValue('input[name=_csrf] >> nth=0');
    const res = await page.request.post(`${base}/queue/${deferredId}/delete`, { form: { _csrf: csrf } });
    expect(res.status()).toBe(403);
    expect(await res.text()).toContain('not allowed: needs queue.change');
    expect((await readdir(join(dir, 'spool', 'hold'))).map((n) => n.split('.')[0])).toEqual([deferredId]);
    const trust = await page.request.post(`${base}/keys/certificates/${fingerprint}/delete`, { form: { _csrf: csrf } });
    expect(trust.status()).toBe(403);
    const activate = await page.request.post(`${base}/policy`, { form: { _csrf: csrf, do: 'activate', text: 'rules: []\n', hash: '0'.repeat(64) } });
    expect(activate.status()).toBe(403);
    expect(await readFile(join(dir, 'policy.yaml'), 'utf8')).toBe(GOOD_POLICY);
    await ctx.close();
  }, 120_000);
});
