/**
 * The admin role as one Fastify application: sign-in (password, optional TOTP, lock-out), the API
 * under /api with ONE permission guard for every route (routes.ts declares what each needs,
 * permissions.ts says who has it), the OpenAPI document made from the routes' schemas, /metrics,
 * and the console's pages (registered by the console module over the same API).
 *
 * Guards every request gets: security headers (a CSP without anything inline; no framing, no
 * referrer), a per-client rate limit, JSON bodies up to 1 MB (a policy file, a PKCS#12 bundle),
 * refusal of anything a browser marks cross-site, and CSRF on every change: the API wants the
 * `x-csrf-token` header (a script gets the token when it signs in), a console form the `_csrf`
 * field — both an HMAC bound to the browser's nonce cookie and the session (portal/session.ts).
 * An API call is refused without a session (401) and without the permission (403, with the roles
 * that have it); a refused change is also written to the audit trail.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import ipaddr from 'ipaddr.js';
import { ADMIN_ROLE_TITLES, isAdminRole, type AdminRole } from '../core/admin-roles.js';
import type { Logger } from '../log/index.js';
import { LoginGuard, Sessions, type LoginFailureStore } from '../portal/index.js';
import { API_ROUTES } from './api/index.js';
import { allowed, isChange, rolesGranting } from './permissions.js';
import { ApiError, type AdminCaller, type AdminContext, type ApiRoute } from './routes.js';

export const ADMIN_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** An account as the sign-in and the guard need it (the keystore's admin accounts). */
export interface AdminAccountInfo {
  name: string;
  roles: readonly AdminRole[];
  disabled: boolean;
}

export type LoginCheck = { ok: true; account: AdminAccountInfo } | { ok: false; reason: 'invalid' | 'totp_required' | 'disabled' };

/** What the keystore offers for accounts (adapted in roles/admin.ts). */
export interface AdminAccounts {
  checkLogin(name: string, password: string, totp: string | undefined): Promise<LoginCheck>;
  /** Read on every request, so a role taken away or an account disabled takes effect at once. */
  account(name: string): Promise<AdminAccountInfo | undefined>;
  failures: LoginFailureStore;
}

export interface AdminSession {
  account: string;
}

/** What the console's page modules build on. */
export interface AdminWeb {
  app: FastifyInstance;
  ctx: AdminContext;
  sessions: Sessions<AdminSession>;
  tls: boolean;
  /** The signed-in caller of a request (roles as they are now), or null. */
  caller(req: FastifyRequest, via?: AdminCaller['via']): Promise<AdminCaller | null>;
  /** Check name, password and code with lock-out; on success a new session. */
  signIn(req: FastifyRequest, reply: FastifyReply, form: { name: string; password: string; totp?: string }): Promise<SignInResult>;
  signOut(req: FastifyRequest, reply: FastifyReply): void;
  /** The CSRF token for a form or a script of this browser and session. */
  csrfToken(req: FastifyRequest, reply: FastifyReply): string;
  /**
   * Call the API as the browser's caller would (same cookies, same guard), marked as the console's:
   * pages never reach a module by another way than the API.
   */
  api(req: FastifyRequest, method: ApiRoute['method'], url: string, body?: unknown): Promise<{ status: number; json: unknown; headers: Record<string, unknown>; raw: Buffer }>;
}

export type SignInResult = { ok: true; caller: AdminCaller } | { ok: false; status: 401 | 429; reason: string; totp?: boolean; retryAfter?: number };

export interface AdminAppOptions {
  ctx: AdminContext;
  accounts: AdminAccounts;
  log: Logger;
  tls: boolean;
  /** Prometheus text of the whole gateway (metrics module); absent: /metrics answers 404. */
  metrics?: () => Promise<string>;
  now?: () => number;
  /** Requests per minute and client before 429 (tests raise it). */
  rateLimit?: number;
  /** Console page modules, given the app and the web context. */
  pages?: ((web: AdminWeb) => void | Promise<void>)[];
}

const MAX_NAME = 64;
const MAX_PASSWORD = 1024;

