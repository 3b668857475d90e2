/**
 * The last log lines of this process, kept in memory for the admin console's "recent log events"
 * (GET /api/logs): every line the process writes to its log is also put in a ring of RECENT_LINES
 * strings — already JSON, already redacted by pino — so keeping them costs a store per line; they
 * are parsed only when an admin asks, and filtered in the process that has them, so only what
 * matches crosses the IPC channel.
 *
 * Untrusted input: the query (from the admin API, validated there) and the lines' contents
 * (addresses, client names: JSON-escaped by pino, and returned as JSON again).
 */
import type { DestinationStream } from 'pino';

export const RECENT_LINES = 2000;
/** A longer line (a stack, a long list) is kept as its time, level, role, event and message only: the ring stays a few MB at most. */
export const MAX_KEPT_LINE = 8192;
/** The most lines one question returns. */
export const MAX_LOG_LIMIT = 2000;

/** Pino's level labels, least severe first. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

export interface LogQuery {
  /** This level and more severe. */
  level?: LogLevelName;
  /** An event code ("relay.delivered"), or a prefix ending in "*" ("relay.*"). */
  event?: string;
  role?: string;
  queueId?: string;
  /** ISO time: lines at or after it. */
  since?: string;
  /** The newest this many (default 200). */
  limit?: number;
}

/** One log line as written: time, level, role, pid, event, msg and the event's fields. */
export type LogRecord = Record<string, unknown> & { time: string; level: string };

const ring: (string | undefined)[] = new Array<string | undefined>(RECENT_LINES);
let next = 0;

/** Keep a line (a pino chunk: one JSON object and its newline). */
export function keepLine(line: string): void {
  ring[next] = line.length > MAX_KEPT_LINE ? shortened(line) : line;
  next = (next + 1) % RECENT_LINES;
}

function shortened(line: string): string {
  try {
    const r = JSON.parse(line) as Record<string, unknown>;
    const keep: Record<string, unknown> = { truncated: line.length };
    for (const k of ['time', 'level', 'role', 'pid', 'event', 'queueId', 'msg']) if (typeof r[k] === 'string' || typeof r[k] === 'number') keep[k] = typeof r[k] === 'string' ? (r[k] as string).slice(0, 1000) : r[k];
    return JSON.stringify(keep);
  } catch {
    return '';
  }
}

/** A destination that writes to `dest` and keeps each line here too. */
export function keepingRecent(dest: DestinationStream): DestinationStream {
  const d = dest as DestinationStream & { flush?: (cb?: (err?: Error) => void) => void; flushSync?: () => void };
  return {
    write(line: string) {
      keepLine(line);
      return d.write(line);
    },
    ...(d.flush ? { flush: (cb?: (err?: Error) => void) => d.flush!(cb) } : {}),
    ...(d.flushSync ? { flushSync: () => d.flushSync!() } : {}),
  } as DestinationStream;
}

/** Forget every kept line (tests). */
export function forgetRecent(): void {
  ring.fill(undefined);
  next = 0;
}

/** The kept lines that match, newest first, at most `limit`. */
export function recentLogs(q: LogQuery = {}): LogRecord[] {
  const match = matcher(q);
  const limit = clampLimit(q.limit);
  const out: LogRecord[] = [];
  for (let i = 1; i <= RECENT_LINES && out.length < limit; i++) {
    const line = ring[(next - i + RECENT_LINES) % RECENT_LINES];
    if (line === undefined) break;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      continue; // not ours (a partial write can't happen: pino writes whole lines)
    }
    if (isRecord(r) && match(r)) out.push(r);
  }
  return out;
}

/** Lines of several processes, merged newest first, at most `limit`. */
export function mergeLogs(lists: readonly (readonly LogRecord[])[], q: LogQuery = {}): LogRecord[] {
  const match = matcher(q);
  const all = lists.flat().filter(match);
  // ISO times of one clock compare as strings; equal times keep their order within a process.
  all.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
  return all.slice(0, clampLimit(q.limit));
}

export function clampLimit(n: number | undefined): number {
  return Math.max(1, Math.min(MAX_LOG_LIMIT, Math.floor(n ?? 200)));
}

function isRecord(r: unknown): r is LogRecord {
  return typeof r === 'object' && r !== null && typeof (r as LogRecord).time === 'string' && typeof (r as LogRecord).level === 'string';
}

function matcher(q: LogQuery): (r: LogRecord) => boolean {
  const min = q.level ? LOG_LEVELS.indexOf(q.level) : -1;
  const event = q.event;
  const prefix = event?.endsWith('*') ? event.slice(0, -1) : null;
  const t = q.since ? Date.parse(q.since) : NaN;
  const since = Number.isNaN(t) ? null : new Date(t).toISOString();
  return (r) => {
    if (min > 0 && LOG_LEVELS.indexOf(r.level as LogLevelName) < min) return false;
    if (event !== undefined) {
      if (typeof r.event !== 'string') return false;
      if (prefix !== null ? !r.event.startsWith(prefix) : r.event !== event) return false;
    }
    if (q.role !== undefined && r.role !== q.role) return false;
    if (q.queueId !== undefined && r.queueId !== q.queueId) return false;
    if (since !== null && r.time < since) return false;
    return true;
  };
}
