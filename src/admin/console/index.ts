/**
 * The admin console: server-rendered pages over the admin API (issue 18). Every page reads and
 * changes only through `web.api` — the same guard, validation and audit as a script's call — so a
 * page can never do what the API refuses; it only greys out what the caller's roles do not allow.
 *
 * Untrusted input: form fields and query strings from an operator's browser, which a hostile page
 * may drive (CSRF tokens on every form, checked by app.ts; redirects only to local paths), and
 * everything the API returns (addresses, replies, policy text), escaped by the `html` template.
 * Secrets: the sign-in password passes through to signIn and is never echoed back.
 */
import type { AdminWeb } from '../app.js';
import { registerAssets } from './assets.js';
import { auditPages } from './audit.js';
import { configPages } from './config.js';
import { dashboardPages } from './dashboard.js';
import { keyPages } from './keys.js';
import { loginPages } from './login.js';
import { pgpPages } from './pgp.js';
import { policyPages } from './policy.js';
import { queuePages } from './queue.js';

/** Register every console page on the admin app (AdminAppOptions.pages). */
export function consolePages(web: AdminWeb): void {
  registerAssets(web.app);
  loginPages(web);
  dashboardPages(web);
  queuePages(web);
  keyPages(web);
  pgpPages(web);
  policyPages(web);
  auditPages(web);
  configPages(web);
}
