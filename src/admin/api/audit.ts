/**
 * The audit trail through the admin API (issue 18; audit.read): a page of records with filters,
 * newest first unless asked otherwise, and the whole selection as a JSON-lines download — the
 * lines `postern audit export` prints. An export is itself audited: the trail says who took a
 * copy of it.
 *
 * Untrusted input: the filters (bounded by the schemas; times parsed strictly) and the records
 * themselves (text from outside: addresses, names; JSON escapes them, the console must too).
 * Secrets: none are in the trail (its writers' duty).
 */
import { auditJson, parseAuditTime, type AuditEntry, type AuditFilter } from '../../keystore/index.js';
import { ApiError, ok, type ApiRequest, type ApiRoute, type JsonSchema } from '../routes.js';

const PAGE = 100;
const MAX_PAGE = 1000;
/** An export is built in memory: beyond this, narrow it (or use `postern audit export` on the gateway). */
export const MAX_EXPORT_BYTES = 64 * 1024 * 1024;

const TEXT = { type: 'string', minLength: 1, maxLength: 1000 } as const;
const FILTERS = {
  since: { type: 'string', maxLength: 40, description: 'ISO 8601 time or date (UTC without a zone): records at or after it' },
  until: { type: 'string', maxLength: 40, description: 'ISO 8601 time or date: records before it' },
  actor: { ...TEXT, description: 'records of this actor only (an account name, "cli:root", "worker" …)' },
  action: { ...TEXT, description: 'records of this action only ("import", "admin-add", "policy-activate" …)' },
  object: { ...TEXT, description: 'records whose object starts with this ("cert:", "admin:alice")' },
} as const;

const listQuery: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...FILTERS,
    order: { type: 'string', enum: ['newest', 'oldest'], default: 'newest' },
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: PAGE },
    cursor: { type: 'integer', minimum: 0, description: 'the "next" of the previous page: the records after it in the order asked' },
  },
};
const exportQuery: JsonSchema = { type: 'object', additionalProperties: false, properties: { ...FILTERS } };

/** The filter of a request's query (already shaped by the schema); 400 for a time that is none. */
function filterOf(q: Record<string, unknown>): AuditFilter {
  const f: AuditFilter = {};
  try {
    if (typeof q.since === 'string') f.since = parseAuditTime(q.since, 'since');
    if (typeof q.until === 'string') f.until = parseAuditTime(q.until, 'until');
  } catch (err) {
    throw new ApiError(400, (err as Error).message);
  }
  if (typeof q.actor === 'string') f.actor = q.actor;
  if (typeof q.action === 'string') f.action = q.action;
  if (typeof q.object === 'string') f.objectPrefix = q.object;
  return f;
}

const record = (e: AuditEntry) => ({ id: e.id, ...auditJson(e) });

/** "actor alice, since 2026-12-01T00:00:00.000Z": what an export selected, for its audit record. */
function selection(q: Record<string, unknown>): string {
  const parts = Object.keys(FILTERS).filter((k) => typeof q[k] === 'string').map((k) => `${k} ${JSON.stringify(q[k])}`);
  return parts.length ? parts.join(', ') : 'everything';
}

export const auditRoutes: ApiRoute[] = [
  {
    method: 'GET',
    url: '/audit',
    permission: 'audit.read',
    summary: 'A page of the audit trail (newest first unless order=oldest), filtered by time, actor, action and object prefix; "next" is the cursor of the following page',
    tag: 'audit',
    schema: { querystring: listQuery },
    async handler(req: ApiRequest, ctx) {
      const q = req.query;
      const order = q.order === 'oldest' ? 'oldest' : 'newest';
      const limit = typeof q.limit === 'number' ? q.limit : PAGE;
      const f: AuditFilter = { ...filterOf(q), order, limit: limit + 1 };
      if (typeof q.cursor === 'number') {
        if (order === 'newest') f.beforeId = q.cursor;
        else f.afterId = q.cursor;
      }
      const rows = await ctx.store.auditLog(f);
      const page = rows.slice(0, limit);
      return ok({ records: page.map(record), next: rows.length > limit ? (page[page.length - 1]!.id ?? null) : null });
    },
    example: { query: { since: '2026-01-01', order: 'newest', limit: '10' } },
  },
  {
    method: 'GET',
    url: '/audit/export',
    permission: 'audit.read',
    summary: 'The audit trail as JSON lines (oldest first; at, actor, via, client, action, object, detail, before, after), filtered as /audit',
    tag: 'audit',
    schema: { querystring: exportQuery },
    async handler(req, ctx) {
      const chunks: Buffer[] = [];
      let size = 0;
      let count = 0;
      for await (const e of ctx.store.auditRecords(filterOf(req.query))) {
        const line = Buffer.from(`${JSON.stringify(auditJson(e))}\n`, 'utf8');
        size += line.length;
        if (size > MAX_EXPORT_BYTES) throw new ApiError(413, `the export would be larger than ${MAX_EXPORT_BYTES / 1024 / 1024} MiB: narrow it with since and until (or run postern audit export on the gateway)`);
        chunks.push(line);
        count++;
      }
      await ctx.audit(req.caller, { action: 'audit-export', object: 'audit', detail: `${count} records: ${selection(req.query)}` });
      const day = new Date().toISOString().slice(0, 10);
      return { file: { type: 'application/x-ndjson; charset=utf-8', name: `postern-audit-${day}.jsonl`, bytes: Buffer.concat(chunks) } };
    },
    example: { query: { action: 'import' } },
  },
];
