/**
 * The worker hands the names it committed to outgoing/ straight to the relay, over a Unix socket
 * the relay listens on in data_dir (`relay.sock`, 0600: root's roles only — the worker and the
 * relay stay root, smtpd and the portal do not and cannot connect), instead of through the
 * supervisor (worker → supervisor → relay: two IPC messages and a wake-up of a third process per
 * batch). Postfix's cleanup likewise triggers qmgr through its public/qmgr fifo, not through master.
 *
 * An announcement is only a hint: the relay's scans of outgoing/ find any entry it missed. So the
 * worker falls back to the supervisor path whenever the socket is not there (relay restarting),
 * and nothing waits for an acknowledgement. One name per line; names are spool names (no newline).
 */
import { chmod, unlink } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';

export const HANDOFF_SOCKET = 'relay.sock';

export function handoffPath(dataDir: string): string {
  return join(dataDir, HANDOFF_SOCKET);
}

/** A name that cannot be a spool entry's is ignored rather than offered. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;
/** A peer that sends this much without a newline is not a worker. */
const MAX_PENDING = 64 * 1024;

/** The relay's side: offers every announced name; returns the close function. */
export async function listenForHandoff(dataDir: string, offer: (names: string[]) => void, onConnect?: () => void): Promise<() => Promise<void>> {
  const path = handoffPath(dataDir);
  // A socket file left by a relay that died: nobody listens on it any more.
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    onConnect?.();
    let pending = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop() ?? '';
      if (pending.length > MAX_PENDING) return socket.destroy();
      const names = lines.filter((l) => NAME.test(l));
      if (names.length) offer(names);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
  return async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

/** After a failed connection, the supervisor path is used this long before trying again. */
const RETRY_MS = 1000;

/**
 * The worker's side: `announce(names)` writes them to the relay's socket when connected, else
 * hands them to `fallback` (the supervisor message).
 */
export function handoffClient(dataDir: string, fallback: (names: string[]) => void): { announce(names: string[]): void; close(): void } {
  const path = handoffPath(dataDir);
  let socket: net.Socket | null = null;
  let connected = false;
  let retryAt = 0;
  let closed = false;

  function connect(): void {
    if (closed || socket || Date.now() < retryAt) return;
    const s = net.connect(path);
    socket = s;
    s.on('connect', () => (connected = true));
    s.on('error', () => undefined);
    s.on('close', () => {
      socket = null;
      connected = false;
      retryAt = Date.now() + RETRY_MS;
      // Tried again by itself, not only when the next message is announced: a worker that started
      // before the relay listened (a busy machine) must not stay on the supervisor path for good.
      // The timer is the retry: it must not be turned away by the retryAt check (a timer may fire
      // a millisecond before Date.now() reaches retryAt, and then no retry would ever come again).
      if (!closed)
        setTimeout(() => {
          retryAt = 0;
          connect();
        }, RETRY_MS).unref();
    });
    // The relay never writes; a half-closed socket is an ended one.
    s.on('end', () => s.destroy());
    s.resume();
  }

  // At once: the relay starts before the workers, so the first message can already go this way.
  connect();
  return {
    announce(names) {
      if (!names.length) return;
      if (socket && connected && socket.writable) {
        socket.write(names.join('\n') + '\n');
        return;
      }
      fallback(names);
      connect();
    },
    close() {
      closed = true;
      socket?.destroy();
    },
  };
}
