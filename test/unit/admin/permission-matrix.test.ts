/**
 * Every route of the admin API, called as each of the seven roles and as nobody: allowed or
 * refused exactly as the permission matrix says (403 naming the permission and the roles that have
 * it; 401 without a session), and a refused change leaves an audit record. The table is the
 * routes themselves (API_ROUTES), so a new route is covered the day it is added.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowed, API_ROUTES, isChange, permissionTable, ROLE_PERMISSIONS } from '../../../src/admin/index.js';
import { ADMIN_ROLES } from '../../../src/core/admin-roles.js';
import { adminHarness, type AdminHarness } from '../../helpers/admin.js';

const fill = (url: string, params: Record<string, string> = {}) => url.replace(/:([A-Za-z_]+)/g, (_m, name: string) => encodeURIComponent(params[name] ?? `missing-${name}`));

describe('the admin API under the permission matrix', () => {
  let h: AdminHarness;
  beforeAll(async () => {
    h = await adminHarness({ prefix: 'postern-admin-matrix-' });
  }, 60_000);
  afterAll(async () => h?.close());

  it('has routes, each with an example, and no two with the same method and URL', () => {
    expect(API_ROUTES.length).toBeGreaterThan(0);
    const seen = new Set(API_ROUTES.map((r) => `${r.method} ${r.url}`));
    expect(seen.size).toBe(API_ROUTES.length);
  });

  it('every role is in the matrix and only the Administrator holds every permission', () => {
    for (const role of ADMIN_ROLES) expect(ROLE_PERMISSIONS[role].length).toBeGreaterThan(0);
    const all = ROLE_PERMISSIONS.administrator.length;
    for (const role of ADMIN_ROLES.filter((r) => r !== 'administrator')) expect(ROLE_PERMISSIONS[role].length).toBeLessThan(all);
    // The Auditor reads everything and changes nothing.
    expect(ROLE_PERMISSIONS.auditor.every((p) => !isChange(p))).toBe(true);
    expect(ROLE_PERMISSIONS.administrator.filter((p) => !isChange(p)).every((p) => ROLE_PERMISSIONS.auditor.includes(p))).toBe(true);
  });

  it('is printed in the README as it is in the code', async () => {
    expect(await readFile(new URL('../../../README.md', import.meta.url), 'utf8')).toContain(permissionTable());
  });

  const cases = API_ROUTES.flatMap((route) => [...ADMIN_ROLES, null].map((role) => ({ route, role, name: `${route.method} ${route.url} as ${role ?? 'nobody'}` })));

  it.each(cases)('$name', async ({ route, role }) => {
    const session = role ? await h.as(role) : null;
    const before = (await h.store.auditLog({ action: 'denied' })).length;
    const res = await h.call(session, route.method, fill(route.url, route.example.params), route.example.body, route.example.query);
    if (!role) {
      expect(res.statusCode, res.body).toBe(401);
      return;
    }
    if (allowed([role], route.permission)) {
      expect([401, 403], `${res.statusCode} ${res.body}`).not.toContain(res.statusCode);
      return;
    }
    expect(res.statusCode, res.body).toBe(403);
    expect((res.json() as { error: string }).error).toContain(`needs ${route.permission}`);
    const denied = await h.store.auditLog({ action: 'denied' });
    if (isChange(route.permission)) {
      expect(denied.length).toBe(before + 1);
      expect(denied.find((d) => d.object === `api:${route.method} ${route.url}` && d.actor === `op-${role}`)).toBeTruthy();
    } else expect(denied.length).toBe(before);
  });
});
