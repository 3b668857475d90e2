/**
 * The PDF reply pages (issue 17): the Reply button of a PDF mail opens `/r/<token>`.
 *   GET  /r/:token          unknown, malformed or expired: the same 404 page; known: who wrote and
 *                           the password form; signed in for this link: the reply form
 *   POST /r/:token          the PDF's password, checked through the lock-out (LoginGuard: the
 *                           account is the token's hash, the client its IP) and the verifier
 *   POST /r/:token/send     the reply (multipart): spooled from the replier to our user, then
 *                           the replier's copy as an encrypted PDF (reply-copy.ts)
 *   POST /r/:token/signout
 * A signed-in session (kind 'reply', in the portal's memory only) holds the opened link and the
 * password, which the copy is encrypted with. Every sign-in, failure, lock-out, reply and
 * sign-out is in portal.db's audit and the log — never the password, the subject or the text.
 *
 * Untrusted input: the token (format-checked before any look-up), the password, the reply's
 * fields and files (bounded by portal.max_upload/max_uploads; names and types cleaned by
 * compose.ts). The reply goes only to the link's sender, who must be one of ours.
 * Secrets: the password and the opened link's subject (both held in the session only).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readFileSync } from 'node:fs';
import type { PdfConfig } from '../config/types.js';
import { inDomains } from '../core/index.js';
import { replyTokenHash } from '../keystore/pdf-verifier.js';
import type { PortalDb } from '../keystore/portal-db.js';
import { loadFonts, type FontSet } from '../pdfmail/fonts.js';
import { PdfRenderError } from '../pdfmail/render-limits.js';
import type { Spool } from '../spool/index.js';
import { readUploadForm, type PortalPages, type PortalSession } from './app.js';
import { composeReply, replyEnvelope, spoolReply, type ReplyAttachment } from './compose.js';
import { t } from './i18n.js';
import { LoginGuard, type LoginFailureStore } from './lockout.js';
import { copyEnvelope, replierCopy } from './reply-copy.js';
import { composeView, reSubject, sentView, signedOutView, signInView } from './reply-views.js';

/** What the pages need of portal.db: the link's clear columns (null when unknown or expired), lock-out counters, audit. */
export type ReplyStore = Pick<PortalDb, 'replyLink' | 'audit'> & LoginFailureStore;

/** A link opened with its password (keystore/portal-reply-links.ts). */
export interface OpenedReplyLink {
  /** Our user who sent the PDF: the reply goes there. */
  sender: string;
  /** The outside address the PDF was made for: the replier. */
  recipient: string;
  messageId: string;
  subject: string;
}

export interface ReplyPagesOptions {
  db: ReplyStore;
  /** The link's data when `password` opens it; null for a wrong password or an unknown link. */
  openLink(token: string, password: string, now: Date): Promise<OpenedReplyLink | null>;
  spool: Spool;
  /** Tell the workers (the supervisor) of new entries in incoming/. */
  queued?(ids: string[]): void;
  pdf: PdfConfig;
  /** Fonts of the replier's copy; loaded from pdf.fonts at registration (still root) when absent. */
  fonts?: FontSet;
}

interface ReplySession extends PortalSession {
  kind: 'reply';
  /** The token's hash. */
  subject: string;
  password: string;
  link: OpenedReplyLink;
}

const isReplySession = (d: PortalSession | undefined, hash: string): d is ReplySession => d?.kind === 'reply' && d.subject === hash;

/** Part of the hash in log lines: enough to find the audit record, useless for a look-up. */
const linkTag = (hash: string) => hash.slice(0, 12);

