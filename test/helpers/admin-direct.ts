/**
 * The admin API's handlers called directly, without HTTP: a real AdminContext over a keystore,
 * portal.db and spool in a temporary data dir, and a caller. `audits` keeps what the handlers
 * passed to ctx.audit (the real one writes the keystore's audit trail). Schemas are not applied
 * here — tests of validation and limits go through the app (app.inject).
 */
import type { AdminCaller, AdminContext, ApiRequest, ApiResult, ApiRoute, AuditChange } from '../../src/admin/routes.js';
import type { Config } from '../../src/config/types.js';
import { openKeyStoreWithPortal } from '../../src/keystore/index.js';
import { silentLogger } from '../../src/log/index.js';
import { Spool } from '../../src/spool/index.js';
import { testConfig } from './config.js';

export interface DirectAdmin {
  ctx: AdminContext;
  config: Config;
  caller: AdminCaller;
  audits: (AuditChange & { account: string })[];
  /** Call the route `method url` (as declared) with params, query and body. */
  call(method: ApiRoute['method'], url: string, req?: Partial<Omit<ApiRequest, 'caller'>>): Promise<ApiResult>;
  close(): Promise<void>;
}

export async function directAdmin(dataDir: string, routes: readonly ApiRoute[], over: Parameters<typeof testConfig>[1] = {}): Promise<DirectAdmin> {
  const config = testConfig(dataDir, over);
  const { store, portal } = await openKeyStoreWithPortal(config);
  const spool = await Spool.open(dataDir);
  const audits: DirectAdmin['audits'] = [];
  const ctx: AdminContext = {
    config: () => config,
    configFile: config.file,
    store,
    portal,
    spool,
    log: silentLogger(),
    supervisor: { status: async () => [], reload: async () => true },
    audit: async (caller, change) => {
      audits.push({ ...change, account: caller.account });
    },
  };
  const caller: AdminCaller = { account: 'alice-admin', roles: ['administrator'], client: '127.0.0.1', via: 'api' };
  return {
    ctx,
    config,
    caller,
    audits,
    call(method, url, req = {}) {
      const route = routes.find((r) => r.method === method && r.url === url);
      if (!route) throw new Error(`no route ${method} ${url}`);
      return route.handler({ params: req.params ?? {}, query: req.query ?? {}, body: req.body, caller }, ctx);
    },
    async close() {
      portal.close();
      await store.close();
    },
  };
}

/** The JSON of an answer (fails the test when it is a file). */
export function json<T = Record<string, unknown>>(r: ApiResult): T {
  if (!('json' in r)) throw new Error('expected JSON, got a file');
  return r.json as T;
}

/** The file of an answer (fails the test when it is JSON). */
export function file(r: ApiResult): { type: string; name: string; bytes: Buffer } {
  if (!('file' in r)) throw new Error('expected a file, got JSON');
  return r.file;
}