export async function buildAdminApp(opts: AdminAppOptions): Promise<{ app: FastifyInstance; web: AdminWeb }> {
  const { ctx, accounts, log } = opts;
  const now = opts.now ?? Date.now;
  const config = ctx.config();
  const app = Fastify({
    logger: false,
    bodyLimit: 1024 * 1024,
    routerOptions: { maxParamLength: 300 },
    return503OnClosing: true,
    trustProxy: false,
    requestIdHeader: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    frameworkErrors: (err, _req, reply) => {
      const r = reply as FastifyReply;
      r.code((err as { code?: string }).code === 'FST_ERR_BAD_URL' ? 404 : 400).send({ error: 'bad request' });
    },
  });
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: 256 * 1024 });
  await app.register(rateLimit, { global: true, max: opts.rateLimit ?? 1200, timeWindow: 60_000, keyGenerator: (req) => req.ip });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Postern admin API', version: '1', description: 'Manage the Postern gateway. Sign in with POST /api/session; send the returned csrf token as x-csrf-token on every change.' },
      components: { securitySchemes: { session: { type: 'apiKey', in: 'cookie', name: opts.tls ? '__Host-postern-admin' : 'postern-admin' } } },
      security: [{ session: [] }],
    },
  });

  const sessions = new Sessions<AdminSession>({ idle: config.admin.session_idle, max: config.admin.session_max, secure: opts.tls, now, limit: 1000, cookieName: 'postern-admin' });
  const guard = new LoginGuard(accounts.failures, config.admin.lockout, now);
  // Marks the API calls the console's pages make in-process (web.api): a value no client knows.
  const consoleMark = randomBytes(24).toString('base64url');
  const isConsoleCall = (req: FastifyRequest) => {
    const v = req.headers['x-postern-console'];
    return typeof v === 'string' && v.length === consoleMark.length && timingSafeEqual(Buffer.from(v), Buffer.from(consoleMark));
  };

  const caller = async (req: FastifyRequest, via?: AdminCaller['via']): Promise<AdminCaller | null> => {
    const s = sessions.get(req);
    if (!s) return null;
    const account = await accounts.account(s.data.account);
    if (!account || account.disabled) {
      sessions.endWhere((d) => d.account === s.data.account);
      return null;
    }
    return { account: account.name, roles: account.roles.filter(isAdminRole), client: req.ip, via: via ?? (isConsoleCall(req) ? 'console' : 'api') };
  };

  const signIn: AdminWeb['signIn'] = async (req, reply, form) => {
    const name = form.name.trim().toLowerCase();
    if (!name || name.length > MAX_NAME || form.password.length > MAX_PASSWORD) return { ok: false, status: 401, reason: 'wrong name, password or code' };
    const wait = await guard.wait(name, req.ip);
    if (wait > 0) {
      log.warn({ event: 'admin.login_locked', account: name, client: req.ip }, 'sign-in refused: too many failures');
      return { ok: false, status: 429, reason: `too many failed sign-ins: try again in ${Math.ceil(wait / 1000)} s`, retryAfter: Math.ceil(wait / 1000) };
    }
    const totp = form.totp?.trim() || undefined;
    const r = await accounts.checkLogin(name, form.password, totp);
    if (!r.ok) {
      // A missing code is not a guess: the password was right; ask for the code without counting.
      if (r.reason === 'totp_required' && !totp) return { ok: false, status: 401, reason: 'enter the code of your authenticator app', totp: true };
      await guard.failed(name, req.ip);
      await ctx.audit({ account: name, roles: [], client: req.ip, via: isConsoleCall(req) ? 'console' : 'api' }, { action: 'login-failed', object: `admin:${name}` }).catch(() => undefined);
      log.warn({ event: 'admin.login_failed', account: name, client: req.ip }, 'admin sign-in failed');
      return { ok: false, status: 401, reason: 'wrong name, password or code', ...(r.reason === 'totp_required' ? { totp: true } : {}) };
    }
    await guard.succeeded(name);
    sessions.start(req, reply, { account: r.account.name });
    const c: AdminCaller = { account: r.account.name, roles: r.account.roles, client: req.ip, via: 'console' };
    await ctx.audit(c, { action: 'login', object: `admin:${r.account.name}` });
    log.info({ event: 'admin.login', account: r.account.name, client: req.ip }, 'admin signed in');
    return { ok: true, caller: c };
  };

  const web: AdminWeb = {
    app,
    ctx,
    sessions,
    tls: opts.tls,
    caller,
    signIn,
    signOut: (req, reply) => sessions.end(req, reply),
    csrfToken: (req, reply) => sessions.csrfToken(req, reply),
    api: async (req, method, url, body) => {
      const res = await app.inject({
        method,
        url: `/api${url}`,
        headers: {
          ...(req.headers.cookie ? { cookie: req.headers.cookie } : {}),
          'x-postern-console': consoleMark,
          'x-forwarded-for': req.ip,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
        remoteAddress: req.ip,
      });
      const type = String(res.headers['content-type'] ?? '');
      return { status: res.statusCode, json: type.startsWith('application/json') ? res.json() : null, headers: res.headers, raw: res.rawPayload };
    },
  };

  app.addHook('onRequest', async (req, reply) => {
    if (req.url.length > 4096) return reply.code(414).send({ error: 'URI too long' });
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.headers['sec-fetch-site'] === 'cross-site') return reply.code(403).send({ error: 'cross-site request refused' });
  });
  // CSRF for every change: the API's header or the console's form field.
  app.addHook('preHandler', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD') return;
    if (isConsoleCall(req)) return; // the page that made the call checked its form's token
    if (req.url === '/api/session' && req.method === 'POST') return; // signing in: no session yet
    if (req.routeOptions.url === '/login' && req.method === 'POST') return; // the console's sign-in form checks its own token
    const token = req.headers['x-csrf-token'] ?? (req.body as Record<string, unknown> | undefined)?._csrf;
    if (!sessions.csrfValid(req, token)) {
      log.warn({ event: 'admin.csrf_refused', path: req.url.split('?')[0]!.slice(0, 200), client: req.ip }, 'change without a valid CSRF token refused');
      return reply.code(403).send({ error: 'missing or invalid CSRF token (x-csrf-token header)' });
    }
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', ADMIN_CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-opener-policy', 'same-origin');
    reply.header('cross-origin-resource-policy', 'same-origin');
    if (opts.tls) reply.header('strict-transport-security', 'max-age=31536000');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.get('/health', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  // ---- sign-in for scripts (the console has its own form) -------------------------------------
  const sessionBody = {
    type: 'object',
    required: ['name', 'password'],
    additionalProperties: false,
    properties: { name: { type: 'string', maxLength: MAX_NAME }, password: { type: 'string', maxLength: MAX_PASSWORD }, totp: { type: 'string', maxLength: 10 } },
  };
  app.post('/api/session', { schema: { tags: ['session'], summary: 'Sign in; answers the csrf token for x-csrf-token', body: sessionBody, security: [] } }, async (req, reply) => {
    const b = req.body as { name: string; password: string; totp?: string };
    const r = await signIn(req, reply, b);
    if (!r.ok) {
      if (r.retryAfter) reply.header('retry-after', String(r.retryAfter));
      return reply.code(r.status).send({ error: r.reason, ...(r.totp ? { totp: true } : {}) });
    }
    return { account: r.caller.account, roles: r.caller.roles, csrf: sessions.csrfToken(req, reply) };
  });
  app.get('/api/session', { schema: { tags: ['session'], summary: 'Who is signed in, with a csrf token' } }, async (req, reply) => {
    const c = await caller(req);
    if (!c) return reply.code(401).send({ error: 'not signed in' });
    return { account: c.account, roles: c.roles, csrf: sessions.csrfToken(req, reply) };
  });
  app.delete('/api/session', { schema: { tags: ['session'], summary: 'Sign out' } }, async (req, reply) => {
    const c = await caller(req);
    sessions.end(req, reply);
    if (c) await ctx.audit(c, { action: 'logout', object: `admin:${c.account}` });
    return { signedOut: true };
  });

  // ---- the API: every route behind the one guard ---------------------------------------------
  for (const route of API_ROUTES) registerRoute(app, route, { ctx, caller, log });

  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // Prometheus scrapes from admin.metrics_from without a session; anyone else needs metrics.read.
  const scrapers = config.admin.metrics_from.map((n) => (n.includes('/') ? ipaddr.parseCIDR(n) : ipaddr.parseCIDR(`${n}/${ipaddr.parse(n).kind() === 'ipv4' ? 32 : 128}`)));
  const mayScrape = (ip: string) => {
    try {
      let a = ipaddr.parse(ip);
      if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) a = (a as ipaddr.IPv6).toIPv4Address();
      return scrapers.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits));
    } catch {
      return false;
    }
  };
  app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
    if (!opts.metrics) return reply.code(404).send({ error: 'metrics are not collected' });
    if (!mayScrape(req.ip)) {
      const c = await caller(req);
      if (!c) return reply.code(401).send({ error: 'not signed in (or scrape from admin.metrics_from)' });
      if (!allowed(c.roles, 'metrics.read')) return reply.code(403).send({ error: refusal('metrics.read') });
    }
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(await opts.metrics());
  });

  for (const register of opts.pages ?? []) await register(web);

  app.setNotFoundHandler(async (_req, reply) => reply.code(404).send({ error: 'not found' }));
  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string; validation?: unknown }, req, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send({ error: err.message, ...(err.details !== undefined ? { details: err.details } : {}) });
    if (err.validation) return reply.code(400).send({ error: `invalid request: ${err.message}` });
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status >= 500) log.error({ event: 'admin.error', path: req.url.split('?')[0]!.slice(0, 200), reason: err.message }, 'admin request failed');
    return reply.code(status).send({ error: status >= 500 ? 'internal error (see the gateway log)' : err.message });
  });
  await app.ready();
  return { app, web };
}

