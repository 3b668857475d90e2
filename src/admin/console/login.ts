/**
 * Signing in to the console and out of it. The form posts name, password and (when the account
 * has one) the authenticator's code with a CSRF token bound to this browser; app.ts's signIn does
 * the checking and the lock-out, and says when a code is needed: then the form asks again with a
 * code field. Nothing the browser sent comes back into the page but the name.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { html } from '../../portal/index.js';
import type { AdminWeb } from '../app.js';
import { field, localPath } from './kit.js';
import { renderBarePage } from './layout.js';

interface LoginView {
  name: string;
  next: string;
  error?: string;
  totp?: boolean;
}

function loginPage(web: AdminWeb, req: FastifyRequest, reply: FastifyReply, v: LoginView, status = 200): FastifyReply {
  const csrf = web.csrfToken(req, reply);
  const body = html`<form method="post" action="/login" class="card" novalidate>
<h2>Sign in to the admin console</h2>
${v.error ? html`<p class="notice error" role="alert">${v.error}</p>` : ''}
<input type="hidden" name="_csrf" value="${csrf}">
<input type="hidden" name="next" value="${v.next}">
<label for="name">Account</label>
<input type="text" id="name" name="name" value="${v.name}" autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="64" required${v.name ? '' : html` autofocus`}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" maxlength="1024" required${v.name ? html` autofocus` : ''}>
${v.totp ? html`<label for="totp">Code from your authenticator app</label><input type="text" id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6,8}" maxlength="10">` : ''}
<button type="submit">Sign in</button>
</form>`;
  return reply.code(status).type('text/html; charset=utf-8').send(renderBarePage('Sign in', web.ctx.config().hostname, body));
}

export function loginPages(web: AdminWeb): void {
  const { app } = web;
  app.get('/login', { schema: { hide: true } }, async (req, reply) => {
    const next = localPath((req.query as Record<string, unknown>).next);
    if (await web.caller(req, 'console')) return reply.redirect(next, 303);
    return loginPage(web, req, reply, { name: '', next });
  });

  app.post('/login', { schema: { hide: true } }, async (req, reply) => {
    const body = req.body;
    const name = field(body, 'name', 64);
    const next = localPath(field(body, 'next', 400));
    // app.ts leaves this form's token to us: no session yet, the token is bound to the browser only.
    if (!web.sessions.csrfValid(req, field(body, '_csrf', 200))) {
      return loginPage(web, req, reply, { name, next, error: 'The form had expired. Please sign in again.' }, 403);
    }
    const totp = field(body, 'totp', 10);
    const r = await web.signIn(req, reply, { name, password: field(body, 'password', 1024), ...(totp ? { totp } : {}) });
    if (r.ok) return reply.redirect(next, 303);
    if (r.retryAfter) reply.header('retry-after', String(r.retryAfter));
    return loginPage(web, req, reply, { name, next, error: capital(r.reason), ...(r.totp || totp ? { totp: true } : {}) }, r.status);
  });

  app.post('/logout', { schema: { hide: true } }, async (req, reply) => {
    // Through the API, so the sign-out is audited like any other; then this browser's cookie goes.
    await web.api(req, 'DELETE', '/session');
    web.signOut(req, reply);
    return reply.redirect('/login', 303);
  });
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1) + (s.endsWith('.') ? '' : '.');
