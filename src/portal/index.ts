/**
 * portal: the HTTP(S) face of the gateway, one Fastify application (app.ts) — the Web Key
 * Directory of our users (their OpenPGP public keys, by WKD hash, for internal_domains, advanced
 * and direct layouts, with the policy file), the internal CA's CRL, /health, and the pages for
 * people outside (PDF reply, webmail) built on page.ts, html.ts, i18n.ts, session.ts, lockout.ts,
 * and the key server for partners (keyserver.ts: HKP and S/MIME certificates of our users);
 * compose.ts turns a reply written on a page into a mail in spool/incoming.
 * Run as the `portal` role: `startPortal({ config, store, log, pages })`, `close()` on stop.
 *
 * Untrusted input: every HTTP request (path, Host, query), from anyone who can reach it.
 * Secrets: the TLS private key, read at start (as root, before the role drops to `user:`); keys
 * come from the public key file the supervisor publishes (PublicKeyFile), never from postern.db,
 * and every key is checked to hold no secret packet before it is sent.
 */
export { startPortal, PortalError, type Portal, type PortalOptions } from './server.js';
export { serveApp, type Listening } from './listen.js';
export { buildPortalApp, csrfMultipart, readUploadForm, safePath, CSP, type PortalPages, type PortalSession } from './app.js';
export { html, trusted, escapeHtml, Html } from './html.js';
export { t, addTexts, langOf, type Lang } from './i18n.js';
export { renderPage, errorPage, type PageContent, type PageLook } from './page.js';
export { Sessions, type Session } from './session.js';
export { LoginGuard, type LoginFailureStore } from './lockout.js';
export { WkdIndex, policyFor, type PortalKey, type PortalStore } from './wkd.js';
export { PublicKeyFile } from './key-file.js';
export { PublicCertificateFile, type CertificateSource } from './cert-file.js';
export { keyServer, registerKeyServer, type KeyServerContext } from './keyserver.js';
export { replyPages, type ReplyPagesOptions, type ReplyStore, type OpenedReplyLink } from './reply.js';
export { webmailPages, registerWebmail, spooledReplies, type WebmailDeps } from './webmail/index.js';
export { composeReply, spoolReply, replyEnvelope, newMessageId, msgId, attachmentNames, attachmentType, type ReplyDraft, type ReplyAttachment } from './compose.js';
export { publicPacketsOnly } from './packets.js';
