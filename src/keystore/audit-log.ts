/**
 * The audit trail's rows (postern.db audit_log): what a record becomes in the table, the query
 * of a filter, and a row read back. The SQL runs in store-base.ts; the table is append-only
 * (schema.ts migration 6: triggers refuse UPDATE and DELETE).
 *
 * Untrusted input: every field may carry text from outside (addresses from mail, names from the
 * admin API, a policy file): stored as given up to a bound, only ever bound as SQL parameters;
 * whoever prints it escapes it. Secrets: none may reach here — the callers' duty (nothing here
 * can tell a password from a name).
 */
import type { AuditEntry, AuditFilter } from './types.js';
import type { Row } from './store-base.js';

/** A bound per field: a before/after may be a whole policy file, never an unbounded one. */
export const MAX_AUDIT_TEXT = 1024 * 1024;
const MAX_AUDIT_SHORT = 1000;

function bounded(s: string | undefined | null, max: number): string | null {
  if (s === undefined || s === null) return null;
  const t = String(s);
  if (t.length <= max) return t;
  return `${t.slice(0, max)}… [${t.length - max} characters more, cut]`;
}

/** Records of actors "cli:<login>" came through the command line even when the caller did not say. */
export function channelOf(e: Pick<AuditEntry, 'actor' | 'via'>): string | null {
  if (e.via) return e.via;
  return e.actor.startsWith('cli:') ? 'cli' : null;
}

/** The values of one INSERT, in the order of INSERT_AUDIT's columns. */
export function auditValues(e: Omit<AuditEntry, 'at' | 'id'>, at: number): (string | number | null)[] {
  return [
    at,
    bounded(e.actor, MAX_AUDIT_SHORT),
    bounded(e.action, MAX_AUDIT_SHORT),
    bounded(e.object, MAX_AUDIT_SHORT),
    bounded(e.detail, MAX_AUDIT_TEXT),
    bounded(e.client, MAX_AUDIT_SHORT),
    bounded(channelOf(e), MAX_AUDIT_SHORT),
    bounded(e.before, MAX_AUDIT_TEXT),
    bounded(e.after, MAX_AUDIT_TEXT),
  ];
}

export const INSERT_AUDIT = 'INSERT INTO audit_log (at, actor, action, object, detail, client, via, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)';

/** SELECT of the records `f` asks for; LIKE is not used for the prefix (its wildcards would be the caller's). */
export function auditQuery(f: AuditFilter): { sql: string; args: (string | number)[] } {
  const where: string[] = [];
  const args: (string | number)[] = [];
  const add = (clause: string, ...values: (string | number)[]) => {
    where.push(clause);
    args.push(...values);
  };
  if (f.object !== undefined) add('object = ?', f.object);
  if (f.objectPrefix !== undefined && f.objectPrefix !== '') add('substr(object, 1, ?) = ?', f.objectPrefix.length, f.objectPrefix);
  if (f.actor !== undefined) add('actor = ?', f.actor);
  if (f.action !== undefined) add('action = ?', f.action);
  if (f.since !== undefined) add('at >= ?', time(f.since, 'since'));
  if (f.until !== undefined) add('at < ?', time(f.until, 'until'));
  if (f.afterId !== undefined) add('id > ?', f.afterId);
  if (f.beforeId !== undefined) add('id < ?', f.beforeId);
  let sql = `SELECT * FROM audit_log${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id ${f.order === 'newest' ? 'DESC' : 'ASC'}`;
  if (f.limit !== undefined) {
    if (!Number.isInteger(f.limit) || f.limit < 0) throw new RangeError('an audit log limit is a whole number, 0 or more');
    sql += ' LIMIT ?';
    args.push(f.limit);
  }
  return { sql, args };
}

function time(d: Date, what: string): number {
  const t = d instanceof Date ? d.getTime() : NaN;
  if (Number.isNaN(t)) throw new RangeError(`the audit log filter's ${what} is not a valid time`);
  return t;
}

export function auditEntryOf(r: Row): AuditEntry {
  const e: AuditEntry = { id: r.id as number, at: new Date(r.at as number), actor: r.actor as string, action: r.action as string, object: r.object as string };
  for (const k of ['detail', 'via', 'client', 'before', 'after'] as const) if (r[k] != null) e[k] = r[k] as string;
  return e;
}

/** One record as `postern audit export` and the admin API's export write it: one JSON object a line, every field present. */
export function auditJson(e: AuditEntry): Record<string, string | null> {
  return {
    at: e.at.toISOString(), actor: e.actor, via: e.via ?? null, client: e.client ?? null, action: e.action, object: e.object,
    detail: e.detail ?? null, before: e.before ?? null, after: e.after ?? null,
  };
}

/**
 * A time given to a filter (command line, query string): an ISO 8601 date or date and time
 * ("2026-12-03", "2026-12-03T12:00:00Z"; without a zone, UTC). RangeError naming `what` otherwise.
 */
export function parseAuditTime(s: string, what: string): Date {
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)(Z|[+-]\d{2}:\d{2})?)?$/.exec(s);
  const d = m ? new Date(m[2] ? `${m[1]}T${m[2]}${m[3] ?? 'Z'}` : `${m[1]}T00:00:00Z`) : null;
  if (!d || Number.isNaN(d.getTime())) throw new RangeError(`${what} ${JSON.stringify(s.slice(0, 40))} is not an ISO 8601 time (e.g. 2026-12-03 or 2026-12-03T12:00:00Z)`);
  return d;
}
