/**
 * The portal's key server for partners: HKP look-ups (hkp.ts) and S/MIME certificates per address
 * (certificates.ts), for our users' public keys only, as routes on the portal's Fastify instance:
 *   GET|HEAD /pks/lookup      HKP; other methods 405
 *   *        /pks/add         403: keys are published by the admin through the keystore, never uploaded
 *   GET|HEAD /certs/<name>    certificates; other methods 405
 * Keys and certificates come from the files the supervisor publishes (PublicKeyFile,
 * PublicCertificateFile); nothing else of the store is reachable from here.
 *
 * Untrusted input: the path and query of each request. Secrets: none.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log/index.js';
import type { CertificateSource } from './cert-file.js';
import { certificateRequest } from './certificates.js';
import { hkpLookup } from './hkp.js';
import { KeyIndex } from './key-index.js';
import type { PortalStore } from './wkd.js';

export interface KeyServerContext {
  /** Our users' OpenPGP keys: the published file in the portal role (PublicKeyFile). */
  keys: PortalStore;
  /** Their S/MIME certificates: the published file in the portal role (PublicCertificateFile). */
  certificates: CertificateSource;
  /** Only addresses in these domains are answered for. */
  internalDomains: readonly string[];
  log: Logger;
  /** Tests: the clock that decides validity and expiry. */
  now?: () => number;
}

const OTHER_METHODS = ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

function plain(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/plain; charset=utf-8').send(`${body}\n`);
}

/** Public data, fetched by web clients too (as WKD: the draft asks for it); never sniffed. */
function publicHeaders(reply: FastifyReply): void {
  reply.header('access-control-allow-origin', '*');
  reply.header('x-content-type-options', 'nosniff');
  // The small HTML pages need nothing from anywhere: no script, style or image may load.
  reply.header('content-security-policy', "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
}

export function registerKeyServer(app: FastifyInstance, ctx: KeyServerContext): void {
  const now = ctx.now ?? Date.now;
  const domains = new Set(ctx.internalDomains.map((d) => d.toLowerCase()));
  const index = new KeyIndex(ctx.keys, ctx.internalDomains, now);

  const failed = (req: FastifyRequest, reply: FastifyReply, err: unknown) => {
    // A key that fails the packet check (StoredKeyNotPublicError) or a damaged published file is
    // the store's fault, not the client's: logged, 503, nothing of it sent.
    ctx.log.error({ event: 'portal.error', path: req.url.split('?')[0]!.slice(0, 200), reason: (err as Error).message }, 'portal request failed');
    return plain(reply, 503, 'temporarily unavailable');
  };

  app.get('/pks/lookup', async (req, reply) => {
    publicHeaders(reply);
    try {
      const answer = await hkpLookup(req.query as Record<string, unknown>, { index, domains, log: ctx.log, now });
      if (answer.status === 200) reply.header('cache-control', 'public, max-age=300');
      return reply.code(answer.status).type(answer.type).send(answer.body);
    } catch (err) {
      return failed(req, reply, err);
    }
  });

  app.get('/certs/*', async (req, reply) => {
    publicHeaders(reply);
    try {
      const answer = await certificateRequest((req.params as { '*': string })['*'], { certificates: ctx.certificates, domains, log: ctx.log, now });
      if (answer.filename) reply.header('content-disposition', `attachment; filename="${answer.filename}"`);
      if (answer.status === 200) reply.header('cache-control', 'public, max-age=300');
      return reply.code(answer.status).type(answer.type).send(answer.body);
    } catch (err) {
      return failed(req, reply, err);
    }
  });

  // Refused before any body is read (onRequest): an upload is never parsed, whatever its size or type.
  const refuse = (status: number, body: string) => (_req: FastifyRequest, reply: FastifyReply) => {
    if (status === 405) reply.header('allow', 'GET, HEAD');
    void plain(reply, status, body);
  };
  app.route({ method: ['GET', 'HEAD', ...OTHER_METHODS], url: '/pks/add', onRequest: refuse(403, 'this key server accepts no uploads'), handler: async () => undefined });
  for (const url of ['/pks/lookup', '/certs/*']) {
    app.route({ method: [...OTHER_METHODS], url, onRequest: refuse(405, 'method not allowed'), handler: async () => undefined });
  }
}
