/**
 * Every route of the admin API, by group. A group is a file beside this one exporting an
 * `ApiRoute[]`; app.ts registers them all under /api with one permission guard.
 */
import type { ApiRoute } from '../routes.js';
import { configRoutes } from './config.js';
import { KEY_ROUTES } from './keys.js';
import { policyRoutes } from './policy.js';
import { policyVersionRoutes } from './policy-versions.js';
import { queueRoutes } from './queue.js';

export const API_ROUTES: readonly ApiRoute[] = [...queueRoutes, ...policyRoutes, ...policyVersionRoutes, ...KEY_ROUTES, ...configRoutes];
