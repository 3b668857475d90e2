/**
 * Replying from webmail: only to the internal correspondents the worker named in the message's
 * summary (the sender, Reply-To, To and Cc inside internal_domains) — checked here on the
 * server against what the form sent, so a forged form cannot turn the portal into a relay to
 * anyone else. The reply (text and files within portal.max_upload / max_uploads) goes from the
 * account's own address through compose.ts into the spool, where the worker's policy treats it
 * like any mail from outside.
 *
 * Untrusted input: the multipart form (names, types, sizes, field values); the limits are the
 * multipart plug-in's (app.ts), plus the total here.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { addressKey } from '../../core/address.js';
import { htmlToReadable } from '../../pdfmail/html-text.js';
import { readUploadForm } from '../app.js';
import { html } from '../html.js';
import { t, type Lang } from '../i18n.js';
import { accountHeader, audit, dateLabel, idParam, signedIn, sizeLabel, type SignedIn, type Webmail, type WebmailReply } from './context.js';
import { readForView } from './mail-view.js';
import { openBody, openSummary, type MailSummary } from './sealed.js';

const MAX_SUBJECT = 500;
/** Characters of the original quoted under the reply: enough for context, not a second copy of a long mail. */
const MAX_QUOTE = 20_000;

export const replySubject = (subject: string) => (/^\s*(re|aw|sv|antw)\s*:/i.test(subject) ? subject : `Re: ${subject}`).replace(/[\r\n\t]+/g, ' ').slice(0, MAX_SUBJECT);

/** The original's text, quoted ("> ") under a line naming who wrote it. */
function quoted(lang: Lang, sum: MailSummary, body: Buffer | null): string {
  if (!body) return '';
  const view = readForView(body);
  const text = view.bodies.map((b) => (b.kind === 'text' ? b.text : htmlToReadable(b.html).text)).join('\n\n').slice(0, MAX_QUOTE);
  if (!text.trim()) return '';
  const who = lang === 'de' ? `${sum.from} schrieb${sum.date ? ` am ${dateLabel(sum.date, lang)}` : ''}:` : `${sum.from} wrote${sum.date ? ` on ${dateLabel(sum.date, lang)}` : ''}:`;
  return `\n\n${who}\n${text.replace(/\r\n?/g, '\n').split('\n').map((l) => `> ${l}`).join('\n')}\n`;
}

async function replyable(w: Webmail, si: SignedIn, id: number | null) {
  if (id === null || !w.deps.sendReply) return null;
  const row = await w.deps.db.message(si.account.id, id);
  const sum = row ? openSummary(si.s.key, row) : null;
  if (!row || !sum || !sum.correspondents.length) return null;
  return { row, sum };
}

function form(w: Webmail, req: FastifyRequest, reply: FastifyReply, si: SignedIn, id: number, sum: MailSummary, v: { to: string[]; subject: string; text: string }, notice: string | null, status = 200) {
  const lang = si.lang;
  const cfg = w.pages.config.portal;
  const chosen = new Set(v.to.map(addressKey));
  return w.pages.page(
    reply,
    {
      lang,
      title: t(lang, 'webmail.reply.title'),
      kind: 'page webmail',
      headerExtra: accountHeader(w, req, reply, lang, si.s.address),
      body: html`<h1>${t(lang, 'webmail.reply.title')}</h1>
${notice ? html`<p class="notice error" role="alert">${notice}</p>` : ''}
<form method="post" action="/webmail/m/${id}/reply" enctype="multipart/form-data" class="card">
<input type="hidden" name="_csrf" value="${w.pages.sessions.csrfToken(req, reply)}">
<fieldset class="recipients"><legend>${t(lang, 'webmail.reply.to')}</legend>
${sum.correspondents.map((c, i) => html`<label class="check"><input type="checkbox" name="to" value="${c}" id="to${i}"${chosen.has(addressKey(c)) ? html` checked` : ''}> ${c}</label>`)}
</fieldset>
<label for="subject">${t(lang, 'webmail.reply.subject')}</label>
<input type="text" id="subject" name="subject" value="${v.subject}" maxlength="${MAX_SUBJECT}">
<label for="text">${t(lang, 'webmail.reply.text')}</label>
<textarea id="text" name="text">${v.text}</textarea>
<label for="files">${t(lang, 'webmail.reply.files')}</label>
<input type="file" id="files" name="files" multiple data-list="chosen">
<p class="hint">${t(lang, 'webmail.reply.limits', { count: cfg.max_uploads, size: sizeLabel(cfg.max_upload, lang) })}</p>
<ul id="chosen" class="files"></ul>
<div class="actions"><button type="submit">${t(lang, 'webmail.reply.send')}</button><a class="button secondary" href="/webmail/m/${id}">${t(lang, 'webmail.reply.cancel')}</a></div>
</form>`,
    },
    status,
  );
}


