/**
 * PDF passwords through the admin API (issue 16): list the pairs (pdf.read), reset, set and delete
 * (pdf.change), show (pdf.reveal) — the functions `postern pdf` calls (keystore, and
 * worker/pdf-password-admin.ts for telling the sender). A new password is told to the pair's sender
 * by a notice in the spool, as with the CLI; it is never in an answer, except to `show`.
 *
 * `show` is a POST: a password must never sit in a URL, a proxy's log or a browser's cache.
 *
 * Untrusted input: the addresses (canonicalised, refused when they are none), an admin-chosen
 * password (checked by the store: length, characters, what the configured cipher can carry).
 * Secrets: the passwords — never in an audit record, a log line or an error message.
 */
import { addressKey, canonicalAddress } from '../../core/index.js';
import { PdfPasswordError, type PdfPair, type PdfPasswordScope } from '../../keystore/index.js';
import { PdfSecurityError } from '../../pdfmail/security-errors.js';
import { describeTold, pdfPasswordRow, resetPdfPasswordAndTell, setPdfPasswordAndTell } from '../../worker/pdf-password-admin.js';
import { ApiError, ok, type AdminContext, type ApiRequest, type ApiRoute, type JsonSchema } from '../routes.js';

/** Longer than any address (RFC 5321: 254 in a path) in any spelling, short of abuse. */
const ADDRESS = { type: 'string', minLength: 3, maxLength: 512 } as const;
const SCOPE = { type: 'string', enum: ['pair', 'recipient'], default: 'pair', description: 'pair: one password per sender and recipient; recipient: one for all senders (leave out from)' } as const;

const pairProperties = {
  from: { ...ADDRESS, description: 'the sender (scope pair)' },
  to: { ...ADDRESS, description: 'the recipient' },
  scope: SCOPE,
};
const pairBody: JsonSchema = { type: 'object', additionalProperties: false, required: ['to'], properties: pairProperties };

interface PairInput {
  from?: string;
  to: string;
  scope?: PdfPasswordScope;
}

function address(field: string, value: string): string {
  const a = canonicalAddress(value);
  if (!a) throw new ApiError(400, `${field}: not a mail address`);
  return a;
}

/** The pair and scope a request names, as the CLI's --from/--to/--scope: canonical addresses, sender "*" for a recipient's password. */
function pairOf(body: PairInput): { pair: PdfPair; scope: PdfPasswordScope; object: string } {
  const scope = body.scope ?? 'pair';
  const recipient = address('to', body.to);
  if (scope === 'recipient' && body.from !== undefined) throw new ApiError(400, 'scope recipient is one password for all senders: leave out from');
  if (scope === 'pair' && body.from === undefined) throw new ApiError(400, 'from (the sender) is needed, or scope recipient for the password all senders share');
  const sender = scope === 'recipient' ? '*' : address('from', body.from!);
  // As the keystore names the pair in its own audit records.
  return { pair: { sender, recipient }, scope, object: `pdf:${scope === 'recipient' ? '*' : addressKey(sender)}→${addressKey(recipient)}` };
}

/** The store's refusals of an input (an address, a weak or unusable password) are the caller's to fix. */
async function refusingBadInput<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof PdfPasswordError || err instanceof PdfSecurityError) throw new ApiError(400, err.message);
    throw err;
  }
}

/** The account's name, as in ctx.audit's records (one actor filter finds both). */
const actor = (req: ApiRequest) => req.caller.account;
const shown = (pair: PdfPair) => (pair.sender === '*' ? `any sender → ${pair.recipient}` : `${pair.sender} → ${pair.recipient}`);

async function notFound(ctx: AdminContext, pair: PdfPair, scope: PdfPasswordScope): Promise<void> {
  if (!(await ctx.store.pdfPasswordRecord(pair, scope))) throw new ApiError(404, `no PDF password for ${shown(pair)}`);
}

const EXAMPLE = { from: 'alice@example.com', to: 'bob@partner.example' };

