/**
 * The gateway at a glance (status.read): every role process as the supervisor sees it, and how
 * many entries wait in each spool directory. The dashboard starts here.
 */
import { QUEUES } from '../../spool/index.js';
import { ApiError, ok, type ApiRoute } from '../routes.js';

export const statusRoutes: ApiRoute[] = [
  {
    method: 'GET',
    url: '/status',
    permission: 'status.read',
    tag: 'system',
    summary: 'The role processes (running, since, restarts) and the number of entries in each spool directory',
    example: {},
    handler: async (_req, ctx) => {
      // The supervisor may be busy (a reload, a stop): the queue still answers.
      const roles = await ctx.supervisor.status().then(
        (r) => ({ roles: r }),
        (err: Error) => ({ roles: null, rolesError: err.message }),
      );
      const queues: Record<string, number> = {};
      for (const q of QUEUES) queues[q] = (await ctx.spool.list(q)).length;
      const c = ctx.config();
      return ok({ hostname: c.hostname, ...roles, queues });
    },
  },
  {
    method: 'GET',
    url: '/status/messages',
    permission: 'status.read',
    tag: 'system',
    summary: "Recipients' copies the workers wrote per hour over the last day, by method (smime, pgp, pdf, webmail, clear), as the admin role counted them since it started",
    example: {},
    handler: async (_req, ctx) => {
      if (!ctx.messagesPerHour) throw new ApiError(404, 'messages per hour are not counted here (the admin role counts them from the metrics it gathers)');
      return ok(ctx.messagesPerHour());
    },
  },
];