export function replyPages(opts: ReplyPagesOptions): (app: FastifyInstance, pages: PortalPages) => void {
  return (app, pages) => {
    const { config, log, sessions } = pages;
    const guard = new LoginGuard(opts.db, config.portal.lockout, pages.now);
    const fonts = opts.fonts ?? loadFonts(opts.pdf.fonts);
    const logo = opts.pdf.logo ? new Uint8Array(readFileSync(opts.pdf.logo)) : undefined;
    const portalHost = config.portal.url ? new URL(config.portal.url).hostname : config.hostname;
    const protocolOf = (req: FastifyRequest): 'HTTP' | 'HTTPS' => (req.protocol === 'https' ? 'HTTPS' : 'HTTP');
    const now = () => new Date(pages.now());

    /** The link of the request's token, or null (the caller answers 404 for every kind of unknown). */
    const linkOf = async (req: FastifyRequest) => {
      const token = (req.params as { token: string }).token;
      const hash = replyTokenHash(token);
      if (!hash) return null;
      const row = await opts.db.replyLink(hash, now());
      return row ? { token, hash, row } : null;
    };
    const notFound = (req: FastifyRequest, reply: FastifyReply) => pages.error(req, reply, 404, 'error.notFound');
    /** The request's reply session for this link (a link that expired meanwhile was answered 404 before). */
    const sessionOf = (req: FastifyRequest, hash: string) => {
      const s = sessions.get(req);
      return s && isReplySession(s.data, hash) ? s.data : null;
    };
    // The audit's actions ("reply.login" …) are portal.db's records, not log events.
    const audit = (code: string, actor: string, req: FastifyRequest, hash: string, detail?: Record<string, string | number | boolean>) =>
      opts.db.audit({ action: code, actor, client: pages.client(req), subject: hash, ...(detail ? { detail } : {}) });

    app.get('/r/:token', async (req, reply) => {
      const known = await linkOf(req);
      if (!known) return notFound(req, reply);
      const lang = pages.lang(req);
      const s = sessionOf(req, known.hash);
      if (!s) return pages.page(reply, signInView({ lang, token: known.token, sender: known.row.sender, csrf: sessions.csrfToken(req, reply) }));
      const csrf = sessions.csrfToken(req, reply);
      return pages.page(reply, composeView({ lang, token: known.token, csrf, sender: s.link.sender, recipient: s.link.recipient, subject: s.link.subject, maxUploads: config.portal.max_uploads, maxUpload: config.portal.max_upload }));
    });

    app.post('/r/:token', async (req, reply) => {
      const known = await linkOf(req);
      if (!known) return notFound(req, reply);
      const { token, hash, row } = known;
      const client = pages.client(req);
      const lang = pages.lang(req);
      const wait = await guard.wait(hash, client);
      if (wait > 0) {
        // Locked: answered without looking at the password at all.
        await audit('reply.locked', row.recipient, req, hash);
        log.warn({ event: 'portal.reply.locked', link: linkTag(hash), client }, 'PDF reply sign-in refused: too many failed attempts');
        return pages.error(req, reply, 429, 'login.locked', { minutes: Math.ceil(wait / 60_000) });
      }
      const password = (req.body as Record<string, unknown> | undefined)?.password;
      const link = typeof password === 'string' ? await opts.openLink(token, password, now()) : null;
      if (!link || typeof password !== 'string') {
        await guard.failed(hash, client);
        await audit('reply.login_failed', row.recipient, req, hash);
        log.warn({ event: 'portal.reply.login_failed', link: linkTag(hash), client }, 'PDF reply sign-in with a wrong password');
        return pages.page(reply, signInView({ lang, token, sender: row.sender, csrf: sessions.csrfToken(req, reply), wrong: true }), 403);
      }
      await guard.succeeded(hash);
      sessions.start(req, reply, { kind: 'reply', subject: hash, password, link } satisfies ReplySession);
      await audit('reply.login', link.recipient, req, hash);
      log.info({ event: 'portal.reply.login', link: linkTag(hash), client, recipient: link.recipient }, 'PDF reply signed in');
      return reply.redirect(`/r/${token}`, 303);
    });

    app.post('/r/:token/send', async (req, reply) => {
      const known = await linkOf(req);
      if (!known) return notFound(req, reply);
      const s = sessionOf(req, known.hash);
      if (!s || !req.isMultipart()) return pages.error(req, reply, 403, 'error.forbidden');
      const form = await readReplyForm(req, pages, config.portal.max_upload);
      if (form === 'forbidden') {
        log.warn({ event: 'portal.csrf_refused', path: '/r/…/send', client: pages.client(req) }, 'form post without a valid CSRF token refused');
        return pages.error(req, reply, 403, 'error.forbidden');
      }
      if (form === 'too-large') return pages.error(req, reply, 413, 'error.tooLarge');
      return send(req, reply, known.token, known.hash, s, form);
    });

    app.post('/r/:token/signout', async (req, reply) => {
      const known = await linkOf(req);
      const lang = pages.lang(req);
      const s = known ? sessionOf(req, known.hash) : null;
      sessions.end(req, reply);
      if (known && s) {
        await audit('reply.signout', s.link.recipient, req, known.hash);
        log.info({ event: 'portal.reply.signed_out', link: linkTag(known.hash), client: pages.client(req) }, 'PDF reply signed out');
      }
      return pages.page(reply, signedOutView(lang));
    });

    async function send(req: FastifyRequest, reply: FastifyReply, token: string, hash: string, s: ReplySession, form: ReplyForm): Promise<FastifyReply> {
      const lang = pages.lang(req);
      const client = pages.client(req);
      const { link } = s;
      // The link names the recipient of the reply; still, only ever one of ours (no relay through the portal).
      if (!inDomains(link.sender, config.internal_domains)) {
        log.warn({ event: 'portal.reply.refused', link: linkTag(hash), client, reason: 'sender not in internal_domains' }, 'PDF reply refused: the link names no user of ours');
        return pages.error(req, reply, 403, 'error.forbidden');
      }
      const at = now();
      const protocol = protocolOf(req);
      const ref = { inReplyTo: link.messageId, references: [link.messageId] };
      const subject = form.subject.trim() || reSubject(link.subject);
      const body = composeReply({ from: link.recipient, to: [link.sender], subject, text: form.text, ...ref, attachments: form.files, client, portalHost, protocol, now: at });
      const id = await spoolReply(opts.spool, replyEnvelope({ from: link.recipient, to: [link.sender], client, protocol, now: at }), body);
      const ids = [id];
      let copyProblem: string | undefined;
      try {
        const copy = await replierCopy({ reply: body, password: s.password, replier: link.recipient, sender: link.sender, pdf: opts.pdf, fonts, hostname: config.hostname, lang, now: at, ...(logo ? { logo } : {}) });
        ids.push(await spoolReply(opts.spool, copyEnvelope(link.recipient, client, protocol, at), copy));
      } catch (err) {
        copyProblem = t(lang, err instanceof PdfRenderError ? 'reply.copy.tooLarge' : 'reply.copy.failed');
        log.warn({ event: 'portal.reply.copy_failed', link: linkTag(hash), queueId: id, reason: (err as Error).message }, 'the replier\'s copy of a PDF reply was not made');
      }
      opts.queued?.(ids);
      const bytes = form.files.reduce((n, f) => n + f.content.length, 0);
      await audit('reply.sent', link.recipient, req, hash, { queueId: id, to: link.sender, attachments: form.files.length, bytes, copy: !copyProblem });
      log.info({ event: 'portal.reply.sent', link: linkTag(hash), client, queueId: id, sender: link.recipient, recipient: link.sender, attachments: form.files.length, size: body.length, copy: ids[1] ?? null }, 'PDF reply spooled');
      const csrf = sessions.csrfToken(req, reply);
      return pages.page(reply, sentView({ lang, token, csrf, organisation: config.portal.organisation, sender: link.sender, recipient: link.recipient, files: form.files.length, ...(copyProblem ? { copyProblem } : {}) }));
    }
  };
}

interface ReplyForm {
  subject: string;
  text: string;
  files: ReplyAttachment[];
}

/** The reply form: its text fields and files (app.ts reads it, CSRF first). */
async function readReplyForm(req: FastifyRequest, pages: PortalPages, maxUpload: number): Promise<ReplyForm | 'forbidden' | 'too-large'> {
  const read = await readUploadForm(pages, req, maxUpload);
  if (read === 'forbidden' || read === 'too-large') return read;
  return { subject: read.fields.get('subject')?.[0] ?? '', text: read.fields.get('text')?.[0] ?? '', files: read.files };
}
