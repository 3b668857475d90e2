/**
 * The PDF reply pages as HTML: the password form, the reply form, what happened after sending,
 * and signed out. Every value — addresses, the original subject (mail content from anyone),
 * file counts — goes through the escaping html`` template; forms carry their CSRF token.
 */
import { html, type Html } from './html.js';
import { t, type Lang } from './i18n.js';
import type { PageContent } from './page.js';
import './reply-texts.js';

/** "25 MB", "512 KB": the upload limit as people read it. */
export function readableBytes(n: number): string {
  if (n >= 1024 * 1024) return `${Math.round((n / (1024 * 1024)) * 10) / 10} MB`;
  return `${Math.max(1, Math.round(n / 1024))} KB`;
}

const base = (token: string) => `/r/${token}`;

function signOutForm(lang: Lang, token: string, csrf: string): Html {
  return html`<form method="post" action="${base(token)}/signout" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit" class="secondary" id="signout">${t(lang, 'reply.signout')}</button></form>`;
}

/** A known link without a session: who wrote, and the password. */
export function signInView(v: { lang: Lang; token: string; sender: string; csrf: string; wrong?: boolean }): PageContent {
  const { lang } = v;
  return {
    lang,
    title: t(lang, 'reply.title'),
    kind: 'page narrow',
    body: html`<h1>${t(lang, 'reply.title')}</h1>
<div class="card">
<p>${t(lang, 'reply.signin.intro', { sender: v.sender })}</p>
${v.wrong ? html`<p class="notice error" role="alert">${t(lang, 'reply.wrongPassword')}</p>` : ''}
<form method="post" action="${base(v.token)}">
<input type="hidden" name="_csrf" value="${v.csrf}">
<label for="password">${t(lang, 'reply.password')}</label>
<input type="password" id="password" name="password" autocomplete="current-password" required maxlength="200" autofocus>
<div class="actions"><button type="submit">${t(lang, 'reply.signin')}</button></div>
</form>
</div>`,
  };
}

export interface ComposeView {
  lang: Lang;
  token: string;
  csrf: string;
  /** Our user the reply goes to (fixed). */
  sender: string;
  /** The replier. */
  recipient: string;
  /** The original subject (mail content: escaped like everything else). */
  subject: string;
  maxUploads: number;
  maxUpload: number;
}

export function reSubject(subject: string): string {
  const s = subject.trim();
  return /^(re|aw|antw)\s*:/i.test(s) ? s : `Re: ${s}`;
}

/** The reply form: To fixed to the original sender, Subject "Re: …", text, attachments. */
export function composeView(v: ComposeView): PageContent {
  const { lang } = v;
  return {
    lang,
    title: t(lang, 'reply.title'),
    headerExtra: html`<div class="actions"><span class="muted">${v.recipient}</span>${signOutForm(lang, v.token, v.csrf)}</div>`,
    body: html`<h1>${t(lang, 'reply.title')}</h1>
<div class="card">
<dl class="meta"><dt>${t(lang, 'reply.original')}</dt><dd id="original-subject">${v.subject}</dd></dl>
<form method="post" action="${base(v.token)}/send" enctype="multipart/form-data" id="reply-form">
<input type="hidden" name="_csrf" value="${v.csrf}">
<label for="to">${t(lang, 'reply.to')}</label>
<input type="text" id="to" value="${v.sender}" readonly>
<label for="subject">${t(lang, 'reply.subject')}</label>
<input type="text" id="subject" name="subject" value="${reSubject(v.subject)}" maxlength="500">
<label for="text">${t(lang, 'reply.text')}</label>
<textarea id="text" name="text" maxlength="200000"></textarea>
<label for="files">${t(lang, 'reply.attachments')}</label>
<input type="file" id="files" name="files" multiple data-list="file-list">
<p class="hint">${t(lang, 'reply.attachmentsHint', { count: v.maxUploads, size: readableBytes(v.maxUpload) })}</p>
<ul class="files" id="file-list"></ul>
<div class="actions"><button type="submit" id="send">${t(lang, 'reply.send')}</button></div>
</form>
</div>`,
  };
}

/** After sending: the reply is on its way; the copy too, or why not. */
export function sentView(v: { lang: Lang; token: string; csrf: string; organisation: string; sender: string; recipient: string; files: number; copyProblem?: string }): PageContent {
  const { lang } = v;
  return {
    lang,
    title: t(lang, 'reply.sent.title'),
    kind: 'page narrow',
    headerExtra: html`<div class="actions"><span class="muted">${v.recipient}</span>${signOutForm(lang, v.token, v.csrf)}</div>`,
    body: html`<h1>${t(lang, 'reply.sent.title')}</h1>
<div class="card">
<p class="notice ok" role="status" id="sent">${t(lang, 'reply.sent.done', { organisation: v.organisation, sender: v.sender })}</p>
${v.files ? html`<p>${t(lang, 'reply.sent.files', { count: v.files })}</p>` : ''}
${v.copyProblem ? html`<p class="notice error" id="copy">${t(lang, 'reply.sent.noCopy', { reason: v.copyProblem })}</p>` : html`<p id="copy">${t(lang, 'reply.sent.copy', { recipient: v.recipient })}</p>`}
<div class="actions"><a class="button secondary" href="${base(v.token)}">${t(lang, 'reply.again')}</a></div>
</div>`,
  };
}

export function signedOutView(lang: Lang): PageContent {
  return {
    lang,
    title: t(lang, 'reply.signedOut.title'),
    kind: 'page narrow',
    body: html`<h1>${t(lang, 'reply.signedOut.title')}</h1><p class="notice ok" role="status" id="signed-out">${t(lang, 'reply.signedOut')}</p>`,
  };
}
