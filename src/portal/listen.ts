/**
 * A Fastify application served on several addresses at once, over node:https when a certificate is
 * given (else plain node:http): the portal's and the admin console's listeners. Slow clients are
 * bounded by the time-outs below; a renewed certificate is taken for new connections without a
 * restart (setSecureContext).
 */
import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createHttps, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { ListenAddress } from '../config/index.js';

export interface Listening {
  /** Where it listens (with the real port when 0 was configured). */
  addresses: ListenAddress[];
  /** New connections use this certificate and key. */
  setCertificate(material: { cert: Buffer; key: Buffer }): void;
  /** Stop listening, end open connections, close the app. */
  close(): Promise<void>;
}

/** Listen on every address; rejects (with every server closed again) if one cannot be bound. */
export async function serveApp(app: FastifyInstance, listen: readonly ListenAddress[], tls: { cert: Buffer; key: Buffer } | undefined): Promise<Listening> {
  const handler = (req: Parameters<FastifyInstance['routing']>[0], res: Parameters<FastifyInstance['routing']>[1]) => app.routing(req, res);
  const servers: Server[] = [];
  const addresses: ListenAddress[] = [];
  const closeOne = (s: Server) =>
    new Promise<void>((r) => {
      s.close(() => r());
      // Keep-alive sockets of browsers would otherwise hold close() for keepAliveTimeout.
      s.closeAllConnections();
    });
  const close = async () => {
    await Promise.all(servers.map(closeOne));
    await app.close();
  };
  try {
    for (const l of listen) {
      const server: Server = tls ? createHttps({ ...tls }, handler) : createHttp(handler);
      // A slow client holds a socket for at most this long: headers in 10 s, a whole request
      // (an upload included) in 5 minutes.
      server.headersTimeout = 10_000;
      server.requestTimeout = 300_000;
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
    await close();
    throw err;
  }
  return {
    addresses,
    setCertificate: (material) => {
      for (const s of servers) (s as unknown as HttpsServer).setSecureContext(material);
    },
    close,
  };
}
