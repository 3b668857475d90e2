/**
 * Recent log events (logs.read): the last lines each process of the gateway keeps in memory
 * (log/recent.ts) — this admin role's own and, through the supervisor, every other role's and
 * the supervisor's — filtered where they are kept, merged newest first. The lines are the log as
 * written: already redacted, never a secret.
 */
import { LOG_LEVELS, MAX_LOG_LIMIT, mergeLogs, recentLogs, type LogQuery, type LogRecord } from '../../log/index.js';
import { ok, type ApiRoute } from '../routes.js';

const ROLES = ['smtpd', 'worker', 'relay', 'portal', 'admin', 'supervisor'];

const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    level: { type: 'string', enum: [...LOG_LEVELS], description: 'this level and more severe' },
    // Quoted: a bare `event:` key reads as a log call's event code to test/unit/log/event-scan.ts.
    'event': { type: 'string', maxLength: 100, pattern: '^[a-z0-9_.]+\\*?$', description: 'an event code (relay.delivered) or a prefix ending in * (relay.*)' },
    role: { type: 'string', enum: ROLES },
    queueId: { type: 'string', maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' },
    since: { type: 'string', format: 'date-time', maxLength: 40, description: 'lines at or after this time (ISO 8601)' },
    limit: { type: 'integer', minimum: 1, maximum: MAX_LOG_LIMIT, default: 200 },
  },
};

export const logRoutes: ApiRoute[] = [
  {
    method: 'GET',
    url: '/logs',
    permission: 'logs.read',
    tag: 'system',
    summary: 'Recent log events of every role process (the last ~2000 lines each keeps), filtered, newest first; "incomplete" names what could not be asked',
    schema: { querystring },
    example: { query: { level: 'info', 'event': 'relay.*', limit: '50' } },
    handler: async (req, ctx) => {
      const q = req.query as LogQuery;
      const query: LogQuery = { ...q, limit: q.limit ?? 200 };
      const own = query.role === undefined || query.role === 'admin' ? recentLogs(query) : [];
      let others: LogRecord[][] = [];
      let incomplete: string | undefined;
      if (query.role !== 'admin') {
        if (!ctx.supervisor.logs) incomplete = 'not running under the supervisor: this process\'s lines only';
        else others = await ctx.supervisor.logs(query).catch((err: Error) => ((incomplete = err.message), []));
      }
      return ok({ lines: mergeLogs([own, ...others], query), ...(incomplete ? { incomplete } : {}) });
    },
  },
];
