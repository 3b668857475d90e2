/**
 * The portal's routes for programs rather than people: /health, the Web Key Directory of our
 * users (advanced and direct layouts, with the policy files) and the internal CA's CRL. Answers
 * are plain bytes with the content types clients expect; anything unknown under /.well-known is
 * a plain 404, as before the portal had pages.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { splitAddress } from '../directory/index.js';
import type { Logger } from '../log/index.js';
import { policyFor, type WkdIndex } from './wkd.js';

export const WKD_PREFIX = '/.well-known/openpgpkey/';

export interface MachineRoutesContext {
  wkd: WkdIndex;
  /** portal.wkd */
  wkdEnabled: boolean;
  log: Logger;
  /** The path of ca.crl_url, when the portal publishes the internal CA's CRL. */
  crlPath: string | null;
  crl: (() => Promise<Buffer | null>) | null;
}

function plain(reply: FastifyReply, status: number, type: string, body: string | Buffer): FastifyReply {
  // The draft asks for it: web mail clients fetch WKD from the browser.
  return reply.code(status).header('access-control-allow-origin', '*').type(type).send(body);
}

export const notFoundText = (reply: FastifyReply) => plain(reply, 404, 'text/plain; charset=utf-8', 'not found\n');

export function registerMachineRoutes(app: FastifyInstance, ctx: MachineRoutesContext): void {
  app.get('/health', async (_req, reply) => plain(reply, 200, 'application/json', '{"status":"ok"}\n'));

  // RFC 5280 4.2.1.13 / RFC 2585: a DER CRL at the distribution point the certificates name.
  if (ctx.crlPath && ctx.crl) {
    const crl = ctx.crl;
    app.get(ctx.crlPath, async (_req, reply) => {
      const der = await crl();
      return der ? plain(reply, 200, 'application/pkix-crl', der) : notFoundText(reply);
    });
  }
  if (!ctx.wkdEnabled) return;

  // Direct layout: hu/<hash> or policy, for the domain named by Host.
  app.get(`${WKD_PREFIX}hu/:hash`, async (req: FastifyRequest<{ Params: { hash: string } }>, reply) =>
    serveKey(reply, ctx, req.params.hash, ctx.wkd.directDomains(req.headers.host)),
  );
  app.get(`${WKD_PREFIX}policy`, async (req, reply) => {
    const [domain] = ctx.wkd.directDomains(req.headers.host);
    return domain ? plain(reply, 200, 'text/plain; charset=utf-8', policyFor(domain)) : notFoundText(reply);
  });
  // Advanced layout: <domain>/hu/<hash> or <domain>/policy, for internal domains only.
  const domainOf = (raw: string) => {
    const d = splitAddress(`x@${raw}`)?.domain ?? null;
    return d && ctx.wkd.isInternal(d) ? d : null;
  };
  app.get(`${WKD_PREFIX}:domain/hu/:hash`, async (req: FastifyRequest<{ Params: { domain: string; hash: string } }>, reply) => {
    const domain = domainOf(req.params.domain);
    return domain ? serveKey(reply, ctx, req.params.hash, [domain]) : notFoundText(reply);
  });
  app.get(`${WKD_PREFIX}:domain/policy`, async (req: FastifyRequest<{ Params: { domain: string } }>, reply) => {
    const domain = domainOf(req.params.domain);
    return domain ? plain(reply, 200, 'text/plain; charset=utf-8', policyFor(domain)) : notFoundText(reply);
  });
}

async function serveKey(reply: FastifyReply, ctx: MachineRoutesContext, hash: string, domains: string[]): Promise<FastifyReply> {
  const found = await ctx.wkd.keysFor(hash, domains);
  if (!found) {
    ctx.log.debug({ event: 'portal.wkd.not_found', hash, domains }, 'no key for WKD hash');
    return notFoundText(reply);
  }
  ctx.log.info({ event: 'portal.wkd.served', hash, addresses: found.addresses, fingerprints: found.fingerprints }, 'WKD key served');
  reply.header('cache-control', 'public, max-age=300');
  return plain(reply, 200, 'application/octet-stream', found.body);
}
