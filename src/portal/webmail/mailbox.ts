/**
 * The mailbox: the list (newest first, each summary opened with the session's key), one message
 * (header fields, its text or sanitised HTML, its files), downloads, the message's own cid:
 * images, and delete.
 *
 * A file from a message is never shown by the browser: it goes out as application/octet-stream
 * with Content-Disposition attachment (RFC 6266 filename*, the name made safe by
 * pdfmail/file-names.ts), nosniff, and a CSP sandbox in case something opens it anyway. cid:
 * images are served only when they are raster images (an SVG can carry script), under the same
 * sandbox. Remote images load only on the page asked for with ?images=1, whose CSP alone
 * allows https: images.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { StoredWebmailMessage } from '../../keystore/portal-db.js';
import { CSP } from '../app.js';
import { html, trusted, type Html } from '../html.js';
import { t, type Lang } from '../i18n.js';
import { accountHeader, audit, dateLabel, idParam, signedIn, sizeLabel, type SignedIn, type Webmail } from './context.js';
import { INLINE_IMAGE_TYPES, sanitizeMailHtml } from './mail-html.js';
import { readForView, cidKey, type MailView } from './mail-view.js';
import { openBody, openSummary, type MailSummary } from './sealed.js';

/** Downloads and images: nothing in them may run, even if a browser were talked into rendering one. */
const FILE_CSP = "default-src 'none'; sandbox";
/** The message page after "show images": the page's own CSP with https: images. */
const IMAGES_CSP = CSP.replace("img-src 'self'", "img-src 'self' https:");

/** RFC 6266 / RFC 8187: an ASCII fallback and the UTF-8 name. */
export function attachmentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\%]/g, '_') || 'attachment';
  const utf8 = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}

/** Drawn inline (no emoji font is certain, and the CSP allows no data: image). */
const PAPERCLIP = trusted('<svg class="clip-icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true"><path d="M21 11.5l-8.5 8.5a5 5 0 0 1-7-7l9-9a3.3 3.3 0 0 1 4.7 4.7l-9 9a1.7 1.7 0 0 1-2.4-2.4l8.3-8.3" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>');

const note = (kind: 'ok' | 'error', text: string) => html`<p class="notice ${kind}" role="status">${text}</p>`;

function shell(w: Webmail, req: FastifyRequest, reply: FastifyReply, si: SignedIn, title: string, body: Html, status = 200) {
  return w.pages.page(reply, { lang: si.lang, title, kind: 'page webmail', headerExtra: accountHeader(w, req, reply, si.lang, si.s.address), body }, status);
}

function inboxRow(w: Webmail, si: SignedIn, m: StoredWebmailMessage): Html {
  const lang = si.lang;
  const sum = openSummary(si.s.key, m);
  if (!sum) {
    w.pages.log.warn({ event: 'portal.webmail.unreadable', account: si.s.subject, message: m.id }, 'a stored webmail summary does not open');
    return html`<tr class="unreadable"><td colspan="4" class="muted">${t(lang, 'webmail.inbox.unreadable')}</td><td>${dateLabel(m.received, lang)}</td></tr>`;
  }
  const subject = sum.subject || t(lang, 'webmail.inbox.noSubject');
  return html`<tr class="${m.read ? 'read' : 'unread'}" data-id="${m.id}">
<td>${sum.from}</td>
<td><a href="/webmail/m/${m.id}">${subject}</a>${m.read ? '' : html` <span class="badge">${t(lang, 'webmail.inbox.unread')}</span>`}</td>
<td class="clip">${sum.attachments.length ? html`<span title="${t(lang, 'webmail.inbox.attachment')}" aria-label="${t(lang, 'webmail.inbox.attachment')}" role="img">${PAPERCLIP}</span>` : ''}</td>
<td class="num">${sizeLabel(m.size, lang)}</td>
<td>${dateLabel(sum.date ?? m.received, lang)}</td>
</tr>`;
}

