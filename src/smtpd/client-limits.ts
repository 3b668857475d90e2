/**
 * Connection limits per listener, in the spirit of Postfix's anvil: how many sessions one client
 * may hold (smtp.max_connections_per_client) and how many all clients may hold
 * (smtp.max_connections).
 *
 * Trusted clients (trusted_networks: our own mail server) and everyone else are counted in two
 * separate pools of max_connections each. Outsiders, however many and however slow, can then
 * never take a slot the internal server needs; and a busy internal server cannot starve the
 * Internet side either. Trusted clients have no per-client limit: the internal server is one
 * address that rightly opens many connections.
 *
 * Clients are counted per IPv4 address and per IPv6 /64: one host (or one customer of a provider)
 * usually gets a whole /64 and can pick a fresh address in it for every connection.
 */
import type { Server, Socket } from 'node:net';
import ipaddr from 'ipaddr.js';

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerClient: number;
}

export type Admission =
  | { ok: true; client: string; release: () => void }
  | {
      ok: false;
      /** connections: the pool is full; client_connections: this client has its share. */
      reason: 'connections' | 'client_connections';
      /** The counted client: the IPv4 address, or the IPv6 /64 ("2001:db8:1:2::/64"). */
      client: string;
    };

/** The key a client is counted under. IPv4-mapped IPv6 counts as the IPv4 address. */
export function clientKey(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  const addr = ipaddr.process(ip);
  if (addr.kind() === 'ipv4') return addr.toString();
  const parts = (addr as ipaddr.IPv6).parts;
  return `${new ipaddr.IPv6([...parts.slice(0, 4), 0, 0, 0, 0]).toString()}/64`;
}

/** The sessions admitted on one listener. Limits come with each call, so a reload applies to new sessions. */
export class ConnectionCounter {
  private trusted = 0;
  private untrusted = 0;
  private readonly perClient = new Map<string, number>();

  admit(ip: string, trusted: boolean, limits: ConnectionLimits): Admission {
    const client = clientKey(ip);
    if (trusted) {
      if (this.trusted >= limits.maxConnections) return { ok: false, reason: 'connections', client };
      this.trusted++;
      return { ok: true, client, release: once(() => this.trusted--) };
    }
    const held = this.perClient.get(client) ?? 0;
    // The client's own limit first: its reply names the client, which tells an admin (and a
    // misconfigured sender) what happened.
    if (held >= limits.maxConnectionsPerClient) return { ok: false, reason: 'client_connections', client };
    if (this.untrusted >= limits.maxConnections) return { ok: false, reason: 'connections', client };
    this.untrusted++;
    this.perClient.set(client, held + 1);
    return {
      ok: true,
      client,
      release: once(() => {
        this.untrusted--;
        const n = (this.perClient.get(client) ?? 1) - 1;
        // Drop the key at zero: a scan of many addresses must not grow the map for ever.
        if (n > 0) this.perClient.set(client, n);
        else this.perClient.delete(client);
      }),
    };
  }

  /** Sessions held now: per pool, and by the given client (for logs and tests). */
  held(ip?: string): { trusted: number; untrusted: number; client: number; clients: number } {
    return { trusted: this.trusted, untrusted: this.untrusted, client: ip === undefined ? 0 : (this.perClient.get(clientKey(ip)) ?? 0), clients: this.perClient.size };
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

/**
 * A hard cap on open sockets before any SMTP session is created, again per pool: a flood of
 * connections beyond what onConnect can answer with a polite 421 is closed at once, and since
 * the pools are separate, a flood from outside never closes the internal server's connections.
 * (net.Server's own maxConnections counts every socket alike, so it cannot do this.)
 *
 * Wraps the listener's 'connection' handlers (the session's among them), so it must be called
 * once, after they are added and before the server listens.
 */
export function gateAccepts(server: Server, isTrusted: (ip: string) => boolean, cap: () => number): void {
  const handlers = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const open = { trusted: 0, untrusted: 0 };
  server.on('connection', (socket: Socket) => {
    const pool = socket.remoteAddress && isTrusted(socket.remoteAddress) ? 'trusted' : 'untrusted';
    if (open[pool] >= cap()) {
      socket.destroy();
      return;
    }
    open[pool]++;
    socket.once('close', () => open[pool]--);
    for (const h of handlers) h.call(server, socket);
  });
}

interface Slot {
  release: () => void;
  timer?: NodeJS.Timeout;
  expired: boolean;
}

/**
 * The sessions of one smtpd: a ConnectionCounter per listener, and each admitted session's slot
 * and, for outside clients, its session clock (smtp.session_timeout: idle_timeout is per read,
 * so a client that trickles a byte now and then could otherwise hold its slot for ever; our own
 * mail server may rightly keep a connection for thousands of messages).
 */
export class SessionSlots {
  private readonly counters = new WeakMap<object, ConnectionCounter>();
  private readonly slots = new WeakMap<object, Slot>();

  admit(
    listener: object,
    session: object,
    ip: string,
    trusted: boolean,
    settings: ConnectionLimits & { sessionTimeout: number },
    onExpire: () => void,
  ): Admission {
    let counter = this.counters.get(listener);
    if (!counter) this.counters.set(listener, (counter = new ConnectionCounter()));
    const admission = counter.admit(ip, trusted, settings);
    if (!admission.ok) return admission;
    const slot: Slot = { release: admission.release, expired: false };
    this.slots.set(session, slot);
    if (!trusted) {
      slot.timer = setTimeout(() => {
        slot.expired = true;
        onExpire();
      }, settings.sessionTimeout);
      slot.timer.unref();
    }
    return admission;
  }

  /** The session ran out of session_timeout (it is hung up on after its message, if in DATA). */
  expired(session: object): boolean {
    return this.slots.get(session)?.expired ?? false;
  }

  /** The session ended (hung up, or its socket is gone); idempotent. */
  closed(session: object): void {
    const slot = this.slots.get(session);
    if (!slot) return;
    clearTimeout(slot.timer);
    slot.release();
  }
}
