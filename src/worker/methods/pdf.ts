/**
 * PDF mail as a protection method (issue 16): for a recipient without keys, the message and its
 * attachments go into a PDF encrypted with a password per sender and recipient (pdfmail/), which
 * travels in a short carrier mail. The sender is told the password once, in a notice queued with
 * the mail; the Reply button links to the portal with a token the keystore keeps.
 *
 * Needs no key of the recipient, so it can always be made (keyFacts); its secret is per recipient,
 * so the plan gives each recipient an output of its own (perRecipient). It does not sign, and a
 * signature made before it would be lost in the document, so the plan signs no PDF copy.
 *
 * Fail closed: anything that stops the PDF (a limit the renderer will not pass, no sender of ours
 * to tell the password to, several recipients in one copy) holds the copy with the reason; an error of
 * the store (KEK, database) is thrown, so the worker retries and holds — never the clear text.
 * The password never reaches a log line.
 */
import { readFileSync } from 'node:fs';
import { DEFAULT_INSTRUCTIONS, DEFAULT_INSTRUCTIONS_NO_REPLY, DEFAULT_MESSAGE_TEXT, DEFAULT_MESSAGE_TEXT_NO_REPLY } from '../../config/pdf.js';
import { inDomains } from '../../core/index.js';
import { decodeWords, parseHeaders, splitHeader } from '../../mime/index.js';
import { carrierMessage } from '../../pdfmail/carrier.js';
import type { PdfLook } from '../../pdfmail/render.js';
import { PdfRenderError } from '../../pdfmail/render-limits.js';
import { PdfSecurityError } from '../../pdfmail/security-errors.js';
import { originalHeadersOf, pdfPasswordNotice } from '../notices.js';
import type { Method, SealInput, SealResult, TransformContext } from './types.js';

/** pdf-engine.ts on first use (see there why); a failed import is tried again on the next PDF. */
let engine: Promise<typeof import('./pdf-engine.js')> | undefined;
function pdfEngine(): Promise<typeof import('./pdf-engine.js')> {
  engine ??= import('./pdf-engine.js').catch((err: unknown) => {
    engine = undefined;
    throw err;
  });
  return engine;
}

/** Logo bytes per path, read once per process (the config names a file; a reload may name another). */
const logos = new Map<string, Uint8Array>();
function logoOf(path: string | undefined): Uint8Array | undefined {
  if (!path) return undefined;
  let b = logos.get(path);
  if (!b) logos.set(path, (b = readFileSync(path)));
  return b;
}

/** Render and font warnings name no content; each is worth one log line per process, not one per mail. */
const warned = new Set<string>();
function warnOnce(ctx: TransformContext, warning: string): void {
  if (warned.has(warning) || warned.size > 100) return;
  warned.add(warning);
  ctx.log.warn({ event: 'worker.pdf_warning', queueId: ctx.queueId, warning }, 'PDF mail: part of the look could not be made as configured');
}

const first = (header: Map<string, string[]>, name: string) => header.get(name)?.[0]?.trim() ?? '';