/** The message and its parts, opened; null when it is not this account's (or does not open). */
async function opened(w: Webmail, si: SignedIn, id: number): Promise<{ row: StoredWebmailMessage; sum: MailSummary; view: MailView } | null> {
  const row = await w.deps.db.message(si.account.id, id);
  if (!row) return null;
  const sum = openSummary(si.s.key, row);
  const body = sum ? openBody(si.s.key, row) : null;
  if (!sum || !body) {
    w.pages.log.warn({ event: 'portal.webmail.unreadable', account: si.s.subject, message: id }, 'a stored webmail message does not open');
    return null;
  }
  return { row, sum, view: readForView(body) };
}

function bodyHtml(lang: Lang, id: number, view: MailView, showImages: boolean): { body: Html; blocked: number } {
  let blocked = 0;
  const out: Html[] = [];
  const byCid = new Map(view.files.filter((f) => f.cid && INLINE_IMAGE_TYPES.has(f.type)).map((f) => [f.cid!, f]));
  for (const b of view.bodies) {
    if (b.kind === 'text') out.push(html`<div class="mailbody">${b.text}</div>`);
    else {
      const safe = sanitizeMailHtml(b.html, {
        showImages,
        blockedText: t(lang, 'webmail.message.imageBlocked'),
        cidUrl: (cid) => {
          const f = byCid.get(cidKey(cid));
          return f ? `/webmail/m/${id}/inline/${f.n}` : null;
        },
      });
      blocked += safe.blocked;
      // sanitize-html's output (mail-html.ts says what it lets through).
      out.push(html`<div class="mailhtml">${trusted(safe.html)}</div>`);
    }
  }
  if (!out.length) out.push(html`<p class="muted">${t(lang, 'webmail.message.empty')}</p>`);
  return { body: html`${out}`, blocked };
}