/** "needs queue.change (Administrator, Network Operator, …)": what a refused caller is told. */
export function refusal(permission: Parameters<typeof rolesGranting>[0]): string {
  return `not allowed: needs ${permission}, which ${rolesGranting(permission).map((r) => ADMIN_ROLE_TITLES[r]).join(', ')} may do`;
}

function registerRoute(app: FastifyInstance, route: ApiRoute, deps: { ctx: AdminContext; caller: AdminWeb['caller']; log: Logger }): void {
  const { ctx, log } = deps;
  app.route({
    method: route.method,
    url: `/api${route.url}`,
    ...(route.bodyLimit ? { bodyLimit: route.bodyLimit } : {}),
    schema: { tags: [route.tag], summary: route.summary, description: `Needs the permission \`${route.permission}\`.`, ...(route.schema ?? {}) },
    // The guard runs before the body is even validated: nobody learns the API's shape by probing.
    preValidation: async (req, reply) => {
      const c = await deps.caller(req);
      if (!c) return reply.code(401).send({ error: 'not signed in' });
      if (!allowed(c.roles, route.permission)) {
        if (isChange(route.permission)) {
          await ctx.audit(c, { action: 'denied', object: `api:${route.method} ${route.url}`, detail: `needs ${route.permission}` }).catch((err: Error) => log.error({ event: 'admin.audit_failed', reason: err.message }, 'audit record not written'));
        }
        log.warn({ event: 'admin.denied', account: c.account, permission: route.permission, route: `${route.method} ${route.url}` }, 'admin request refused by role');
        return reply.code(403).send({ error: refusal(route.permission) });
      }
      (req as GuardedRequest).postern_caller = c;
    },
    handler: async (req, reply) => {
      const c = (req as GuardedRequest).postern_caller!;
      const result = await route.handler({ params: (req.params ?? {}) as Record<string, string>, query: (req.query ?? {}) as Record<string, unknown>, body: req.body, caller: c }, ctx);
      reply.code(result.status ?? 200);
      if ('file' in result) {
        const name = result.file.name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || 'download';
        return reply.type(result.file.type).header('content-disposition', `attachment; filename="${name}"`).send(result.file.bytes);
      }
      return reply.send(result.json);
    },
  });
}

interface GuardedRequest {
  postern_caller?: AdminCaller;
}
