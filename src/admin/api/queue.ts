/**
 * The queue through the admin API: list and show (queue.read), hold, release, delete and flush
 * (queue.change) — the functions `postern queue` calls (relay/queue-view.ts, spool/admin.ts), so
 * the console, the API and the CLI see and do the same. Bodies are never shown.
 *
 * The running gateway needs no signal: a released or flushed entry lands in outgoing/ (or
 * incoming/), whose directory watches wake the relay (or a worker), as after the CLI's commands.
 *
 * Untrusted input: ids in URLs (checked against the shape of a queue id or entry name before they
 * reach a path), filter texts (compared only), a domain (canonicalised, refused if it is none).
 * "ALL" acts on every entry only with an explicit `{ "all": true }` in the body: a stray or forged
 * request for /queue/ALL/delete must not empty the queue.
 */
import { canonicalDomain, QUEUE_ENTRY_NAME_PATTERN } from '../../core/index.js';
import { LISTED_QUEUES, queueEntryViews, queueRows } from '../../relay/index.js';
import { deleteEntries, flushDeferred, holdEntries, releaseEntries, type AdminResult, type QueueName } from '../../spool/index.js';
import { ApiError, ok, type AdminContext, type ApiRequest, type ApiRoute, type JsonSchema } from '../routes.js';

/** Rows a listing returns unless asked for fewer (the console pages through a busy queue by filter). */
const DEFAULT_LIMIT = 500;
const MAX_LIMIT = 10_000;
/** Entry names an audit record lists before it says "and N more". */
const AUDIT_NAMES = 20;
const EXAMPLE_ID = '0000000000BCDFGHJKLM';

const idParam: JsonSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: QUEUE_ENTRY_NAME_PATTERN, description: 'a queue id (every entry of the message) or one entry name "<id>.<group>"' } },
};
const actionParam: JsonSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', anyOf: [{ pattern: QUEUE_ENTRY_NAME_PATTERN }, { const: 'ALL' }], description: 'a queue id, an entry name, or ALL (with { "all": true } in the body)' } },
};
const allBody: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { all: { type: 'boolean', description: 'must be true when the id is ALL' } },
};

function selectorOf(req: ApiRequest): string {
  const id = req.params.id!;
  const all = (req.body as { all?: boolean } | undefined)?.all === true;
  if (id === 'ALL' && !all) throw new ApiError(400, 'ALL acts on every queued message: send { "all": true } in the body to confirm');
  if (id !== 'ALL' && all) throw new ApiError(400, '{ "all": true } goes only with the id ALL');
  return id;
}

function auditDetail(verb: string, r: AdminResult, extra = ''): string {
  const names = [...r.done, ...(r.marked ?? []).map((m) => `${m} (marked)`)];
  const shown = names.slice(0, AUDIT_NAMES).join(', ');
  const more = names.length > AUDIT_NAMES ? ` and ${names.length - AUDIT_NAMES} more` : '';
  return `${verb} ${names.length} entr${names.length === 1 ? 'y' : 'ies'}${extra}: ${shown}${more}`;
}

/**
 * Audit and answer an admin action on the queue. Nothing matched: 404, or 409 when the entries
 * exist but a worker or the relay has them right now (as the CLI says "try again in a moment").
 */
async function answer(req: ApiRequest, ctx: AdminContext, action: string, object: string, r: AdminResult, opts: { emptyOk?: boolean; extra?: string } = {}) {
  const acted = r.done.length + (r.marked?.length ?? 0);
  if (acted === 0 && !opts.emptyOk) {
    if (r.busy.length) throw new ApiError(409, 'the message is being processed by a worker or delivered right now; try again in a moment', { busy: r.busy });
    throw new ApiError(404, `no queue entry matches ${object.slice('queue:'.length)}`);
  }
  if (acted > 0) await ctx.audit(req.caller, { action, object, detail: auditDetail(action.slice('queue.'.length), r, opts.extra) });
  return ok({ done: r.done, marked: r.marked ?? [], busy: r.busy });
}

