/**
 * The connection cache: sessions per next hop, reused across messages the way Postfix's smtp
 * client reuses them (smtp_connection_cache_*). A session goes back to the cache only after a
 * clean transaction and an RSET the next hop acknowledged (so a dead connection is found before a
 * message is given to it); one that failed or got a 421 is closed. An idle session is closed with
 * QUIT after `cacheTime` (0: never cached). At most `maxPerDestination` sessions per next hop,
 * busy or idle; a delivery beyond that waits for one.
 */
import { SmtpClientError, type SmtpSession } from './smtp-client-session.js';

interface Idle {
  session: SmtpSession;
  timer: NodeJS.Timeout;
}

interface Destination {
  idle: Idle[];
  /** Sessions in a transaction, or in the RSET that precedes caching. */
  busy: Set<SmtpSession>;
  /** Connections being opened. */
  opening: number;
  waiters: (() => void)[];
}

export interface Lease {
  session: SmtpSession;
  /** The session carried an earlier message: it may have gone stale while it waited. */
  reused: boolean;
}

export class ConnectionCache {
  private readonly destinations = new Map<string, Destination>();
  private closed = false;

  constructor(
    private readonly maxPerDestination: number,
    private cacheTime: number,
  ) {}

  private destination(key: string): Destination {
    let d = this.destinations.get(key);
    if (!d) {
      d = { idle: [], busy: new Set(), opening: 0, waiters: [] };
      this.destinations.set(key, d);
    }
    return d;
  }

  /** A session to `key`: a cached one when there is one, else a new one from `open`. */
  async acquire(key: string, open: () => Promise<SmtpSession>): Promise<Lease> {
    const d = this.destination(key);
    for (;;) {
      if (this.closed) throw new SmtpClientError('connect', undefined, { errno: 'ECONNABORTED' });
      // The most recently used first: the others may then idle out.
      for (let i = d.idle.pop(); i; i = d.idle.pop()) {
        clearTimeout(i.timer);
        if (i.session.usable && i.session.clean) {
          d.busy.add(i.session);
          return { session: i.session, reused: true };
        }
        i.session.destroy();
      }
      if (d.busy.size + d.opening < this.maxPerDestination) break;
      await new Promise<void>((resolve) => d.waiters.push(resolve));
    }
    d.opening++;
    try {
      const session = await open();
      session.onClose(() => this.forget(key, session));
      d.busy.add(session);
      return { session, reused: false };
    } finally {
      d.opening--;
      // A failed open frees its slot for whoever waits.
      this.wake(key, d);
    }
  }

  /**
   * The transaction is over. A usable session is reset and cached; any other is closed. The
   * caller does not wait for the RSET.
   */
  release(key: string, session: SmtpSession): void {
    const d = this.destinations.get(key);
    if (!d) return session.destroy();
    if (!session.usable || this.closed || this.cacheTime <= 0) {
      d.busy.delete(session);
      if (session.usable) session.quit();
      else session.destroy();
      this.wake(key, d);
      return;
    }
    // RSET ends whatever state the transaction left and proves the connection alive (RFC 5321
    // §4.1.1.5); until its reply the session stays counted as busy.
    session.command('RSET', 'rset').then(
      (r) => {
        d.busy.delete(session);
        if (r.code === 250 && session.usable && !this.closed) this.park(key, d, session);
        else session.quit();
        this.wake(key, d);
      },
      () => {
        d.busy.delete(session);
        this.wake(key, d);
      },
    );
  }

  private park(key: string, d: Destination, session: SmtpSession): void {
    const timer = setTimeout(() => {
      d.idle = d.idle.filter((i) => i.session !== session);
      session.quit();
      this.prune(key, d);
    }, this.cacheTime);
    timer.unref();
    d.idle.push({ session, timer });
  }

  /** A session whose connection ended: out of the cache. */
  private forget(key: string, session: SmtpSession): void {
    const d = this.destinations.get(key);
    if (!d) return;
    const i = d.idle.findIndex((x) => x.session === session);
    if (i >= 0) {
      clearTimeout(d.idle[i]!.timer);
      d.idle.splice(i, 1);
    }
    this.prune(key, d);
  }

  private wake(key: string, d: Destination): void {
    const next = d.waiters.shift();
    if (next) next();
    else this.prune(key, d);
  }

  /** A destination with nothing in it is dropped: mx routes make one per exchanger address. */
  private prune(key: string, d: Destination): void {
    if (!d.idle.length && !d.busy.size && !d.opening && !d.waiters.length && this.destinations.get(key) === d) this.destinations.delete(key);
  }

  /** From now on; idle sessions are closed so the next message opens one under the new time. */
  setCacheTime(ms: number): void {
    if (ms === this.cacheTime) return;
    this.cacheTime = ms;
    this.closeIdle();
  }

  private closeIdle(): void {
    for (const [key, d] of this.destinations) {
      for (const i of d.idle.splice(0)) {
        clearTimeout(i.timer);
        i.session.quit();
      }
      this.prune(key, d);
    }
  }

  /** Close idle sessions (QUIT); with `force` cut those in a transaction too. No new leases. */
  close(force = false): void {
    this.closed = true;
    this.closeIdle();
    for (const d of this.destinations.values()) {
      for (const w of d.waiters.splice(0)) w();
      if (force) for (const s of d.busy) s.destroy();
    }
  }
}
