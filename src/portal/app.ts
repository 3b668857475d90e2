/**
 * The portal as one Fastify application: the machine routes (health, WKD, CRL), the key server,
 * the PDF reply pages and webmail, behind one set of guards that every route gets:
 * - security headers on every answer (a Content-Security-Policy that allows our own /assets/
 *   and nothing inline, no framing, no referrer, no sniffing; HSTS over TLS);
 * - a per-client request rate limit, and body limits (forms 64 KB; uploads portal.max_upload in
 *   at most portal.max_uploads files);
 * - CSRF: a POST needs a valid `_csrf` field (session.ts) and must not come cross-site;
 * - errors answered as a page in the visitor's language (or plain text for programs), with no
 *   detail of the request; the cause goes to the log, never a password or a mail's content.
 *
 * Page modules register themselves with `PortalPages` (the context below) and own their routes.
 */
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/index.js';
import { SCRIPT, STYLE, type Asset } from './assets.js';
import { langOf, type Lang } from './i18n.js';
import { errorPage, renderPage, type PageContent, type PageLook } from './page.js';
import { Sessions } from './session.js';
import { notFoundText, registerMachineRoutes, WKD_PREFIX, type MachineRoutesContext } from './wkd-routes.js';

export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Paths answered for programs: plain text errors, no CSRF (GET only), CORS where WKD wants it. */
const MACHINE = [WKD_PREFIX, '/health', '/pks/', '/certs/'];
const isMachinePath = (url: string) => MACHINE.some((p) => url.startsWith(p));

/** What a session of the portal holds: each page module its own kind. */
export interface PortalSession {
  kind: string;
  /** The account or link the session is for (an address key, a token hash), for endWhere(). */
  subject: string;
  [more: string]: unknown;
}

/** What page modules get to build their routes on. */
export interface PortalPages {
  config: Pick<Config, 'internal_domains' | 'portal' | 'hostname'>;
  log: Logger;
  look: PageLook;
  sessions: Sessions<PortalSession>;
  now: () => number;
  /** The visitor's language (Accept-Language). */
  lang(req: FastifyRequest): Lang;
  /** Send a page (status 200 unless given). */
  page(reply: FastifyReply, content: PageContent, status?: number): FastifyReply;
  /** Send the error page with one of i18n's error.* texts. */
  error(req: FastifyRequest, reply: FastifyReply, status: number, key: string, vars?: Record<string, string | number>): FastifyReply;
  /** The client's address as the portal saw it (no proxy headers are trusted). */
  client(req: FastifyRequest): string;
}

export interface PortalAppOptions {
  config: Pick<Config, 'internal_domains' | 'portal' | 'hostname'>;
  log: Logger;
  machine: MachineRoutesContext;
  /** The logo's bytes, when portal.logo (or pdf.logo) names one. */
  logo?: Asset;
  tls: boolean;
  now?: () => number;
  /** Requests per minute and client before 429 (tests lower it). */
  rateLimit?: number;
  /** Page modules, each given the app and the context. */
  pages?: ((app: FastifyInstance, pages: PortalPages) => void | Promise<void>)[];
}