const actionRoute = (verb: 'hold' | 'release' | 'delete', summary: string, run: (ctx: AdminContext, selector: string) => Promise<AdminResult>): ApiRoute => ({
  method: 'POST',
  url: `/queue/:id/${verb}`,
  permission: 'queue.change',
  summary,
  tag: 'queue',
  schema: { params: actionParam, body: allBody },
  async handler(req, ctx) {
    const selector = selectorOf(req);
    return answer(req, ctx, `queue.${verb}`, `queue:${selector}`, await run(ctx, selector));
  },
  example: { params: { id: EXAMPLE_ID }, body: {} },
});

export const queueRoutes: ApiRoute[] = [
  {
    method: 'GET',
    url: '/queue',
    permission: 'queue.read',
    summary: 'List queued messages, oldest first: envelope, each recipient’s state, the last reply (never bodies)',
    tag: 'queue',
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          queue: { type: 'string', enum: [...LISTED_QUEUES] },
          sender: { type: 'string', minLength: 1, maxLength: 320, description: 'part of the sender’s address' },
          recipient: { type: 'string', minLength: 1, maxLength: 320, description: 'part of a recipient’s address' },
          limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT },
        },
      },
    },
    async handler(req, ctx) {
      const q = req.query as { queue?: QueueName; sender?: string; recipient?: string; limit?: number };
      const limit = q.limit ?? DEFAULT_LIMIT;
      const { rows, total } = await queueRows(ctx.spool, { ...(q.queue ? { queue: q.queue } : {}), ...(q.sender ? { sender: q.sender } : {}), ...(q.recipient ? { recipient: q.recipient } : {}), limit });
      return ok({ entries: rows, total, truncated: total > rows.length });
    },
    example: { query: { queue: 'deferred', limit: '10' } },
  },
  {
    method: 'GET',
    url: '/queue/:id',
    permission: 'queue.read',
    summary: 'Show a queued message: its envelope and, per entry, each recipient’s state, attempts and last reply (never the body)',
    tag: 'queue',
    schema: { params: idParam },
    async handler(req, ctx) {
      const id = req.params.id!;
      const entries = await queueEntryViews(ctx.spool, id);
      if (!entries.length) throw new ApiError(404, `no queue entry matches ${id}`);
      return ok({ id: id.split('.')[0], entries });
    },
    example: { params: { id: EXAMPLE_ID } },
  },
  actionRoute('hold', 'Hold a message (or ALL): never retried until released; one being delivered is held when the attempt ends', (ctx, s) => holdEntries(ctx.spool, s)),
  actionRoute('release', 'Release a held message (or ALL): due at once; recipients it already reached are not sent to again', (ctx, s) => releaseEntries(ctx.spool, s)),
  actionRoute('delete', 'Delete a message (or ALL) for good, without a bounce', (ctx, s) => deleteEntries(ctx.spool, s)),
  {
    method: 'POST',
    url: '/queue/flush',
    permission: 'queue.change',
    summary: 'Retry deferred messages now: one message (id), those to a domain, or all ({ "all": true })',
    tag: 'queue',
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          id: { type: 'string', pattern: QUEUE_ENTRY_NAME_PATTERN },
          domain: { type: 'string', minLength: 1, maxLength: 253 },
          all: { type: 'boolean' },
        },
      },
    },
    async handler(req, ctx) {
      const body = (req.body ?? {}) as { id?: string; domain?: string; all?: boolean };
      const given = [body.id !== undefined, body.domain !== undefined, body.all === true].filter(Boolean).length;
      if (given !== 1) throw new ApiError(400, 'say what to flush: one of id, domain or { "all": true }');
      if (body.domain !== undefined) {
        const domain = canonicalDomain(body.domain);
        if (!domain) throw new ApiError(400, 'domain: not a valid domain name');
        return answer(req, ctx, 'queue.flush', `queue:@${domain}`, await flushDeferred(ctx.spool, 'ALL', domain), { emptyOk: true, extra: ` to ${domain}` });
      }
      const selector = body.id ?? 'ALL';
      return answer(req, ctx, 'queue.flush', `queue:${selector}`, await flushDeferred(ctx.spool, selector), { emptyOk: true });
    },
    example: { body: { all: true } },
  },
];
