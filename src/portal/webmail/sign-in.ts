/**
 * Signing in, choosing a password, signing out.
 *
 * Sign-in takes an address and a password. The address is canonicalised as everywhere
 * (core/address.ts addressKey), the lock-out checked per account and per client before any
 * work (a locked try costs nothing and says only "wait"), and then exactly one scrypt is spent
 * whether the account exists or not (unwrapNothing for an unknown, disabled or malformed one),
 * with the same page for every failure: the form tells no one which addresses have mailboxes.
 * Success puts the unwrapped key into a new session (a new id: one known before is worthless).
 *
 * The first sign-in (and the first after a reset) must choose a new password before anything
 * else: the given one was seen by the internal sender. A change rewraps the same key, so the mail
 * stays readable, and ends every other session of the account.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { addressKey } from '../../core/address.js';
import { PortalDbError } from '../../keystore/portal-db.js';
import {
  MIN_WEBMAIL_PASSWORD_LENGTH, rewrapAccountKey, unwrapAccountKey, unwrapNothing, webmailPasswordProblem,
} from '../../keystore/webmail-crypto.js';
import { html, type Html } from '../html.js';
import { t, type Lang } from '../i18n.js';
import { accountHeader, audit, isWebmailSession, signedIn, SESSION_KIND, type Webmail, type WebmailSession } from './context.js';

type Form = Record<string, unknown>;
const field = (body: unknown, name: string): string => {
  const v = (body as Form | undefined)?.[name];
  return typeof v === 'string' ? v : '';
};

/** The lock-out's key for what was typed: the canonical address key, bounded (hostile input). */
const accountKeyOf = (typed: string) => addressKey(typed.slice(0, 400)).slice(0, 320);

function signInPage(w: Webmail, req: FastifyRequest, reply: FastifyReply, lang: Lang, notice: Html | null, address = '', status = 200) {
  const token = w.pages.sessions.csrfToken(req, reply);
  return w.pages.page(
    reply,
    {
      lang,
      title: t(lang, 'webmail.signIn.title'),
      kind: 'page narrow webmail',
      body: html`<h1>${t(lang, 'webmail.signIn.title')}</h1>
${notice ?? ''}
<p>${t(lang, 'webmail.signIn.intro')}</p>
<form method="post" action="/webmail/login" class="card">
<input type="hidden" name="_csrf" value="${token}">
<label for="address">${t(lang, 'webmail.signIn.address')}</label>
<input type="text" id="address" name="address" value="${address}" autocomplete="username" inputmode="email" autocapitalize="none" spellcheck="false" required maxlength="320">
<label for="password">${t(lang, 'webmail.signIn.password')}</label>
<input type="password" id="password" name="password" autocomplete="current-password" required maxlength="256">
<div class="actions"><button type="submit">${t(lang, 'webmail.signIn.submit')}</button></div>
</form>`,
    },
    status,
  );
}

const note = (kind: 'ok' | 'error', text: string) => html`<p class="notice ${kind}" role="${kind === 'error' ? 'alert' : 'status'}">${text}</p>`;

function passwordPage(w: Webmail, req: FastifyRequest, reply: FastifyReply, si: { s: WebmailSession; account: { mustChangePassword: boolean; generation: number } }, lang: Lang, notice: Html | null, status = 200) {
  const first = si.account.mustChangePassword;
  return w.pages.page(
    reply,
    {
      lang,
      title: t(lang, 'webmail.password.title'),
      kind: 'page narrow webmail',
      headerExtra: accountHeader(w, req, reply, lang, si.s.address),
      body: html`<h1>${t(lang, 'webmail.password.title')}</h1>
${notice ?? ''}
${first ? html`<p>${t(lang, 'webmail.password.first')}</p>` : ''}
${first && si.account.generation > 1 ? note('ok', t(lang, 'webmail.password.afterReset')) : ''}
<form method="post" action="/webmail/password" class="card">
<input type="hidden" name="_csrf" value="${w.pages.sessions.csrfToken(req, reply)}">
<input type="text" name="username" value="${si.s.address}" autocomplete="username" hidden readonly>
<label for="current">${t(lang, 'webmail.password.current')}</label>
<input type="password" id="current" name="current" autocomplete="current-password" required maxlength="256">
<label for="new1">${t(lang, 'webmail.password.new')}</label>
<input type="password" id="new1" name="new1" autocomplete="new-password" required minlength="${MIN_WEBMAIL_PASSWORD_LENGTH}" maxlength="256" aria-describedby="rules">
<p class="hint" id="rules">${t(lang, 'webmail.password.rules', { min: MIN_WEBMAIL_PASSWORD_LENGTH })}</p>
<label for="new2">${t(lang, 'webmail.password.again')}</label>
<input type="password" id="new2" name="new2" autocomplete="new-password" required minlength="${MIN_WEBMAIL_PASSWORD_LENGTH}" maxlength="256">
<div class="actions"><button type="submit">${t(lang, 'webmail.password.submit')}</button>${first ? '' : html`<a class="button secondary" href="/webmail/inbox">${t(lang, 'webmail.reply.cancel')}</a>`}</div>
</form>`,
    },
    status,
  );
}

