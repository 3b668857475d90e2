/**
 * A key-directory peer for tests: node:http on 127.0.0.1 port 0 with a handler per test, counting
 * requests (to prove a look-up was or was not made), and a close that also ends hanging requests.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HttpPeer {
  origin: string;
  port: number;
  /** Every request's path with query, in order. */
  requests: string[];
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}

export async function startHttpPeer(handle: HttpPeer['handle'] = (_q, r) => r.writeHead(404).end()): Promise<HttpPeer> {
  const peer = { requests: [] as string[], handle } as HttpPeer;
  const server = createServer((req, res) => {
    peer.requests.push(req.url ?? '');
    peer.handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  peer.port = port;
  peer.origin = `http://127.0.0.1:${port}`;
  peer.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return peer;
}

/** A handler that never answers (the connection stays open until the client gives up). */
export const hang = (): void => undefined;
