/**
 * `postern audit list|export`: the audit trail of postern.db (issue 18) — every change to keys,
 * passwords, policy, trust and admin accounts, from the CLI, the admin API and console, and the
 * roles.
 *
 * - export [filters]: JSON lines, oldest first, every record (a page at a time): for archives and
 *   log systems. Each line: at, actor, via, client, action, object, detail, before, after.
 * - list [filters] [--limit N]: the newest N (default 50) as a table, newest first.
 * Filters: --since ISO, --until ISO, --actor A, --action X, --object PREFIX.
 *
 * Untrusted input: records carry text from outside (addresses from mail, names from the API): the
 * table shows control and invisible characters escaped, so a record cannot drive the terminal.
 */
import { auditJson, parseAuditTime, type AuditEntry, type AuditFilter } from '../keystore/index.js';
import { parse, UsageError, type CliIo } from './args.js';
import { withStore } from './keys-common.js';

const USAGE = 'audit list [--limit N] | audit export  (filters: --since ISO --until ISO --actor A --action X --object PREFIX)';
const DEFAULT_LIST = 50;

export async function auditCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, {
    since: { type: 'string' },
    until: { type: 'string' },
    actor: { type: 'string' },
    action: { type: 'string' },
    object: { type: 'string' },
    limit: { type: 'string' },
  });
  const [sub, ...extra] = positionals;
  if (extra.length) throw new UsageError(`too many arguments; usage: postern ${USAGE}`);
  if (sub !== 'list' && sub !== 'export') throw new UsageError(`unknown audit command ${JSON.stringify(sub ?? '')}; usage: postern ${USAGE}`);
  const filter: AuditFilter = {};
  try {
    if (values.since !== undefined) filter.since = parseAuditTime(values.since, '--since');
    if (values.until !== undefined) filter.until = parseAuditTime(values.until, '--until');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.actor !== undefined) filter.actor = values.actor;
  if (values.action !== undefined) filter.action = values.action;
  if (values.object !== undefined) filter.objectPrefix = values.object;
  if (sub === 'export') {
    if (values.limit !== undefined) throw new UsageError('audit export writes every record the filters select: no --limit');
    return withStore(values.config, async (store) => {
      for await (const e of store.auditRecords(filter)) io.out(JSON.stringify(auditJson(e)));
      return 0;
    });
  }
  const limit = values.limit === undefined ? DEFAULT_LIST : Number(values.limit);
  if (!/^\d{1,9}$/.test(values.limit ?? '0') || limit < 1) throw new UsageError(`--limit ${JSON.stringify(values.limit)}: a number of records, 1 or more`);
  return withStore(values.config, async (store) => {
    const records = await store.auditLog({ ...filter, order: 'newest', limit: limit + 1 });
    io.out(['AT', 'ACTOR', 'VIA', 'CLIENT', 'ACTION', 'OBJECT', 'DETAIL'].join('\t'));
    for (const e of records.slice(0, limit)) io.out(line(e));
    io.out(records.length > limit ? `-- the newest ${limit} records; more with --limit or audit export` : `-- ${records.length} record${records.length === 1 ? '' : 's'}`);
    return 0;
  });
}

/** Control, format and separator characters (and tabs, the column separator) as \u escapes. */
const shown = (s: string | undefined, max = 200) => {
  if (s === undefined) return '-';
  const t = s.length > max ? `${s.slice(0, max)}…` : s;
  return t.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`);
};

function line(e: AuditEntry): string {
  const changed = e.before !== undefined || e.after !== undefined ? ' (before/after: audit export)' : '';
  return [e.at.toISOString().replace(/\.\d+Z$/, 'Z'), shown(e.actor), shown(e.via), shown(e.client), shown(e.action), shown(e.object), `${shown(e.detail)}${changed}`].join('\t');
}
