/**
 * What every webmail route shares: the store it reads (portal.db), the signed-in session and
 * the checks each request makes against the account as it is now — a session whose account
 * was reset (a new key generation), deleted or disabled is ended at once, and one that must
 * still change its password may go nowhere else.
 *
 * The session holds the account's unwrapped X25519 private key: in this process's memory only
 * (session.ts), never logged, gone at sign-out, idle time-out or a restart.
 */
import type { KeyObject } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PortalDb, WebmailAccount } from '../../keystore/portal-db.js';
import type { PortalPages, PortalSession } from '../app.js';
import type { ReplyDraft } from '../compose.js';
import { html, type Html } from '../html.js';
import { t, type Lang } from '../i18n.js';
import { LoginGuard } from '../lockout.js';

/** portal.db as webmail uses it. */
export type WebmailStore = Pick<
  PortalDb,
  | 'account'
  | 'accountById'
  | 'changeAccountPassword'
  | 'touchLogin'
  | 'listMessages'
  | 'message'
  | 'markRead'
  | 'deleteMessage'
  | 'audit'
  | 'loginFailures'
  | 'recordLoginFailure'
  | 'clearLoginFailures'
>;

/** A reply as the pages hand it over (from the account, to checked correspondents): compose.ts's draft but the portal's own fields. */
export type WebmailReply = Omit<ReplyDraft, 'portalHost' | 'protocol' | 'messageId' | 'now'>;

export interface WebmailDeps {
  db: WebmailStore;
  /** Spool a reply as new mail and return its queue id; absent: replying is off. */
  sendReply?: (r: WebmailReply) => Promise<string>;
}

export const SESSION_KIND = 'webmail';

export interface WebmailSession extends PortalSession {
  kind: typeof SESSION_KIND;
  /** The account's address key. */
  subject: string;
  accountId: number;
  generation: number;
  address: string;
  key: KeyObject;
}

export interface Webmail {
  pages: PortalPages;
  deps: WebmailDeps;
  guard: LoginGuard;
}

export function webmailContext(pages: PortalPages, deps: WebmailDeps): Webmail {
  return { pages, deps, guard: new LoginGuard(deps.db, pages.config.portal.lockout, pages.now) };
}

export const isWebmailSession = (d: PortalSession): d is WebmailSession => d.kind === SESSION_KIND;

export interface SignedIn {
  s: WebmailSession;
  account: WebmailAccount;
  lang: Lang;
}

/**
 * The request's signed-in reader, or null after the answer was sent (the sign-in page, with why
 * the session ended; or the password page while the password must still be changed).
 */
export async function signedIn(w: Webmail, req: FastifyRequest, reply: FastifyReply, opts: { passwordPage?: boolean } = {}): Promise<SignedIn | null> {
  const session = w.pages.sessions.get(req);
  const data = session?.data;
  if (!data || !isWebmailSession(data)) {
    await reply.code(303).header('location', '/webmail/?ended=1').send();
    return null;
  }
  const account = await w.deps.db.accountById(data.accountId);
  if (!account || account.disabled || account.generation !== data.generation) {
    w.pages.sessions.end(req, reply);
    await reply.code(303).header('location', account && !account.disabled ? '/webmail/?reset=1' : '/webmail/?ended=1').send();
    return null;
  }
  if (account.mustChangePassword && !opts.passwordPage) {
    await reply.code(303).header('location', '/webmail/password').send();
    return null;
  }
  return { s: data, account, lang: w.pages.lang(req) };
}

/** The header's right side: who is signed in, and the sign-out form. */
export function accountHeader(w: Webmail, req: FastifyRequest, reply: FastifyReply, lang: Lang, address: string): Html {
  return html`<div class="account"><span class="muted">${t(lang, 'webmail.signedInAs', { address })}</span>
<form method="post" action="/webmail/logout" class="inline"><input type="hidden" name="_csrf" value="${w.pages.sessions.csrfToken(req, reply)}"><button type="submit" class="secondary">${t(lang, 'webmail.signOut')}</button></form></div>`;
}

/** A size as a reader reads it. */
export function sizeLabel(bytes: number, lang: Lang): string {
  const n = new Intl.NumberFormat(lang === 'de' ? 'de-DE' : 'en-GB', { maximumFractionDigits: 1 });
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${n.format(Math.max(1, Math.round(bytes / 1024)))} KB`;
  return `${n.format(bytes / (1024 * 1024))} MB`;
}

/** A date in UTC (the server does not know the reader's time zone; saying UTC is honest). */
export function dateLabel(d: Date | null, lang: Lang): string {
  if (!d) return '';
  return `${new Intl.DateTimeFormat(lang === 'de' ? 'de-DE' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }).format(d)} UTC`;
}

/** The id in a path, or null when it is not a plain positive integer. */
export function idParam(v: unknown): number | null {
  return typeof v === 'string' && /^[1-9]\d{0,14}$/.test(v) ? Number(v) : null;
}

/** What portal.db's audit records of webmail say happened (not log event codes: see log/events.ts for those). */
export type WebmailAuditEvent =
  | 'webmail.login'
  | 'webmail.login_failed'
  | 'webmail.locked'
  | 'webmail.password_failed'
  | 'webmail.password_changed'
  | 'webmail.logout'
  | 'webmail.delete'
  | 'webmail.reply'
  | 'webmail.reply_refused';

/** Audit in portal.db; a failure to write it is logged, never shown to the reader as theirs. */
export async function audit(w: Webmail, kind: WebmailAuditEvent, e: Omit<Parameters<WebmailStore['audit']>[0], 'action'>): Promise<void> {
  try {
    await w.deps.db.audit({ ...e, action: kind });
  } catch (err) {
    w.pages.log.error({ event: 'portal.webmail.audit_failed', reason: (err as Error).message }, 'webmail audit record not written');
  }
}
