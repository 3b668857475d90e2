/**
 * The portal's HTTP(S) servers: node:http, or node:https when portal.tls is configured, on each
 * portal.listen address, all routing into one Fastify application (app.ts) with the routes
 *   GET /health                                        200 {"status":"ok"}
 *   GET /.well-known/openpgpkey/<domain>/hu/<hash>     WKD advanced layout (internal domains)
 *   GET /.well-known/openpgpkey/<domain>/policy
 *   GET /.well-known/openpgpkey/hu/<hash>              WKD direct layout (domain from Host)
 *   GET /.well-known/openpgpkey/policy
 *   GET <path of ca.crl_url>                           the internal CA's CRL (DER), when configured
 *   /assets/…                                          the pages' style sheet, script and logo
 * and the pages the page modules register (PDF reply, webmail, key server).
 *
 * Untrusted input: every request from the network, bounded by Node's header limits, the
 * time-outs below and the app's body limits. Secrets: the TLS private key (read at start and on
 * reloadTls(), which the role calls on SIGHUP so a renewed certificate needs no restart). The
 * portal holds no KEK: the CRL it serves is a file signed elsewhere.
 */
import { readFile, stat } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Config, ListenAddress } from '../config/index.js';
import type { Logger } from '../log/index.js';
import type { PortalDb } from '../keystore/portal-db.js';
import { buildPortalApp, type PortalPages } from './app.js';
import { logoAsset, type Asset } from './assets.js';
import { serveApp, type Listening } from './listen.js';
import { WkdIndex, type PortalStore } from './wkd.js';

export interface PortalOptions {
  config: Pick<Config, 'internal_domains' | 'portal' | 'hostname'> & { ca?: { crl_url?: string } };
  store: PortalStore;
  log: Logger;
  /** The file holding the internal CA's current CRL (DER), written by publishInternalCrl. */
  crlFile?: string;
  /** Page modules (PDF reply, webmail, key server), each registering its routes. */
  pages?: ((app: FastifyInstance, pages: PortalPages) => void | Promise<void>)[];
  /** portal.db: PDF reply links, webmail accounts and mailboxes, log-in failures, audit (issue 17). */
  db?: PortalDb;
  /** Tests: the clock of the index and the sessions. */
  now?: () => number;
  /** Tests: requests per minute and client before 429. */
  rateLimit?: number;
}

export interface Portal {
  /** Where it listens (with the real port when 0 was configured). */
  addresses: ListenAddress[];
  /** The WKD index (rebuild() after importing keys, for tests and admin actions). */
  wkd: WkdIndex;
  /** The Fastify application (tests may inject requests). */
  app: FastifyInstance;
  pages: PortalPages;
  /** Use portal.tls's certificate and key anew for new connections (SIGHUP): the given bytes, or the files read again. */
  reloadTls(material?: { cert: Buffer; key: Buffer }): Promise<void>;
  close(): Promise<void>;
}

export class PortalError extends Error {
  override readonly name = 'PortalError';
}

async function readTls(tls: { cert: string; key: string }): Promise<{ cert: Buffer; key: Buffer }> {
  try {
    return { cert: await readFile(tls.cert), key: await readFile(tls.key) };
  } catch (err) {
    throw new PortalError(`portal.tls: ${(err as Error).message}`);
  }
}

/** Start listening on every portal.listen address; rejects (PortalError) if one cannot be bound. */
export async function startPortal(opts: PortalOptions): Promise<Portal> {
  const { config, log } = opts;
  const listen = config.portal.listen;
  if (!listen.length) throw new PortalError('portal.listen is empty: nothing to listen on');
  const tls = config.portal.tls ? await readTls(config.portal.tls) : undefined;
  let logo: Asset | undefined;
  if (config.portal.logo) {
    try {
      logo = logoAsset(await readFile(config.portal.logo), config.portal.logo);
    } catch (err) {
      throw new PortalError(`portal.logo: ${(err as Error).message}`);
    }
  }
  const wkd = new WkdIndex(opts.store, config.internal_domains, config.portal.index_ttl, opts.now);
  const crlPath = config.ca?.crl_url && opts.crlFile ? new URL(config.ca.crl_url).pathname : null;
  // Read again whenever the file changed (a revocation shows at once); else served from memory.
  let crlCache: { mtime: number; der: Buffer } | null = null;
  const crlFile = opts.crlFile;
  const crl = crlFile
    ? async (): Promise<Buffer | null> => {
        const st = await stat(crlFile).catch(() => null);
        if (!st) return null;
        if (!crlCache || crlCache.mtime !== st.mtimeMs) crlCache = { mtime: st.mtimeMs, der: await readFile(crlFile) };
        return crlCache.der;
      }
    : null;
  const { app, pages } = await buildPortalApp({
    config,
    log,
    machine: { wkd, wkdEnabled: config.portal.wkd, log, crlPath, crl },
    tls: Boolean(tls),
    ...(logo ? { logo } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.rateLimit ? { rateLimit: opts.rateLimit } : {}),
    ...(opts.pages ? { pages: opts.pages } : {}),
  });

  let served: Listening;
  try {
    served = await serveApp(app, listen, tls);
  } catch (err) {
    throw new PortalError(`cannot listen: ${(err as Error).message}`);
  }
  const { addresses } = served;
  log.info({ event: 'portal.listening', addresses: addresses.map((a) => `${a.host}:${a.port}`), tls: Boolean(tls) }, 'portal listening');

  const reloadTls = async (material?: { cert: Buffer; key: Buffer }) => {
    if (!config.portal.tls) return;
    // The role, no longer root, is handed the files' bytes by the supervisor; tests read them here.
    const fresh = material ?? (await readTls(config.portal.tls));
    served.setCertificate(fresh);
    log.info({ event: 'portal.tls_reloaded' }, 'portal certificate read again');
  };
  return { addresses, wkd, app, pages, reloadTls, close: served.close };
}