export const pdfRoutes: ApiRoute[] = [
  {
    method: 'GET',
    url: '/pdf/passwords',
    permission: 'pdf.read',
    summary: 'List the pairs that have a PDF password: when made, whether the sender was told (never the password)',
    tag: 'pdf',
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { from: ADDRESS, to: ADDRESS, scope: { type: 'string', enum: ['recipient'] } } } },
    async handler(req, ctx) {
      const q = req.query as { from?: string; to?: string; scope?: 'recipient' };
      if (q.scope && q.from !== undefined) throw new ApiError(400, 'scope recipient is one password for all senders: leave out from');
      const sender = q.scope ? '*' : q.from !== undefined ? address('from', q.from) : undefined;
      const recipient = q.to !== undefined ? address('to', q.to) : undefined;
      const records = await ctx.store.listPdfPasswords({ ...(sender ? { sender } : {}), ...(recipient ? { recipient } : {}) });
      return ok({ passwords: records.map(pdfPasswordRow) });
    },
    example: { query: { to: EXAMPLE.to } },
  },
  {
    method: 'POST',
    url: '/pdf/passwords/reset',
    permission: 'pdf.change',
    summary: 'Make a new password for a pair (its reply links stop working); the sender is told it by a notice',
    tag: 'pdf',
    schema: { body: pairBody },
    async handler(req, ctx) {
      const { pair, scope, object } = pairOf(req.body as PairInput);
      await notFound(ctx, pair, scope);
      const { record, told } = await refusingBadInput(() => resetPdfPasswordAndTell(ctx.store, ctx.spool, ctx.config(), pair, scope, actor(req)));
      await ctx.audit(req.caller, { action: 'pdf.reset', object, detail: describeTold(told, pair.sender) });
      return ok({ pair: pdfPasswordRow(record), told, message: describeTold(told, pair.sender) });
    },
    example: { body: EXAMPLE },
  },
  {
    method: 'POST',
    url: '/pdf/passwords/set',
    permission: 'pdf.change',
    summary: 'Set a pair’s password to one the admin chose; the sender is told it by a notice',
    tag: 'pdf',
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['to', 'password'],
        // The store enforces the real limits (10 characters, 127 bytes); this bounds what is read.
        properties: { ...pairProperties, password: { type: 'string', minLength: 1, maxLength: 1024, writeOnly: true } },
      },
    },
    async handler(req, ctx) {
      const body = req.body as PairInput & { password: string };
      const { pair, scope, object } = pairOf(body);
      const { record, told } = await refusingBadInput(() => setPdfPasswordAndTell(ctx.store, ctx.spool, ctx.config(), pair, scope, body.password, actor(req)));
      await ctx.audit(req.caller, { action: 'pdf.set', object, detail: describeTold(told, pair.sender) });
      return ok({ pair: pdfPasswordRow(record), told, message: describeTold(told, pair.sender) });
    },
    example: { body: { ...EXAMPLE, password: 'correct horse battery' } },
  },
  {
    method: 'POST',
    url: '/pdf/passwords/show',
    permission: 'pdf.reveal',
    summary: 'Show a pair’s PDF password (audited)',
    tag: 'pdf',
    schema: { body: pairBody },
    async handler(req, ctx) {
      const { pair, scope, object } = pairOf(req.body as PairInput);
      const found = await refusingBadInput(() => ctx.store.showPdfPassword(pair, scope, actor(req)));
      if (!found) throw new ApiError(404, `no PDF password for ${shown(pair)}`);
      await ctx.audit(req.caller, { action: 'pdf.show', object });
      return ok({ pair: pdfPasswordRow(found.record), password: found.password });
    },
    example: { body: EXAMPLE },
  },
  {
    method: 'POST',
    url: '/pdf/passwords/delete',
    permission: 'pdf.change',
    summary: 'Delete a pair’s PDF password (its reply links stop working; the next PDF gets a new one)',
    tag: 'pdf',
    schema: { body: pairBody },
    async handler(req, ctx) {
      const { pair, scope, object } = pairOf(req.body as PairInput);
      if (!(await refusingBadInput(() => ctx.store.deletePdfPassword(pair, scope, actor(req))))) throw new ApiError(404, `no PDF password for ${shown(pair)}`);
      await ctx.audit(req.caller, { action: 'pdf.delete', object });
      return ok({ deleted: { sender: pair.sender, recipient: pair.recipient } });
    },
    example: { body: EXAMPLE },
  },
];
