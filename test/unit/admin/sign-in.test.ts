/**
 * Signing in to the admin API and console: wrong passwords and unknown names answered alike and
 * counted towards the lock-out, TOTP asked when the account has it (a code good once), sessions
 * that follow the account (disabled or re-roled: at the next request), CSRF on every change,
 * cross-site posts refused, the OpenAPI document made from the routes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ROUTES } from '../../../src/admin/index.js';
import { base32Decode, totp } from '../../../src/keystore/totp.js';
import { ADMIN_PASSWORD, adminHarness, type AdminHarness } from '../../helpers/admin.js';

describe('admin sign-in and sessions', () => {
  let h: AdminHarness;
  beforeAll(async () => {
    h = await adminHarness({ prefix: 'postern-admin-signin-', roles: ['administrator', 'auditor'], config: { admin: { lockout: { account: 3, client: 50, backoff: 60_000, max_backoff: 3_600_000 } } } });
  }, 60_000);
  afterAll(async () => h?.close());

  const post = (payload: unknown, headers: Record<string, string> = {}) => h.app.inject({ method: 'POST', url: '/api/session', payload: payload as object, headers });

  it('answers a wrong password and an unknown name the same, and audits both', async () => {
    const wrong = await post({ name: 'op-auditor', password: 'not the password at all' });
    const unknown = await post({ name: 'nobody-here', password: 'not the password at all' });
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.json()).toEqual(unknown.json());
    expect(wrong.cookies.find((c) => c.name === 'postern-admin')).toBeUndefined();
    const failed = await h.store.auditLog({ action: 'login-failed' });
    expect(failed.map((r) => r.object)).toEqual(expect.arrayContaining(['admin:op-auditor', 'admin:nobody-here']));
    expect(JSON.stringify(failed)).not.toContain('not the password');
  });

  it('locks an account out after admin.lockout.account failures, even for the right password', async () => {
    await h.store.addAdminAccount({ name: 'locked-out', password: ADMIN_PASSWORD, roles: ['auditor'], actor: 'test' });
    for (let i = 0; i < 3; i++) expect((await post({ name: 'locked-out', password: `guess number ${i}!` })).statusCode).toBe(401);
    const r = await post({ name: 'locked-out', password: ADMIN_PASSWORD });
    expect(r.statusCode).toBe(429);
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    expect((r.json() as { error: string }).error).toMatch(/too many failed sign-ins/);
  });

  it('asks for the TOTP code, refuses a wrong one, takes the right one once', async () => {
    await h.store.addAdminAccount({ name: 'with-totp', password: ADMIN_PASSWORD, roles: ['auditor'], actor: 'test' });
    const { secret } = await h.store.enableAdminTotp('with-totp', 'test');
    const first = await post({ name: 'with-totp', password: ADMIN_PASSWORD });
    expect(first.statusCode).toBe(401);
    expect(first.json()).toMatchObject({ totp: true });
    const code = totp(base32Decode(secret), new Date());
    const wrongCode = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    expect((await post({ name: 'with-totp', password: ADMIN_PASSWORD, totp: wrongCode })).statusCode).toBe(401);
    const ok = await post({ name: 'with-totp', password: ADMIN_PASSWORD, totp: code });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ account: 'with-totp', roles: ['auditor'] });
    // The same code again (a replay seen on the wire) is refused.
    expect((await post({ name: 'with-totp', password: ADMIN_PASSWORD, totp: code })).statusCode).toBe(401);
  });

  it('refuses a change without the CSRF token, and a cross-site one, before the handler runs', async () => {
    const s = await h.as('administrator');
    const route = API_ROUTES.find((r) => r.method === 'POST')!;
    const url = `/api${route.url.replace(/:([A-Za-z_]+)/g, (_m, n: string) => route.example.params?.[n] ?? 'x')}`;
    const noToken = await h.app.inject({ method: 'POST', url, headers: { cookie: s.cookie, 'content-type': 'application/json' }, payload: JSON.stringify(route.example.body ?? {}) });
    expect(noToken.statusCode).toBe(403);
    expect((noToken.json() as { error: string }).error).toMatch(/CSRF/);
    const crossSite = await h.app.inject({ method: 'POST', url, headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' }, payload: JSON.stringify(route.example.body ?? {}) });
    expect(crossSite.statusCode).toBe(403);
    // Another session's token is no good either: it is bound to the session.
    const other = await h.signIn('op-auditor');
    const swapped = await h.app.inject({ method: 'POST', url, headers: { cookie: s.cookie, 'x-csrf-token': other.csrf, 'content-type': 'application/json' }, payload: JSON.stringify(route.example.body ?? {}) });
    expect(swapped.statusCode).toBe(403);
  });

  it('follows the account: a role taken away and a disabled account count at the next request', async () => {
    await h.store.addAdminAccount({ name: 'changing', password: ADMIN_PASSWORD, roles: ['administrator'], actor: 'test' });
    const s = await h.signIn('changing');
    expect((await h.call(s, 'GET', '/status')).statusCode).toBe(200);
    await h.store.setAdminRoles('changing', ['ca_operator'], 'test');
    const q = await h.call(s, 'GET', '/queue');
    expect(q.statusCode).toBe(403);
    expect((q.json() as { error: string }).error).toMatch(/needs queue\.read.*Administrator/);
    await h.store.setAdminDisabled('changing', true, 'test');
    expect((await h.call(s, 'GET', '/status')).statusCode).toBe(401);
    expect((await h.app.inject({ method: 'GET', url: '/api/session', headers: { cookie: s.cookie } })).statusCode).toBe(401);
  });

  it('signs out for good: the cookie replayed afterwards finds no session', async () => {
    const s = await h.signIn('op-auditor');
    const out = await h.app.inject({ method: 'DELETE', url: '/api/session', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
    expect(out.statusCode).toBe(200);
    expect((await h.call(s, 'GET', '/status')).statusCode).toBe(401);
    expect((await h.store.auditLog({ action: 'logout' })).some((r) => r.actor === 'op-auditor')).toBe(true);
  });

  it('serves an OpenAPI 3 document naming every route and the permission it needs', async () => {
    const r = await h.app.inject({ method: 'GET', url: '/api/openapi.json' });
    expect(r.statusCode).toBe(200);
    const doc = r.json() as { openapi: string; paths: Record<string, Record<string, { description?: string }>> };
    expect(doc.openapi).toMatch(/^3\./);
    for (const route of API_ROUTES) {
      const path = `/api${route.url.replace(/:([A-Za-z_]+)/g, '{$1}')}`;
      const op = doc.paths[path]?.[route.method.toLowerCase()];
      expect(op, `${route.method} ${path}`).toBeTruthy();
      expect(op!.description).toContain(route.permission);
    }
  });

  it('sends the security headers on every answer', async () => {
    const r = await h.app.inject({ method: 'GET', url: '/api/session' });
    expect(r.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(String(r.headers['content-security-policy'])).not.toMatch(/unsafe-inline/);
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['cache-control']).toBe('no-store');
  });
});
