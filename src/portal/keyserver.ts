/**
 * The portal's key server for partners: HKP look-ups (hkp.ts) and S/MIME certificates per address
 * (certificates.ts), for our users' public keys only, as routes on the portal's application:
 *   GET|HEAD /pks/lookup      HKP
 *   *        /pks/add         403: keys are published by the admin through the keystore, never uploaded
 *   GET|HEAD /certs/<name>    certificates, and a page listing them
 * (other methods on /pks/ and /certs/ are refused by app.ts, as on every path for programs).
 * Keys and certificates come from the files the supervisor publishes (PublicKeyFile,
 * PublicCertificateFile); nothing else of the store is reachable from here.
 *
 * Untrusted input: the path and query of each request. Secrets: none.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log/index.js';
import type { PortalPages } from './app.js';
import type { CertificateSource } from './cert-file.js';
import { certificateRequest } from './certificates.js';
import { hkpLookup } from './hkp.js';
import { KeyIndex } from './key-index.js';
import { certificatesPage, keyIndexPage } from './keyserver-pages.js';
import type { PortalStore } from './wkd.js';

export interface KeyServerContext {
  /** Our users' OpenPGP keys: the published file in the portal role (PublicKeyFile). */
  keys: PortalStore;
  /** Their S/MIME certificates: the published file in the portal role (PublicCertificateFile). */
  certificates: CertificateSource;
  /** Only addresses in these domains are answered for. */
  internalDomains: readonly string[];
  log: Logger;
  /** The portal's layout and languages, for the two pages meant for people. */
  pages: Pick<PortalPages, 'page' | 'lang'>;
  /** Tests: the clock that decides validity and expiry. */
  now?: () => number;
}

/** The key server as one of startPortal's page modules: `pages: [keyServer({ keys, certificates, internalDomains, log })]`. */
export const keyServer =
  (ctx: Omit<KeyServerContext, 'pages'>) =>
  (app: FastifyInstance, pages: PortalPages): void =>
    registerKeyServer(app, { ...ctx, pages });

function plain(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/plain; charset=utf-8').send(`${body}\n`);
}

export function registerKeyServer(app: FastifyInstance, ctx: KeyServerContext): void {
  const now = ctx.now ?? Date.now;
  const domains = new Set(ctx.internalDomains.map((d) => d.toLowerCase()));
  const index = new KeyIndex(ctx.keys, ctx.internalDomains, ctx.log, now);

  const found = (reply: FastifyReply) =>
    // Public data, fetched by web clients too (as WKD: the draft asks for it), cacheable a while.
    reply.header('access-control-allow-origin', '*').header('cache-control', 'public, max-age=300');
  const failed = (req: FastifyRequest, reply: FastifyReply, err: unknown) => {
    // A key that fails the packet check (StoredKeyNotPublicError) or a damaged published file is
    // the store's fault, not the client's: logged, 503, nothing of it sent.
    ctx.log.error({ event: 'portal.error', path: req.url.split('?')[0]!.slice(0, 200), reason: (err as Error).message }, 'portal request failed');
    return plain(reply, 503, 'temporarily unavailable');
  };

  app.get('/pks/lookup', async (req, reply) => {
    try {
      const answer = await hkpLookup(req.query as Record<string, unknown>, { index, domains, log: ctx.log, now });
      if ('keys' in answer) return ctx.pages.page(found(reply), keyIndexPage(ctx.pages.lang(req), answer.keys, now()));
      if (answer.status === 200) found(reply);
      return reply.code(answer.status).type(answer.type).send(answer.body);
    } catch (err) {
      return failed(req, reply, err);
    }
  });

  app.get('/certs/*', async (req, reply) => {
    try {
      const answer = await certificateRequest((req.params as { '*': string })['*'], { certificates: ctx.certificates, domains, log: ctx.log, now });
      if ('certificates' in answer) return ctx.pages.page(found(reply), certificatesPage(ctx.pages.lang(req), answer.address, answer.certificates));
      if (answer.status === 200) found(reply);
      if (answer.filename) reply.header('content-disposition', `attachment; filename="${answer.filename}"`);
      return reply.code(answer.status).type(answer.type).send(answer.body);
    } catch (err) {
      return failed(req, reply, err);
    }
  });

  // Refused before any body is read (onRequest): an upload is never parsed, whatever its size or type.
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
    url: '/pks/add',
    onRequest: async (_req, reply) => plain(reply, 403, 'this key server accepts no uploads'),
    handler: async () => undefined,
  });
}