export function registerMailbox(app: FastifyInstance, w: Webmail): void {
  const { pages } = w;

  app.get('/webmail/inbox', async (req, reply) => {
    const si = await signedIn(w, req, reply);
    if (!si) return reply;
    const lang = si.lang;
    const q = req.query as Record<string, unknown>;
    const rows = await w.deps.db.listMessages(si.account.id);
    const notice = q.changed ? note('ok', t(lang, 'webmail.password.changed')) : q.deleted ? note('ok', t(lang, 'webmail.message.deleted')) : null;
    const list = rows.length
      ? html`<table class="list inbox"><thead><tr><th>${t(lang, 'webmail.inbox.from')}</th><th>${t(lang, 'webmail.inbox.subject')}</th><th><span class="sr">${t(lang, 'webmail.inbox.attachment')}</span></th><th>${t(lang, 'webmail.inbox.size')}</th><th>${t(lang, 'webmail.inbox.date')}</th></tr></thead>
<tbody>${rows.map((m) => inboxRow(w, si, m))}</tbody></table>`
      : html`<p class="card muted">${t(lang, 'webmail.inbox.empty')}</p>`;
    return shell(w, req, reply, si, t(lang, 'webmail.inbox.title'), html`<h1>${t(lang, 'webmail.inbox.title')}</h1>
${notice ?? ''}
${list}
<p class="actions"><a href="/webmail/password">${t(lang, 'webmail.password.link')}</a></p>`);
  });

  app.get('/webmail/m/:id', async (req, reply) => {
    const si = await signedIn(w, req, reply);
    if (!si) return reply;
    const lang = si.lang;
    const id = idParam((req.params as Record<string, unknown>).id);
    const m = id === null ? null : await opened(w, si, id);
    if (!m || id === null) return pages.error(req, reply, 404, 'error.notFound');
    const q = req.query as Record<string, unknown>;
    const showImages = q.images === '1';
    if (!m.row.read) await w.deps.db.markRead(si.account.id, id);
    const { body, blocked } = bodyHtml(lang, id, m.view, showImages);
    if (showImages) reply.header('content-security-policy', IMAGES_CSP);
    const { sum, view } = m;
    const listed = view.files.filter((f) => !(f.cid && INLINE_IMAGE_TYPES.has(f.type) && view.bodies.some((b) => b.kind === 'html')));
    const canReply = Boolean(w.deps.sendReply) && sum.correspondents.length > 0;
    const token = pages.sessions.csrfToken(req, reply);
    const meta = (label: string, value: string) => (value ? html`<dt>${label}</dt><dd>${value}</dd>` : '');
    return shell(w, req, reply, si, sum.subject || t(lang, 'webmail.inbox.noSubject'), html`<p><a href="/webmail/inbox">← ${t(lang, 'webmail.message.back')}</a></p>
${q.sent ? note('ok', t(lang, 'webmail.message.sent')) : ''}
<article class="card message">
<h1>${sum.subject || t(lang, 'webmail.inbox.noSubject')}</h1>
<dl class="meta">${meta(t(lang, 'webmail.inbox.from'), sum.from)}${meta(t(lang, 'webmail.message.to'), sum.to.join(', '))}${meta(t(lang, 'webmail.message.cc'), sum.cc.join(', '))}${meta(t(lang, 'webmail.inbox.date'), dateLabel(sum.date ?? m.row.received, lang))}</dl>
${blocked && !showImages ? html`<p class="notice images">${t(lang, 'webmail.message.imagesBlocked')} <a class="button secondary" href="/webmail/m/${id}?images=1">${t(lang, 'webmail.message.showImages')}</a></p>` : ''}
${body}
${listed.length ? html`<h2>${t(lang, 'webmail.message.attachments')}</h2><ul class="files">${listed.map((f) => html`<li><a href="/webmail/m/${id}/file/${f.n}" download>${f.name}</a> <span class="muted">(${sizeLabel(f.data.length, lang)})</span></li>`)}</ul>` : ''}
</article>
<div class="actions">
${canReply ? html`<a class="button" href="/webmail/m/${id}/reply">${t(lang, 'webmail.message.reply')}</a>` : ''}
<form method="post" action="/webmail/m/${id}/delete" class="inline" data-confirm="${t(lang, 'webmail.message.deleteConfirm')}"><input type="hidden" name="_csrf" value="${token}"><button type="submit" class="danger">${t(lang, 'webmail.message.delete')}</button></form>
</div>`);
  });

  const part = (inline: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
    const si = await signedIn(w, req, reply);
    if (!si) return reply;
    const params = req.params as Record<string, unknown>;
    const id = idParam(params.id);
    const n = typeof params.n === 'string' && /^\d{1,4}$/.test(params.n) ? Number(params.n) : -1;
    const m = id === null ? null : await opened(w, si, id);
    const file = m?.view.files.find((f) => f.n === n);
    if (!file || (inline && !(file.cid && INLINE_IMAGE_TYPES.has(file.type)))) return pages.error(req, reply, 404, 'error.notFound');
    reply.header('content-security-policy', FILE_CSP).header('cache-control', 'no-store');
    if (inline) return reply.type(file.type).header('content-disposition', 'inline').send(file.data);
    pages.log.info({ event: 'portal.webmail.download', account: si.s.subject, message: id, bytes: file.data.length }, 'webmail attachment downloaded');
    return reply.type('application/octet-stream').header('content-disposition', attachmentDisposition(file.name)).send(file.data);
  };
  app.get('/webmail/m/:id/file/:n', part(false));
  app.get('/webmail/m/:id/inline/:n', part(true));

  app.post('/webmail/m/:id/delete', async (req, reply) => {
    const si = await signedIn(w, req, reply);
    if (!si) return reply;
    const id = idParam((req.params as Record<string, unknown>).id);
    if (id === null || !(await w.deps.db.deleteMessage(si.account.id, id))) return pages.error(req, reply, 404, 'error.notFound');
    await audit(w, 'webmail.delete', { actor: si.s.address, client: pages.client(req), detail: { message: id } });
    pages.log.info({ event: 'portal.webmail.deleted', account: si.s.subject, message: id }, 'webmail message deleted');
    return reply.code(303).header('location', '/webmail/inbox?deleted=1').send();
  });
}
