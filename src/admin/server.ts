/**
 * The admin role's HTTP(S) listeners: the app of app.ts on every admin.listen address, over TLS
 * when admin.tls is set (config load refuses plain HTTP anywhere but loopback). A renewed
 * certificate is taken on SIGHUP (the supervisor reads the files and hands over the bytes).
 */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { ListenAddress } from '../config/index.js';
import { serveApp } from '../portal/index.js';
import { buildAdminApp, type AdminAppOptions, type AdminWeb } from './app.js';

export interface AdminServer {
  addresses: ListenAddress[];
  app: FastifyInstance;
  web: AdminWeb;
  reloadTls(material?: { cert: Buffer; key: Buffer }): Promise<void>;
  close(): Promise<void>;
}

export class AdminError extends Error {
  override readonly name = 'AdminError';
}

export async function startAdmin(opts: Omit<AdminAppOptions, 'tls'> & { listen?: readonly ListenAddress[] }): Promise<AdminServer> {
  const config = opts.ctx.config();
  const listen = opts.listen ?? config.admin.listen;
  if (!listen.length) throw new AdminError('admin.listen is empty: nothing to listen on');
  const tlsFiles = config.admin.tls;
  const readTls = async () => {
    if (!tlsFiles) return undefined;
    try {
      return { cert: await readFile(tlsFiles.cert), key: await readFile(tlsFiles.key) };
    } catch (err) {
      throw new AdminError(`admin.tls: ${(err as Error).message}`);
    }
  };
  const tls = await readTls();
  const { app, web } = await buildAdminApp({ ...opts, tls: Boolean(tls) });
  let served;
  try {
    served = await serveApp(app, listen, tls);
  } catch (err) {
    throw new AdminError(`cannot listen: ${(err as Error).message}`);
  }
  opts.log.info({ event: 'admin.listening', addresses: served.addresses.map((a) => `${a.host}:${a.port}`), tls: Boolean(tls) }, 'admin console listening');
  return {
    addresses: served.addresses,
    app,
    web,
    reloadTls: async (material) => {
      if (!tlsFiles) return;
      const fresh = material ?? (await readTls());
      if (fresh) served.setCertificate(fresh);
      opts.log.info({ event: 'admin.tls_reloaded' }, 'admin certificate read again');
    },
    close: served.close,
  };
}
