/**
 * What every console page route shares: the signed-in caller (else a redirect to /login), the
 * CSRF token for its forms, calls to the API (the only way a page reads or changes anything), and
 * how a refusal or failure of the API reaches the page (its status and one-line reason, shown in
 * the frame). After a change a page redirects (303) with `?done=KEY`; the texts those keys stand
 * for live here, so a link from elsewhere cannot put words of its choosing into the console.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { html, type Html } from '../../portal/index.js';
import type { AdminWeb } from '../app.js';
import type { AdminCaller, ApiRoute } from '../routes.js';
import { renderPage, type Notice, type Section } from './layout.js';

export interface PageContext {
  req: FastifyRequest;
  reply: FastifyReply;
  caller: AdminCaller;
  csrf: string;
  web: AdminWeb;
}

/** What the API answered when it did not answer 2xx: shown on the page with the API's status. */
export class PageRefusal extends Error {
  override readonly name = 'PageRefusal';
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export interface ApiAnswer<T> {
  status: number;
  json: T;
}

/** Call the API as the page's caller; a 2xx answer's JSON, or a PageRefusal with the API's reason. */
export async function api<T>(p: PageContext, method: ApiRoute['method'], url: string, body?: unknown): Promise<T> {
  const r = await apiAnswer<T>(p, method, url, body);
  if (r.status >= 300) throw refusalOf(r);
  return r.json;
}

/** The API's answer whatever its status (pages that show a 400's problems, a 403 as a notice). */
export async function apiAnswer<T>(p: PageContext, method: ApiRoute['method'], url: string, body?: unknown): Promise<ApiAnswer<T>> {
  const r = await p.web.api(p.req, method, url, body);
  return { status: r.status, json: r.json as T };
}

export function refusalOf(r: ApiAnswer<unknown>): PageRefusal {
  const j = (r.json ?? {}) as { error?: unknown; details?: unknown };
  return new PageRefusal(r.status, typeof j.error === 'string' ? j.error : `the gateway answered ${r.status}`, j.details);
}

/** Pass a file the API answers (an export) on to the browser as the download it is. */
export async function sendDownload(p: PageContext, url: string): Promise<FastifyReply> {
  const r = await p.web.api(p.req, 'GET', url);
  if (r.status !== 200) throw refusalOf({ status: r.status, json: r.json });
  const disposition = String(r.headers['content-disposition'] ?? '');
  if (!disposition.startsWith('attachment')) throw new PageRefusal(502, 'the API answered without a file');
  return p.reply.type(String(r.headers['content-type'])).header('content-disposition', disposition).send(r.raw);
}

/** A query string from the filters given (empty values left out). */
export function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** What a `?done=` key says after a change. */
const DONE: Record<string, string> = {
  'queue.hold': 'The message is held: it will not be retried until it is released.',
  'queue.release': 'The message is released and due for delivery now.',
  'queue.delete': 'The message was deleted from the queue (no bounce was sent).',
  'queue.flush': 'Deferred messages are due for delivery now.',
  'cert.import': 'Imported.',
  'cert.delete': 'The certificate was deleted.',
  'cert.trust': 'The certificate is now a trust anchor.',
  'cert.distrust': 'The certificate is no longer a trust anchor.',
  'pgp.import': 'The OpenPGP keys were imported.',
  'pgp.delete': 'The OpenPGP key was deleted.',
  'policy.activate': 'The new policy is active and the gateway has reloaded it.',
  'policy.activate-unreloaded': 'The new policy file is in place, but the gateway did not reload (its configuration does not validate): see the log.',
  'policy.unchanged': 'The policy is unchanged: the text is the one in force.',
  'policy.rollback': 'The earlier version is active again and the gateway has reloaded it.',
  'system.reload': 'The gateway reloaded its configuration and policy.',
};

export function doneNotice(req: FastifyRequest): Notice | undefined {
  const key = (req.query as Record<string, unknown>).done;
  return typeof key === 'string' && Object.hasOwn(DONE, key) ? { kind: 'ok', text: DONE[key]! } : undefined;
}

/** 303 to a console page after a change, with its message. */
export function redirectDone(reply: FastifyReply, path: string, done: keyof typeof DONE | string): FastifyReply {
  return reply.redirect(`${path}${path.includes('?') ? '&' : '?'}done=${encodeURIComponent(done)}`, 303);
}

export function sendPage(p: PageContext, frame: { title: string; section: Section; body: Html; notice?: Notice; status?: number }): FastifyReply {
  const hostname = p.web.ctx.config().hostname;
  return p.reply
    .code(frame.status ?? 200)
    .type('text/html; charset=utf-8')
    .send(renderPage({ caller: p.caller, hostname, title: frame.title, section: frame.section, csrf: p.csrf, body: frame.body, ...(frame.notice ? { notice: frame.notice } : {}) }));
}

/** A local path to go back to after sign-in; anything else (another host, a scheme) is "/". */
export function localPath(v: unknown): string {
  return typeof v === 'string' && /^\/(?!\/)[A-Za-z0-9/_.\-?=&%]{0,300}$/.test(v) && !v.includes('\\') ? v : '/';
}

type PageHandler = (p: PageContext) => Promise<FastifyReply | void>;

/**
 * A console route: without a session the browser goes to /login (and comes back after it); a
 * refusal of the API is the page's answer, with the API's status and reason.
 */
export function consoleRoute(web: AdminWeb, section: Section, handler: PageHandler) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const caller = await web.caller(req, 'console');
    if (!caller) {
      if (req.method === 'GET') return reply.redirect(`/login${req.url === '/' ? '' : query({ next: localPath(req.url) })}`, 303);
      return reply.code(401).type('text/html; charset=utf-8').send(`<!DOCTYPE html><title>Signed out</title><p>You are signed out. <a href="/login">Sign in</a> again.</p>`);
    }
    const p: PageContext = { req, reply, caller, csrf: web.csrfToken(req, reply), web };
    try {
      return await handler(p);
    } catch (err) {
      if (!(err instanceof PageRefusal)) throw err;
      return sendPage(p, {
        title: err.status === 403 ? 'Not allowed' : err.status === 404 ? 'Not found' : 'Refused',
        section,
        status: err.status,
        notice: { kind: 'error', text: err.message },
        body: html`<p><a href="${backTo(section)}" class="button secondary">Back</a></p>`,
      });
    }
  };
}

const backTo = (s: Section) => (s === 'dashboard' ? '/' : `/${s}`);

/** A form's string field, or '' (urlencoded bodies give strings; anything else is not ours). */
export function field(body: unknown, name: string, max = 4096): string {
  const v = (body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v.slice(0, max) : '';
}