export async function buildPortalApp(opts: PortalAppOptions): Promise<{ app: FastifyInstance; pages: PortalPages }> {
  const { config, log } = opts;
  const now = opts.now ?? Date.now;
  const app = Fastify({
    logger: false,
    // Forms are small; uploads go through multipart with their own limits.
    bodyLimit: 64 * 1024,
    // A hostile path is bounded before routing.
    routerOptions: { maxParamLength: 300 },
    return503OnClosing: true,
    trustProxy: false,
    requestIdHeader: false,
    // A path that does not decode (%ZZ) names nothing here: 404, as for any unknown path.
    frameworkErrors: (err, _req, reply) => {
      const r = reply as FastifyReply;
      if ((err as { code?: string }).code === 'FST_ERR_BAD_URL') r.code(404).type('text/plain; charset=utf-8').send('not found\n');
      else r.code(400).type('text/plain; charset=utf-8').send('bad request\n');
    },
    // Timeouts of the node servers are set in server.ts (they are made there).
  });
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  await app.register(multipart, {
    limits: { fileSize: config.portal.max_upload, files: config.portal.max_uploads, fields: 20, fieldSize: 1024 * 1024, parts: config.portal.max_uploads + 20, headerPairs: 100 },
    throwFileSizeLimit: true,
  });
  await app.register(rateLimit, { global: true, max: opts.rateLimit ?? 600, timeWindow: 60_000, keyGenerator: (req) => req.ip });

  const look: PageLook = { organisation: config.portal.organisation, logo: Boolean(opts.logo) };
  const sessions = new Sessions<PortalSession>({ idle: config.portal.session_idle, max: config.portal.session_max, secure: opts.tls, now });
  const lang = (req: FastifyRequest) => langOf(req.headers['accept-language']);
  const page = (reply: FastifyReply, content: PageContent, status = 200) => reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(renderPage(look, content));
  const error = (req: FastifyRequest, reply: FastifyReply, status: number, key: string, vars: Record<string, string | number> = {}) =>
    reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(errorPage(look, lang(req), key, vars));
  const pages: PortalPages = { config, log, look, sessions, now, lang, page, error, client: (req) => req.ip };

  app.addHook('onRequest', async (req, reply) => {
    if (req.url.length > 2048) return reply.code(414).type('text/plain; charset=utf-8').send('URI too long\n');
    // /pks/add answers every method itself (403: the key server takes no uploads, keyserver.ts).
    if (isMachinePath(req.url) && req.method !== 'GET' && req.method !== 'HEAD' && !req.url.startsWith('/pks/add')) {
      return reply.code(405).header('allow', 'GET, HEAD').type('text/plain; charset=utf-8').send('method not allowed\n');
    }
    // Fetch metadata (every current browser sends it): a form posted from another site is refused
    // before its body is read, whatever its cookies.
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.headers['sec-fetch-site'] === 'cross-site') return error(req, reply, 403, 'error.forbidden');
  });
  // CSRF on every form post, after the body is parsed (urlencoded here; multipart routes check
  // the field themselves once they have read it: see readUploadForm).
  app.addHook('preHandler', async (req, reply) => {
    if (req.method !== 'POST' || req.isMultipart()) return;
    const token = (req.body as Record<string, unknown> | undefined)?._csrf;
    if (!sessions.csrfValid(req, token)) {
      log.warn({ event: 'portal.csrf_refused', path: safePath(req.url), client: req.ip }, 'form post without a valid CSRF token refused');
      return error(req, reply, 403, 'error.forbidden');
    }
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-opener-policy', 'same-origin');
    reply.header('permissions-policy', 'camera=(), microphone=(), geolocation=(), interest-cohort=()');
    if (opts.tls) reply.header('strict-transport-security', 'max-age=31536000');
    if (!isMachinePath(req.url) && !reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });

  const serveAsset = (a: Asset) => async (req: FastifyRequest, reply: FastifyReply) => {
    reply.header('etag', a.etag).header('cache-control', 'public, max-age=3600');
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.type).send(a.body);
  };
  app.get('/assets/portal.css', serveAsset(STYLE));
  app.get('/assets/portal.js', serveAsset(SCRIPT));
  if (opts.logo) app.get('/assets/logo', serveAsset(opts.logo));

  registerMachineRoutes(app, opts.machine);
  for (const register of opts.pages ?? []) await register(app, pages);

  app.setNotFoundHandler(async (req, reply) => (isMachinePath(req.url) || !wantsHtml(req) ? notFoundText(reply) : error(req, reply, 404, 'error.notFound')));
  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) log.error({ event: 'portal.error', path: safePath(req.url), reason: err.message }, 'portal request failed');
    else log.info({ event: 'portal.refused', path: safePath(req.url), status, code: err.code }, 'portal request refused');
    if (isMachinePath(req.url) || !wantsHtml(req)) {
      return reply.code(status >= 500 ? 503 : status).type('text/plain; charset=utf-8').send(status >= 500 ? 'temporarily unavailable\n' : 'bad request\n');
    }
    const key = status === 413 ? 'error.tooLarge' : status === 429 ? 'error.tooMany' : status === 404 ? 'error.notFound' : status >= 500 ? 'error.unavailable' : 'error.forbidden';
    return error(req, reply, status >= 500 ? 503 : status, key);
  });
  await app.ready();
  return { app, pages };
}

/** A multipart form's CSRF check: call with the `_csrf` field once it was read. */
export function csrfMultipart(pages: PortalPages, req: FastifyRequest, token: unknown): boolean {
  return pages.sessions.csrfValid(req, token);
}

export interface UploadedFile {
  filename: string;
  contentType: string;
  content: Buffer;
}

/**
 * A multipart form with files (the PDF reply and the webmail reply). Its CSRF field comes first
 * (the pages put it there), so no file is read before the form is known to be ours: a file before
 * it refuses the post. Over `maxTotal` bytes of files together: 'too-large', after the rest was
 * read and dropped (a browser shows an answer only once its upload is done); one file over
 * portal.max_upload, or too many files, make @fastify/multipart throw its 413.
 */
export async function readUploadForm(pages: PortalPages, req: FastifyRequest, maxTotal: number): Promise<{ fields: Map<string, string[]>; files: UploadedFile[] } | 'forbidden' | 'too-large'> {
  const fields = new Map<string, string[]>();
  let files: UploadedFile[] = [];
  let checked = false;
  let total = 0;
  let tooLarge = false;
  for await (const part of req.parts()) {
    if (part.type === 'file') {
      if (!checked || tooLarge) {
        part.file.resume();
        if (!checked) return 'forbidden';
        continue;
      }
      const content = await part.toBuffer();
      // A file input left empty still sends a part: no name, no bytes.
      if (!part.filename && content.length === 0) continue;
      total += content.length;
      if (total > maxTotal) {
        tooLarge = true;
        files = [];
        continue;
      }
      files.push({ filename: part.filename, contentType: part.mimetype || 'application/octet-stream', content });
      continue;
    }
    const value = typeof part.value === 'string' ? part.value : '';
    if (part.fieldname === '_csrf' && !checked) {
      if (!csrfMultipart(pages, req, value)) return 'forbidden';
      checked = true;
    } else fields.set(part.fieldname, [...(fields.get(part.fieldname) ?? []), value]);
  }
  if (!checked) return 'forbidden';
  return tooLarge ? 'too-large' : { fields, files };
}

function wantsHtml(req: FastifyRequest): boolean {
  const accept = req.headers.accept ?? '';
  return accept === '' || accept.includes('text/html') || accept.includes('*/*');
}

/** The request path for a log line: bounded, without the query (it may hold an address) or a reply link's token. */
export function safePath(url: string | undefined): string {
  return (url ?? '').split('?')[0]!.replace(/^\/r\/[^/]*/, '/r/…').slice(0, 200);
}
