/**
 * Webmail mailboxes through the admin API (issue 17): list (webmail.read), reset and delete
 * (webmail.change) — the functions `postern webmail` calls (worker/webmail-admin.ts). A reset
 * returns the new password only when no sender is told it by mail, as the CLI prints it then.
 *
 * Untrusted input: the mailbox address in the URL and the address to notify (canonicalised,
 * refused when they are none; notify only to internal_domains). Secrets: the new password, in the
 * answer to the one reset that asked for it; never in an audit record or an error message.
 */
import { addressKey, canonicalAddress } from '../../core/index.js';
import { deleteWebmailAccount, resetWebmailAccount, webmailAccountRows, WebmailResetRefused } from '../../worker/webmail-admin.js';
import { ApiError, ok, type AdminContext, type ApiRequest, type ApiRoute, type JsonSchema } from '../routes.js';

const ADDRESS = { type: 'string', minLength: 3, maxLength: 512 } as const;
const addressParam: JsonSchema = { type: 'object', required: ['address'], properties: { address: { ...ADDRESS, description: 'the mailbox’s address (URL-encoded)' } } };
const EXAMPLE = 'bob@partner.example';

function address(field: string, value: string): string {
  const a = canonicalAddress(value);
  if (!a) throw new ApiError(400, `${field}: not a mail address`);
  return a;
}

async function accountOf(req: ApiRequest, ctx: AdminContext) {
  const wanted = address('address', req.params.address!);
  const account = await ctx.portal.account(addressKey(wanted));
  if (!account) throw new ApiError(404, `${wanted} has no webmail mailbox`);
  return account;
}

const who = (req: ApiRequest) => ({ actor: req.caller.account, client: req.caller.client });

export const webmailRoutes: ApiRoute[] = [
  {
    method: 'GET',
    url: '/webmail/accounts',
    permission: 'webmail.read',
    summary: 'List the webmail mailboxes: created, messages and bytes, last log-in, whether the password was told and changed',
    tag: 'webmail',
    async handler(_req, ctx) {
      return ok({ accounts: await webmailAccountRows(ctx.portal) });
    },
    example: {},
  },
  {
    method: 'POST',
    url: '/webmail/accounts/:address/reset',
    permission: 'webmail.change',
    summary: 'Give a mailbox a new key pair and password (its mail, sealed to the old key, is removed); mailed to notify, or returned',
    tag: 'webmail',
    schema: {
      params: addressParam,
      body: { type: 'object', additionalProperties: false, properties: { notify: { ...ADDRESS, description: 'one of our own users to mail the password to; without it, the answer carries it' } } },
    },
    async handler(req, ctx) {
      const account = await accountOf(req, ctx);
      const body = (req.body ?? {}) as { notify?: string };
      const notify = body.notify !== undefined ? address('notify', body.notify) : undefined;
      let r: Awaited<ReturnType<typeof resetWebmailAccount>>;
      try {
        r = await resetWebmailAccount(ctx.portal, ctx.spool, ctx.config(), account, notify, who(req));
      } catch (err) {
        if (err instanceof WebmailResetRefused) throw new ApiError(400, err.message);
        throw err;
      }
      await ctx.audit(req.caller, {
        action: 'webmail.reset',
        object: `webmail:${account.addressKey}`,
        detail: `generation ${r.generation}, ${r.removedMessages} messages removed, ${r.queueId ? `password mailed to ${notify} (queue id ${r.queueId})` : 'password given to the admin'}`,
      });
      return ok({
        address: account.address,
        generation: r.generation,
        removedMessages: r.removedMessages,
        ...(r.queueId ? { notified: { to: notify, queueId: r.queueId } } : { password: r.password }),
      });
    },
    example: { params: { address: EXAMPLE }, body: { notify: 'alice@example.com' } },
  },
  {
    method: 'POST',
    url: '/webmail/accounts/:address/delete',
    permission: 'webmail.change',
    summary: 'Delete a mailbox and its mail',
    tag: 'webmail',
    schema: { params: addressParam },
    async handler(req, ctx) {
      const account = await accountOf(req, ctx);
      const removed = await deleteWebmailAccount(ctx.portal, account, who(req));
      if (removed === null) throw new ApiError(404, `${account.address} has no webmail mailbox`);
      await ctx.audit(req.caller, { action: 'webmail.delete', object: `webmail:${account.addressKey}`, detail: `${removed} messages removed` });
      return ok({ address: account.address, removedMessages: removed });
    },
    example: { params: { address: EXAMPLE } },
  },
];
