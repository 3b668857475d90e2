/**
 * The portal's HTTP(S) server: node:http (or node:https when portal.tls is configured) on each
 * portal.listen address, with the routes
 *   GET /health                                        200 {"status":"ok"}
 *   GET /.well-known/openpgpkey/<domain>/hu/<hash>     WKD advanced layout (internal domains)
 *   GET /.well-known/openpgpkey/<domain>/policy
 *   GET /.well-known/openpgpkey/hu/<hash>              WKD direct layout (domain from Host)
 *   GET /.well-known/openpgpkey/policy
 *   GET <path of ca.crl_url>                           the internal CA's CRL (DER), when configured
 * and 404 for everything else; only GET and HEAD.
 *
 * Untrusted input: every request from the network (path, query, headers), bounded by Node's
 * header limits and the time-outs below; nothing of it reaches the keystore but a validated hash.
 * Secrets: the TLS private key (read once at start); keys served are public only. The portal
 * holds no KEK (openPublicKeyStore): the CRL it serves is a file signed elsewhere.
 */
import { readFile, stat } from 'node:fs/promises';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Config, ListenAddress } from '../config/index.js';
import type { Logger } from '../log/index.js';
import { splitAddress } from '../directory/index.js';
import { policyFor, WkdIndex, type PortalStore } from './wkd.js';

export interface PortalOptions {
  config: Pick<Config, 'internal_domains' | 'portal'> & { ca?: { crl_url?: string } };
  store: PortalStore;
  log: Logger;
  /** The file holding the internal CA's current CRL (DER), written by publishInternalCrl. */
  crlFile?: string;
  /** Tests: the index clock. */
  now?: () => number;
}

export interface Portal {
  /** Where it listens (with the real port when 0 was configured). */
  addresses: ListenAddress[];
  /** The WKD index (rebuild() after importing keys, for tests and admin actions). */
  wkd: WkdIndex;
  close(): Promise<void>;
}

export class PortalError extends Error {
  override readonly name = 'PortalError';
}

const WKD_PREFIX = '/.well-known/openpgpkey/';


