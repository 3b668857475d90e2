/**
 * Debian's Chromium, driven by playwright-core (DESIGN §5: no browser download works here).
 * Headless, no sandbox (tests run as root), none of Chromium's own network traffic (the
 * machine's network is closed: without these flags it tries Google's hosts at every start), a
 * fresh profile per launch (playwright makes one). The portal's test certificates are made per test run, so TLS errors
 * are ignored only where a test says so.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.POSTERN_CHROMIUM ?? '/usr/bin/chromium';

export interface TestBrowser {
  browser: Browser;
  /** A new context (own cookies) in the language given. */
  context(opts?: { locale?: string; ignoreHTTPSErrors?: boolean }): Promise<BrowserContext>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    browser,
    context: (opts = {}) => browser.newContext({ locale: opts.locale ?? 'en-GB', ignoreHTTPSErrors: opts.ignoreHTTPSErrors ?? false, acceptDownloads: true }),
    close: async () => {
      await browser.close().catch(() => undefined);
    },
  };
}

/**
 * Where tests write their screenshots: test-output/screenshots (not tracked), or the folder in
 * POSTERN_SCREENSHOTS (`POSTERN_SCREENSHOTS=docs/screenshots` renews the README's pictures).
 */
export const SCREENSHOTS = resolve(import.meta.dirname, '../..', process.env.POSTERN_SCREENSHOTS ?? 'test-output/screenshots');

/** A full-page screenshot as docs/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const file = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
