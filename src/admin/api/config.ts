/**
 * The configuration in the admin API: the config in force with every secret redacted
 * (config/redact.ts decides what is one), and reloading the running gateway as SIGHUP does.
 */
import { redactConfig } from '../../config/index.js';
import { checkConfigAndPolicy } from '../../policy/index.js';
import { ApiError, ok, type ApiRoute } from '../routes.js';
import { problemsOf } from './policy.js';

export const configRoutes: ApiRoute[] = [
  {
    method: 'GET',
    url: '/config',
    permission: 'config.read',
    summary: 'The configuration in force (postern.yaml, defaults filled in, paths absolute), every secret redacted',
    tag: 'system',
    async handler(_req, ctx) {
      const config = ctx.config();
      // The policy is GET /policy's: here only which file it is.
      return ok({ file: ctx.configFile, config: redactConfig({ ...config, policy: { file: config.policy.file } }) });
    },
    example: {},
  },
  {
    method: 'POST',
    url: '/system/reload',
    permission: 'system.change',
    summary: 'Reload the running gateway (config and policy) as SIGHUP does; 409 with every problem when they do not validate (the running ones stay)',
    tag: 'system',
    async handler(req, ctx) {
      const reloaded = await ctx.supervisor.reload();
      await ctx.audit(req.caller, { action: 'system.reload', object: 'system', detail: reloaded ? 'reloaded' : 'refused: the configuration does not validate' });
      if (reloaded) return ok({ reloaded });
      // What the supervisor refused, as `postern check` would list it (read again: it may have been fixed since).
      const check = await checkConfigAndPolicy(ctx.configFile);
      throw new ApiError(409, 'the configuration does not validate; the running gateway keeps the one it has', { problems: check.ok ? [] : problemsOf(check.problems) });
    },
    example: {},
  },
];
