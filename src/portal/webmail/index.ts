/**
 * Webmail (issue 17): outside recipients sign in and read the mail the worker's `webmail` method
 * sealed to their account, reply to the internal people who wrote to them, and delete.
 *
 *   GET  /webmail/                      sign-in (POST /webmail/login), sign-out POST /webmail/logout
 *   GET  /webmail/password              choose a password (forced on first sign-in and after a reset)
 *   GET  /webmail/inbox                 the list, newest first
 *   GET  /webmail/m/:id[?images=1]      one message; POST …/delete; GET|POST …/reply
 *   GET  /webmail/m/:id/file/:n         a file of it, always as a download
 *   GET  /webmail/m/:id/inline/:n       a cid: image of it (raster only)
 *
 * Untrusted input: every form field and path, and the stored mail itself (sanitised for show).
 * Secrets: passwords (used for one scrypt, never kept or logged) and the account's private key,
 * held in the in-memory session only. Nothing is written but portal.db's flags, failures and
 * audit records, and replies into the spool.
 */
import type { FastifyInstance } from 'fastify';
import type { PortalPages } from '../app.js';
import { webmailContext, type WebmailDeps } from './context.js';
import { registerMailbox } from './mailbox.js';
import { registerReply } from './reply.js';
import { registerSignIn } from './sign-in.js';
import './texts.js';

export type { WebmailDeps, WebmailReply, WebmailStore } from './context.js';
export { sanitizeMailHtml } from './mail-html.js';
export { readForView } from './mail-view.js';
export { attachmentDisposition } from './mailbox.js';
export { spooledReplies } from './send.js';

/** The page module for startPortal's `pages`. */
export function webmailPages(deps: WebmailDeps): (app: FastifyInstance, pages: PortalPages) => void {
  return (app, pages) => registerWebmail(app, pages, deps);
}

export function registerWebmail(app: FastifyInstance, pages: PortalPages, deps: WebmailDeps): void {
  const w = webmailContext(pages, deps);
  registerSignIn(app, w);
  registerMailbox(app, w);
  registerReply(app, w);
}