/** Start listening on every portal.listen address; rejects (PortalError) if one cannot be bound. */
export async function startPortal(opts: PortalOptions): Promise<Portal> {
  const { config, log } = opts;
  const listen = config.portal.listen;
  if (!listen.length) throw new PortalError('portal.listen is empty: nothing to listen on');
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (config.portal.tls) {
    try {
      tls = { cert: await readFile(config.portal.tls.cert), key: await readFile(config.portal.tls.key) };
    } catch (err) {
      throw new PortalError(`portal.tls: ${(err as Error).message}`);
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
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res, { wkd, enabled: config.portal.wkd, log, crlPath, crl }).catch((err) => {
      log.error({ event: 'portal.error', path: safePath(req.url), reason: (err as Error).message }, 'portal request failed');
      if (!res.headersSent) send(res, req, 503, 'text/plain; charset=utf-8', 'temporarily unavailable\n');
      else res.destroy();
    });
  };

  const servers: Server[] = [];
  const addresses: ListenAddress[] = [];
  const closeOne = (s: Server) =>
    new Promise<void>((r) => {
      s.close(() => r());
      // Keep-alive sockets of WKD clients would otherwise hold close() for keepAliveTimeout.
      s.closeAllConnections();
    });
  const closeAll = async () => {
    await Promise.all(servers.map(closeOne));
  };
  try {
    for (const l of listen) {
      const server: Server = tls ? createHttps({ ...tls }, handler) : createHttp(handler);
      // A slow client holds a socket for at most this long; WKD answers are small.
      server.headersTimeout = 10_000;
      server.requestTimeout = 15_000;
      server.keepAliveTimeout = 5_000;
      server.on('clientError', (_err, socket) => socket.destroy());
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(l.port, l.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.push(server);
      const a = server.address() as AddressInfo;
      addresses.push({ host: a.address, port: a.port });
    }
  } catch (err) {
    await closeAll();
    throw new PortalError(`cannot listen: ${(err as Error).message}`);
  }
  log.info({ event: 'portal.listening', addresses: addresses.map((a) => `${a.host}:${a.port}`), tls: Boolean(tls) }, 'portal listening');
  return { addresses, wkd, close: closeAll };
}

interface Ctx {
  wkd: WkdIndex;
  enabled: boolean;
  log: Logger;
  crlPath: string | null;
  crl: (() => Promise<Buffer | null>) | null;
}

async function handle(req: IncomingMessage, res: ServerResponse, ctx: Ctx): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return send(res, req, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
  }
  const raw = req.url ?? '/';
  if (raw.length > 2048) return send(res, req, 414, 'text/plain; charset=utf-8', 'URI too long\n');
  const path = raw.split('?')[0]!;
  if (path === '/health') return send(res, req, 200, 'application/json', '{"status":"ok"}\n');
  // RFC 5280 4.2.1.13 / RFC 2585: a DER CRL at the distribution point the certificates name.
  if (ctx.crlPath && ctx.crl && path === ctx.crlPath) {
    const der = await ctx.crl();
    return der ? send(res, req, 200, 'application/pkix-crl', der) : notFound(res, req);
  }
  if (!ctx.enabled || !path.startsWith(WKD_PREFIX)) return notFound(res, req);

  const rest = path.slice(WKD_PREFIX.length).split('/');
  // Direct layout: hu/<hash> or policy, for the domain named by Host.
  if (rest.length === 2 && rest[0] === 'hu') return serveKey(res, req, ctx, rest[1]!, ctx.wkd.directDomains(req.headers.host));
  if (rest.length === 1 && rest[0] === 'policy') {
    const [domain] = ctx.wkd.directDomains(req.headers.host);
    return domain ? send(res, req, 200, 'text/plain; charset=utf-8', policyFor(domain)) : notFound(res, req);
  }
  // Advanced layout: <domain>/hu/<hash> or <domain>/policy, for internal domains only.
  const domain = rest[0] ? (splitAddress(`x@${decodeSafe(rest[0])}`)?.domain ?? null) : null;
  if (!domain || !ctx.wkd.isInternal(domain)) return notFound(res, req);
  if (rest.length === 3 && rest[1] === 'hu') return serveKey(res, req, ctx, rest[2]!, [domain]);
  if (rest.length === 2 && rest[1] === 'policy') return send(res, req, 200, 'text/plain; charset=utf-8', policyFor(domain));
  return notFound(res, req);
}

async function serveKey(res: ServerResponse, req: IncomingMessage, ctx: Ctx, hash: string, domains: string[]): Promise<void> {
  const found = await ctx.wkd.keysFor(hash, domains);
  if (!found) {
    ctx.log.debug({ event: 'portal.wkd.not_found', hash, domains }, 'no key for WKD hash');
    return notFound(res, req);
  }
  ctx.log.info({ event: 'portal.wkd.served', hash, addresses: found.addresses, fingerprints: found.fingerprints }, 'WKD key served');
  res.setHeader('cache-control', 'public, max-age=300');
  return send(res, req, 200, 'application/octet-stream', found.body);
}

function notFound(res: ServerResponse, req: IncomingMessage): void {
  send(res, req, 404, 'text/plain; charset=utf-8', 'not found\n');
}

function send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string | Buffer): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('content-length', bytes.length);
  // The draft asks for it: web mail clients fetch WKD from the browser.
  res.setHeader('access-control-allow-origin', '*');
  res.setHeader('x-content-type-options', 'nosniff');
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return '';
  }
}

/** The request path for a log line: bounded, without the query (it holds the local part). */
function safePath(url: string | undefined): string {
  return (url ?? '').split('?')[0]!.slice(0, 200);
}
