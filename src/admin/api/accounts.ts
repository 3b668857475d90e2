/**
 * The admin accounts through the admin API (issue 18): who may sign in, with which roles, whether
 * disabled, with TOTP, when last signed in (accounts.read). Accounts are made and changed with
 * `postern admin` on the gateway's shell, so whoever holds a console session cannot give
 * themselves more.
 *
 * Secrets: none leave — the store's AdminAccount carries no password hash and no TOTP secret.
 */
import { adminAccountJson } from '../../keystore/index.js';
import { ok, type ApiRoute } from '../routes.js';

export const accountRoutes: ApiRoute[] = [
  {
    method: 'GET',
    url: '/accounts',
    permission: 'accounts.read',
    summary: 'List the admin accounts: name, roles, disabled, TOTP, created, password changed, last sign-in (no password hash or TOTP secret)',
    tag: 'accounts',
    async handler(_req, ctx) {
      return ok({ accounts: (await ctx.store.adminAccounts()).map(adminAccountJson) });
    },
    example: {},
  },
];
