/**
 * Every route of the admin API, by group. A group is a file beside this one exporting an
 * `ApiRoute[]`; app.ts registers them all under /api with one permission guard. One line per
 * group below, so groups added side by side merge cleanly.
 */
import type { ApiRoute } from '../routes.js';
import { accountRoutes } from './accounts.js';
import { auditRoutes } from './audit.js';
import { CA_ROUTES } from './ca.js';
import { configRoutes } from './config.js';
import { KEY_ROUTES } from './keys.js';
import { logRoutes } from './logs.js';
import { pdfRoutes } from './pdf.js';
import { PGP_ROUTES } from './pgp.js';
import { policyRoutes } from './policy.js';
import { policyVersionRoutes } from './policy-versions.js';
import { queueRoutes } from './queue.js';
import { statusRoutes } from './status.js';
import { webmailRoutes } from './webmail.js';

export const API_ROUTES: readonly ApiRoute[] = [
  ...statusRoutes,
  ...queueRoutes,
  ...policyRoutes,
  ...policyVersionRoutes,
  ...KEY_ROUTES,
  ...PGP_ROUTES,
  ...CA_ROUTES,
  ...configRoutes,
  ...pdfRoutes,
  ...webmailRoutes,
  ...accountRoutes,
  ...auditRoutes,
  ...logRoutes,
];
