/**
 * The admin role's application in the test's process, on a real keystore (with its KEK), portal.db
 * and spool in a temporary data_dir, with one account per admin role (`op-<role>`) and requests
 * through Fastify's inject. The supervisor is the one fake: it counts reloads (tests that need a
 * real reload start a real gateway).
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildAdminApp, type AdminContext, type AdminWeb, type RoleStatus } from '../../src/admin/index.js';
import { consolePages } from '../../src/admin/console/index.js';
import type { Config } from '../../src/config/types.js';
import { ADMIN_ROLES, type AdminRole } from '../../src/core/admin-roles.js';
import { openKeyStoreWithPortal, type KeyStore, type PortalDb } from '../../src/keystore/index.js';
import { silentLogger, type Logger } from '../../src/log/index.js';
import { Spool } from '../../src/spool/index.js';
import { tempDir, testConfig } from './config.js';

export const ADMIN_PASSWORD = 'correct horse battery staple';

export interface AdminSessionCookies {
  cookie: string;
  csrf: string;
}

export interface AdminHarness {
  dir: string;
  config: Config;
  store: KeyStore;
  portal: PortalDb;
  spool: Spool;
  ctx: AdminContext;
  app: FastifyInstance;
  web: AdminWeb;
  /** Reloads asked of the (fake) supervisor. */
  reloads: number;
  /** Sign in as NAME (password ADMIN_PASSWORD unless given). */
  signIn(name: string, password?: string, totp?: string): Promise<AdminSessionCookies>;
  /** A session of the account that holds just `role`. */
  as(role: AdminRole): Promise<AdminSessionCookies>;
  /** An API call (url below /api) with a session, or as nobody (null). */
  call(session: AdminSessionCookies | null, method: string, url: string, body?: unknown, query?: Record<string, string>): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function adminHarness(opts: { prefix?: string; config?: Parameters<typeof testConfig>[1]; log?: Logger; roles?: readonly AdminRole[] } = {}): Promise<AdminHarness> {
  const { dir, cleanup } = await tempDir(opts.prefix ?? 'postern-admin-');
  const config = testConfig(dir, opts.config ?? {});
  const { store, portal } = await openKeyStoreWithPortal(config, { createKek: true });
  const spool = await Spool.open(dir);
  const log = opts.log ?? silentLogger();
  const status: RoleStatus[] = [{ role: 'admin', index: 0, pid: process.pid, running: true, since: new Date().toISOString(), restarts: 0 }];
  const h = { reloads: 0 } as AdminHarness;
  const ctx: AdminContext = {
    config: () => config,
    configFile: config.file,
    store,
    portal,
    spool,
    log,
    supervisor: {
      status: async () => status,
      reload: async () => {
        h.reloads++;
        return true;
      },
    },
    audit: async (caller, c) => store.audit({ actor: caller.account, action: c.action, object: c.object, detail: c.detail, client: caller.client, via: caller.via, before: c.before, after: c.after }),
  };
  for (const role of opts.roles ?? ADMIN_ROLES) await store.addAdminAccount({ name: `op-${role}`, password: ADMIN_PASSWORD, roles: [role], actor: 'test' });
  const { app, web } = await buildAdminApp({
    ctx,
    log,
    tls: false,
    rateLimit: 100_000,
    pages: [consolePages],
    accounts: {
      checkLogin: (name, password, totp) => store.checkAdminLogin(name, password, totp),
      account: async (name) => (await store.adminAccount(name)) ?? undefined,
      failures: store.adminLoginFailures(),
    },
  });
  const sessions = new Map<string, AdminSessionCookies>();
  const signIn = async (name: string, password = ADMIN_PASSWORD, totp?: string) => {
    const res = await app.inject({ method: 'POST', url: '/api/session', payload: { name, password, ...(totp ? { totp } : {}) } });
    if (res.statusCode !== 200) throw new Error(`sign-in as ${name}: ${res.statusCode} ${res.body}`);
    const cookie = res.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    return { cookie, csrf: (res.json() as { csrf: string }).csrf };
  };
  return Object.assign(h, {
    dir,
    config,
    store,
    portal,
    spool,
    ctx,
    app,
    web,
    signIn,
    as: async (role: AdminRole) => {
      let s = sessions.get(role);
      if (!s) sessions.set(role, (s = await signIn(`op-${role}`)));
      return s;
    },
    call: (session: AdminSessionCookies | null, method: string, url: string, body?: unknown, query?: Record<string, string>) =>
      app.inject({
        method: method as 'GET',
        url: `/api${url}`,
        ...(query ? { query } : {}),
        headers: { ...(session ? { cookie: session.cookie, 'x-csrf-token': session.csrf } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
      }),
    close: async () => {
      await app.close();
      await store.close();
      portal.close();
      await cleanup();
    },
  });
}

/** A signed-in client of a running gateway's admin API over HTTP (cookies kept, csrf sent on changes). */
export interface AdminHttp {
  session: AdminSessionCookies;
  api<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; json: T }>;
}

/** Sign in at `base` (http://host:port) with POST /api/session; throws unless it answers 200. */
export async function adminHttp(base: string, name: string, password = ADMIN_PASSWORD): Promise<AdminHttp> {
  const res = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, password }) });
  if (res.status !== 200) throw new Error(`sign-in as ${name}: ${res.status} ${await res.text()}`);
  const session = { cookie: res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; '), csrf: ((await res.json()) as { csrf: string }).csrf };
  return {
    session,
    api: async <T>(method: string, path: string, body?: unknown) => {
      const r = await fetch(`${base}/api${path}`, {
        method,
        headers: { cookie: session.cookie, 'x-csrf-token': session.csrf, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      return { status: r.status, json: (await r.json().catch(() => null)) as T };
    },
  };
}