async function encrypt(input: SealInput, ctx: TransformContext): Promise<SealResult> {
  const cfg = ctx.config.pdf;
  if (input.recipients.length !== 1) return { kind: 'hold', reason: `PDF mail is made per recipient, and this copy has ${input.recipients.length} (a redirect to several addresses?)` };
  const recipient = input.recipients[0]!;
  if (!ctx.sender) return { kind: 'hold', reason: 'PDF mail needs a sender to tell the password to, and this message has the null sender' };
  // The password goes to the sender by mail: only to our own users, through the internal server —
  // never across the Internet to an outside sender, beside the PDF it opens.
  if (!inDomains(ctx.sender, ctx.config.internal_domains)) return { kind: 'hold', reason: `PDF mail tells the password to the sender, and ${ctx.sender} is not in internal_domains` };
  const scope = cfg.password_scope;
  const pair = { sender: ctx.sender, recipient };
  const { password, record } = await ctx.store.pdfPassword(pair, scope, 'worker');

  const header = parseHeaders(splitHeader(input.body).header);
  const now = new Date();
  let replyUrl: string | null = null;
  if (ctx.config.portal.url && input.pdfOptions?.reply !== false) {
    const token = await ctx.store.createReplyToken({
      pair,
      scope,
      password,
      messageId: first(header, 'message-id'),
      subject: decodeWords(first(header, 'subject')),
      sender: ctx.sender,
      expires: new Date(now.getTime() + cfg.reply_validity),
    });
    replyUrl = `${ctx.config.portal.url}/r/${token}`;
  }
  const instructions = cfg.instructions ?? (replyUrl ? DEFAULT_INSTRUCTIONS : DEFAULT_INSTRUCTIONS_NO_REPLY);
  const look: PdfLook = { organisation: cfg.organisation, coverText: cfg.cover_text, instructions, replyLabel: cfg.reply_label, ...(cfg.logo ? { logo: logoOf(cfg.logo)! } : {}) };
  let pdf: Uint8Array;
  const { loadFonts, renderMailPdf, saveEncrypted } = await pdfEngine();
  try {
    const fonts = loadFonts(cfg.fonts);
    const rendered = await renderMailPdf({ message: input.body, look, replyUrl, fonts, now, limits: { maxAttachments: cfg.max_attachments } });
    for (const w of [...fonts.warnings, ...rendered.warnings]) warnOnce(ctx, w);
    pdf = await saveEncrypted(rendered.doc, { userPassword: password, cipher: input.pdfOptions?.cipher ?? cfg.cipher });
  } catch (err: unknown) {
    if (err instanceof PdfRenderError) return { kind: 'hold', reason: `PDF mail not made: ${err.message}` };
    // An admin-set password the rule's cipher cannot carry (non-Latin-1 for aes-128): the same every time.
    if (err instanceof PdfSecurityError && err.code === 'password-unusable') return { kind: 'hold', reason: `PDF mail not made: ${err.message}` };
    throw err;
  }
  const body = carrierMessage({ original: input.body, pdf, filename: 'message.pdf', text: cfg.message_text ?? (replyUrl ? DEFAULT_MESSAGE_TEXT : DEFAULT_MESSAGE_TEXT_NO_REPLY), ...(cfg.message_html !== undefined ? { html: cfg.message_html } : {}), sender: ctx.sender, organisation: cfg.organisation });

  // The sender learns the password once: on a new pair, and after a reset or set (notified is
  // cleared). Marked only once the notice is queued; a crash between repeats it, never loses it.
  // Of several messages for a new pair processed at once, one tells (the claim is the queue id).
  if (record.notified !== null || !(await ctx.store.claimPdfPasswordNotice(pair, scope, record.created, ctx.queueId))) return { kind: 'ok', body, signed: false };
  const notice = pdfPasswordNotice({ hostname: ctx.config.hostname, queueId: ctx.queueId, sender: ctx.sender, recipient, password, recipientScope: scope === 'recipient', reset: false, originalHeaders: originalHeadersOf(input.body), now });
  ctx.log.info({ event: 'worker.pdf_password_notice', queueId: ctx.queueId, sender: ctx.sender, recipient, scope }, 'PDF password notice queued for the sender');
  return {
    kind: 'ok',
    body,
    signed: false,
    notices: [{ key: `pdf-password:${recipient}`, to: [ctx.sender], body: notice }],
    afterCommit: [() => ctx.store.markPdfPasswordNotified(pair, scope, record.created)],
  };
}

export const pdf: Method = {
  id: 'pdf',
  label: 'PDF mail',
  keyName: 'PDF password',
  signsInside: false,
  perRecipient: true,
  protectsHeaders: false,
  keepsSignature: false,
  // A PDF needs no key of the recipient: it can always be made. Nobody signs with it.
  keyFacts: (_records, role) => role === 'recipient',
  encrypt,
};
