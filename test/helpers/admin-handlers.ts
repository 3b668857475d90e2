/**
 * Admin API handlers called directly, without the HTTP layer: a real keystore (with the KEK) and
 * portal.db, a real spool, all in a temp dir, and an audit trail kept in memory so a test can see
 * what a handler recorded. The permission guard and schema validation are app.ts's; tests of them
 * go through `app.inject`.
 */
import { ApiError, type AdminCaller, type AdminContext, type ApiRequest, type ApiResult, type ApiRoute, type AuditChange } from '../../src/admin/routes.js';
import type { Config } from '../../src/config/types.js';
import { openKeyStoreWithPortal } from '../../src/keystore/index.js';
import { silentLogger } from '../../src/log/index.js';
import { Spool } from '../../src/spool/index.js';
import { tempDir, testConfig } from './config.js';

export const FAST_SCRYPT = { N: 2 ** 10, r: 8, p: 1 };

export const CALLER: AdminCaller = { account: 'ops', roles: ['administrator'], client: '127.0.0.1', via: 'api' };

export interface HandlerHarness {
  dir: string;
  config: Config;
  ctx: AdminContext;
  audits: (AuditChange & { account: string })[];
  /** Run the route `method url` of `routes` as CALLER; the result's JSON, or the ApiError thrown. */
  call(routes: readonly ApiRoute[], method: ApiRoute['method'], url: string, req?: Partial<Omit<ApiRequest, 'caller'>>): Promise<ApiResult>;
  close(): Promise<void>;
}

export async function handlerHarness(over: Parameters<typeof testConfig>[1] = {}): Promise<HandlerHarness> {
  const { dir, cleanup } = await tempDir('postern-admin-api-');
  const config = testConfig(dir, over);
  const { store, portal } = await openKeyStoreWithPortal(config, { pdfScrypt: FAST_SCRYPT });
  const spool = await Spool.open(dir);
  const audits: HandlerHarness['audits'] = [];
  const ctx: AdminContext = {
    config: () => config,
    configFile: config.file,
    store,
    portal,
    spool,
    log: silentLogger(),
    supervisor: { status: async () => [], reload: async () => true },
    audit: async (caller, change) => void audits.push({ account: caller.account, ...change }),
  };
  return {
    dir,
    config,
    ctx,
    audits,
    async call(routes, method, url, req = {}) {
      const route = routes.find((r) => r.method === method && r.url === url);
      if (!route) throw new Error(`no route ${method} ${url}`);
      return route.handler({ params: req.params ?? {}, query: req.query ?? {}, body: req.body, caller: CALLER }, ctx);
    },
    async close() {
      await store.close();
      portal.close();
      await cleanup();
    },
  };
}

/** The JSON of a handler's answer (tests of JSON routes). */
export function json<T = Record<string, unknown>>(r: ApiResult): T {
  if (!('json' in r)) throw new Error('the route answered with a file, not JSON');
  return r.json as T;
}

/** The file of a handler's answer (tests of download routes). */
export function file(r: ApiResult): { type: string; name: string; bytes: Buffer } {
  if (!('file' in r)) throw new Error('the route answered with JSON, not a file');
  return r.file;
}

/** The ApiError a handler's call ends in (fails the test when it succeeds or throws something else). */
export async function refusal(call: Promise<unknown>): Promise<ApiError> {
  const err = await call.then(() => null, (e: unknown) => e);
  if (!(err instanceof ApiError)) throw new Error(`expected an ApiError, got ${err === null ? 'an answer' : String(err)}`);
  return err;
}