export function registerSignIn(app: FastifyInstance, w: Webmail): void {
  const { pages } = w;

  app.get('/webmail', async (_req, reply) => reply.code(308).header('location', '/webmail/').send());

  app.get('/webmail/', async (req, reply) => {
    const lang = pages.lang(req);
    const s = pages.sessions.get(req)?.data;
    if (s && isWebmailSession(s)) return reply.code(303).header('location', '/webmail/inbox').send();
    const q = req.query as Record<string, unknown>;
    const notice = q.reset ? note('error', t(lang, 'webmail.signIn.reset')) : q.out ? note('ok', t(lang, 'webmail.signIn.out')) : q.ended ? note('ok', t(lang, 'webmail.signIn.ended')) : null;
    return signInPage(w, req, reply, lang, notice);
  });

  app.post('/webmail/login', async (req, reply) => {
    const lang = pages.lang(req);
    const typed = field(req.body, 'address').trim();
    const password = field(req.body, 'password');
    const key = accountKeyOf(typed);
    const client = pages.client(req);
    const wait = await w.guard.wait(key, client);
    if (wait > 0) {
      pages.log.warn({ event: 'portal.webmail.locked', account: key, client }, 'webmail sign-in refused: locked out');
      return signInPage(w, req, reply, lang, note('error', t(lang, 'login.locked', { minutes: Math.max(1, Math.ceil(wait / 60_000)) })), typed, 429);
    }
    const account = key.includes('@') ? await w.deps.db.account(key) : null;
    const usable = account && !account.disabled ? account : null;
    const privateKey = usable ? await unwrapAccountKey(password, usable.wrapped) : await unwrapNothing(password);
    if (!usable || !privateKey) {
      await w.guard.failed(key, client);
      await audit(w, 'webmail.login_failed', { actor: key || '-', client });
      pages.log.info({ event: 'portal.webmail.login_failed', account: key, client }, 'webmail sign-in failed');
      if ((await w.guard.wait(key, client)) > 0) await audit(w, 'webmail.locked', { actor: key || '-', client });
      return signInPage(w, req, reply, lang, note('error', t(lang, 'webmail.signIn.failed')), typed, 401);
    }
    await w.guard.succeeded(key);
    await w.deps.db.touchLogin(usable.id, new Date(pages.now()));
    const data: WebmailSession = { kind: SESSION_KIND, subject: usable.addressKey, accountId: usable.id, generation: usable.generation, address: usable.address, key: privateKey };
    pages.sessions.start(req, reply, data);
    await audit(w, 'webmail.login', { actor: usable.address, client });
    pages.log.info({ event: 'portal.webmail.login', account: usable.addressKey, client }, 'webmail sign-in');
    return reply.code(303).header('location', usable.mustChangePassword ? '/webmail/password' : '/webmail/inbox').send();
  });

  app.get('/webmail/password', async (req, reply) => {
    const si = await signedIn(w, req, reply, { passwordPage: true });
    if (!si) return reply;
    return passwordPage(w, req, reply, si, si.lang, null);
  });

  app.post('/webmail/password', async (req, reply) => {
    const si = await signedIn(w, req, reply, { passwordPage: true });
    if (!si) return reply;
    const { lang, account, s } = si;
    const client = pages.client(req);
    const current = field(req.body, 'current');
    const new1 = field(req.body, 'new1');
    const new2 = field(req.body, 'new2');
    // The checks that cost nothing first: a scrypt only for a form that could succeed.
    if (new1 !== new2) return passwordPage(w, req, reply, si, lang, note('error', t(lang, 'webmail.password.mismatch')), 400);
    if (webmailPasswordProblem(new1)) return passwordPage(w, req, reply, si, lang, note('error', t(lang, 'webmail.password.weak', { min: MIN_WEBMAIL_PASSWORD_LENGTH })), 400);
    if (new1.normalize('NFKC') === current.normalize('NFKC')) return passwordPage(w, req, reply, si, lang, note('error', t(lang, 'webmail.password.same')), 400);
    // A stolen session must not make the current password cheap to guess: the same lock-out.
    const wait = await w.guard.wait(s.subject, client);
    if (wait > 0) return passwordPage(w, req, reply, si, lang, note('error', t(lang, 'login.locked', { minutes: Math.max(1, Math.ceil(wait / 60_000)) })), 429);
    if (!(await unwrapAccountKey(current, account.wrapped))) {
      await w.guard.failed(s.subject, client);
      await audit(w, 'webmail.password_failed', { actor: s.address, client });
      pages.log.info({ event: 'portal.webmail.password_failed', account: s.subject, client }, 'webmail password change: current password wrong');
      return passwordPage(w, req, reply, si, lang, note('error', t(lang, 'webmail.password.wrong')), 400);
    }
    await w.guard.succeeded(s.subject);
    const wrapped = await rewrapAccountKey(s.key, new1);
    try {
      await w.deps.db.changeAccountPassword(account.id, wrapped, new Date(pages.now()), { generation: s.generation });
    } catch (err) {
      if (err instanceof PortalDbError && (err.code === 'stale' || err.code === 'missing')) {
        // Reset or deleted while the form was open: the key in this session opens nothing any more.
        pages.sessions.end(req, reply);
        return reply.code(303).header('location', err.code === 'stale' ? '/webmail/?reset=1' : '/webmail/?ended=1').send();
      }
      throw err;
    }
    // Every other session of the account ends; this one goes on under a new id.
    pages.sessions.endWhere((d) => isWebmailSession(d) && d.accountId === account.id);
    pages.sessions.start(req, reply, { ...s });
    await audit(w, 'webmail.password_changed', { actor: s.address, client });
    pages.log.info({ event: 'portal.webmail.password_changed', account: s.subject, client }, 'webmail password changed');
    return reply.code(303).header('location', '/webmail/inbox?changed=1').send();
  });

  app.post('/webmail/logout', async (req, reply) => {
    const s = pages.sessions.get(req)?.data;
    pages.sessions.end(req, reply);
    if (s && isWebmailSession(s)) {
      await audit(w, 'webmail.logout', { actor: s.address, client: pages.client(req) });
      pages.log.info({ event: 'portal.webmail.logout', account: s.subject }, 'webmail sign-out');
    }
    return reply.code(303).header('location', '/webmail/?out=1').send();
  });
}