export function registerReply(app: FastifyInstance, w: Webmail): void {
  const { pages } = w;

  app.get('/webmail/m/:id/reply', async (req, reply) => {
    const si = await signedIn(w, req, reply);
    if (!si) return reply;
    const id = idParam((req.params as Record<string, unknown>).id);
    const r = await replyable(w, si, id);
    if (!r || id === null) return pages.error(req, reply, 404, 'error.notFound');
    const fromKey = addressKey(r.sum.from.replace(/^.*<([^<>]*)>\s*$/, '$1'));
    const to = r.sum.correspondents.filter((c) => addressKey(c) === fromKey);
    return form(w, req, reply, si, id, r.sum, { to: to.length ? to : r.sum.correspondents, subject: replySubject(r.sum.subject), text: quoted(si.lang, r.sum, openBody(si.s.key, r.row)) }, null);
  });

  app.post('/webmail/m/:id/reply', async (req, reply) => {
    const si = await signedIn(w, req, reply);
    if (!si) return reply;
    const lang = si.lang;
    const client = pages.client(req);
    if (!req.isMultipart()) return pages.error(req, reply, 400, 'error.forbidden');
    const read = await readUploadForm(w.pages, req, pages.config.portal.max_upload);
    if (read === 'forbidden') {
      pages.log.warn({ event: 'portal.csrf_refused', path: '/webmail/m/…/reply', client }, 'form post without a valid CSRF token refused');
      return pages.error(req, reply, 403, 'error.forbidden');
    }
    if (read === 'too-large') return pages.error(req, reply, 413, 'error.tooLarge');
    const { fields, files } = read;
    const id = idParam((req.params as Record<string, unknown>).id);
    const r = await replyable(w, si, id);
    if (!r || id === null) return pages.error(req, reply, 404, 'error.notFound');
    const allowed = new Map(r.sum.correspondents.map((c) => [addressKey(c), c]));
    const asked = fields.get('to') ?? [];
    const subject = (fields.get('subject')?.[0] ?? '').replace(/[\r\n\t]+/g, ' ').slice(0, MAX_SUBJECT);
    const text = fields.get('text')?.[0] ?? '';
    const refused = asked.filter((a) => !allowed.has(addressKey(a)));
    if (refused.length) {
      await audit(w, 'webmail.reply_refused', { actor: si.s.address, client, detail: { message: id, refused: refused.length } });
      pages.log.warn({ event: 'portal.webmail.reply_refused', account: si.s.subject, message: id, client }, 'webmail reply to an address outside the message refused');
      return pages.error(req, reply, 403, 'error.forbidden');
    }
    // Each correspondent once, spelled as the summary spells it.
    const to = [...new Set(asked.map((a) => addressKey(a)))].map((k) => allowed.get(k)!);
    if (!to.length) return form(w, req, reply, si, id, r.sum, { to, subject, text }, t(lang, 'webmail.reply.noRecipient'), 400);
    const message: WebmailReply = {
      from: si.s.address,
      to,
      subject,
      text,
      attachments: files,
      client,
      ...(r.sum.messageId ? { inReplyTo: r.sum.messageId, references: [r.sum.messageId] } : {}),
    };
    let queueId: string;
    try {
      queueId = await w.deps.sendReply!(message);
    } catch (err) {
      pages.log.error({ event: 'portal.webmail.reply_failed', account: si.s.subject, reason: (err as Error).message }, 'webmail reply not spooled');
      return form(w, req, reply, si, id, r.sum, { to, subject, text }, t(lang, 'webmail.reply.failed'), 503);
    }
    await audit(w, 'webmail.reply', { actor: si.s.address, client, detail: { message: id, recipients: to.length, files: files.length, queueId } });
    pages.log.info({ event: 'portal.webmail.reply', account: si.s.subject, message: id, queue_id: queueId, recipients: to.length, files: files.length }, 'webmail reply spooled');
    return reply.code(303).header('location', `/webmail/m/${id}?sent=1`).send();
  });
}
