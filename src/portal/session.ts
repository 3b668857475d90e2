/**
 * Sessions and CSRF tokens of the portal's pages.
 *
 * A session lives in this process's memory only: what it holds (a webmail account's unwrapped
 * key, a reply page's checked password) must never reach the disk, and a restart of the portal
 * simply asks everyone to sign in again. The cookie carries 256 random bits and nothing else;
 * it is HttpOnly, SameSite=Strict, and Secure with the __Host- prefix whenever the portal speaks
 * TLS. A session ends after `idle` without a request and after `max` in any case; signing out
 * removes it here, so a cookie replayed afterwards finds nothing.
 *
 * CSRF: every form carries a token that is an HMAC (under a key made at start) of a random nonce
 * kept in a cookie of its own and of the session the form belongs to — the double-submit
 * pattern, bound to the session, so a form works only in the browser that was given it and only
 * in the session it was made for (a form from before a sign-out is refused after it). Requests
 * that a browser marks cross-site (Sec-Fetch-Site) are refused before any of that.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface Session<T> {
  readonly id: string;
  data: T;
  readonly created: number;
  lastSeen: number;
}

export interface SessionOptions {
  /** ms without a request */
  idle: number;
  /** ms since sign-in */
  max: number;
  /** The portal speaks TLS: Secure cookies with the __Host- prefix. */
  secure: boolean;
  /** At most this many live sessions; the oldest idle one goes first beyond it (a flood must not eat the memory). */
  limit?: number;
  /**
   * The cookies' name (the CSRF nonce's gets "-csrf"): the admin console's differ from the
   * portal's, since browsers keep cookies per host, not per port.
   */
  cookieName?: string;
  now?: () => number;
}

const ID_FORMAT = /^[A-Za-z0-9_-]{43}$/;

export class Sessions<T> {
  private readonly live = new Map<string, Session<T>>();
  readonly cookie: string;
  readonly csrfCookie: string;
  private readonly csrfKey = randomBytes(32);
  private readonly now: () => number;
  private readonly limit: number;

  constructor(private readonly opts: SessionOptions) {
    const session = opts.cookieName ?? 'postern-session';
    const csrf = opts.cookieName ? `${opts.cookieName}-csrf` : 'postern-csrf';
    this.cookie = opts.secure ? `__Host-${session}` : session;
    this.csrfCookie = opts.secure ? `__Host-${csrf}` : csrf;
    this.now = opts.now ?? Date.now;
    this.limit = opts.limit ?? 10_000;
  }

  private cookieOptions(maxAge?: number) {
    return { path: '/', httpOnly: true, sameSite: 'strict' as const, secure: this.opts.secure, ...(maxAge !== undefined ? { maxAge } : {}) };
  }

  /** Start a session (a sign-in): a new id always, so an id known before the sign-in is worth nothing after it. */
  start(req: FastifyRequest, reply: FastifyReply, data: T): Session<T> {
    const old = this.idOf(req);
    if (old) this.live.delete(old);
    this.evict();
    const t = this.now();
    const s: Session<T> = { id: randomBytes(32).toString('base64url'), data, created: t, lastSeen: t };
    this.live.set(s.id, s);
    reply.setCookie(this.cookie, s.id, this.cookieOptions(Math.ceil(this.opts.max / 1000)));
    (req as RequestWithSession).postern_session = s;
    return s;
  }

  /** The request's live session, or null (none, unknown, idle too long, too old). */
  get(req: FastifyRequest): Session<T> | null {
    const cached = (req as RequestWithSession).postern_session;
    if (cached !== undefined) return cached as Session<T> | null;
    const id = this.idOf(req);
    const s = id ? (this.live.get(id) ?? null) : null;
    const t = this.now();
    let found: Session<T> | null = null;
    if (s) {
      if (t - s.lastSeen > this.opts.idle || t - s.created > this.opts.max) this.live.delete(s.id);
      else {
        s.lastSeen = t;
        found = s;
      }
    }
    (req as RequestWithSession).postern_session = found;
    return found;
  }

  /** Sign out: the session is gone here and the cookie cleared. */
  end(req: FastifyRequest, reply: FastifyReply): void {
    const id = this.idOf(req);
    if (id) this.live.delete(id);
    (req as RequestWithSession).postern_session = null;
    reply.clearCookie(this.cookie, this.cookieOptions());
  }

  /** End every session whose data matches (an account reset or deleted, a password changed elsewhere). */
  endWhere(match: (data: T) => boolean): number {
    let n = 0;
    for (const [id, s] of this.live) {
      if (match(s.data)) {
        this.live.delete(id);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.live.size;
  }

  private idOf(req: FastifyRequest): string | null {
    const v = req.cookies?.[this.cookie];
    return v && ID_FORMAT.test(v) ? v : null;
  }

  private evict(): void {
    const t = this.now();
    for (const [id, s] of this.live) {
      if (t - s.lastSeen > this.opts.idle || t - s.created > this.opts.max) this.live.delete(id);
    }
    while (this.live.size >= this.limit) {
      let oldest: Session<T> | null = null;
      for (const s of this.live.values()) if (!oldest || s.lastSeen < oldest.lastSeen) oldest = s;
      if (!oldest) break;
      this.live.delete(oldest.id);
    }
  }

  // ---- CSRF ----------------------------------------------------------------------------------

  /** The token for a form on the page being made (sets the nonce cookie when the browser has none). */
  csrfToken(req: FastifyRequest, reply: FastifyReply): string {
    let nonce = this.nonceOf(req);
    if (!nonce) {
      nonce = randomBytes(32).toString('base64url');
      reply.setCookie(this.csrfCookie, nonce, this.cookieOptions());
      // The same request may make two forms: both get the same nonce.
      (req.cookies as Record<string, string>)[this.csrfCookie] = nonce;
    }
    return this.mac(nonce, this.get(req)?.id ?? '');
  }

  /** Whether a form's `_csrf` field came from this browser and this session. */
  csrfValid(req: FastifyRequest, token: unknown): boolean {
    const nonce = this.nonceOf(req);
    if (!nonce || typeof token !== 'string' || token.length > 100) return false;
    const want = Buffer.from(this.mac(nonce, this.get(req)?.id ?? ''));
    const got = Buffer.from(token);
    return got.length === want.length && timingSafeEqual(got, want);
  }

  private nonceOf(req: FastifyRequest): string | null {
    const v = req.cookies?.[this.csrfCookie];
    return v && ID_FORMAT.test(v) ? v : null;
  }

  private mac(nonce: string, sessionId: string): string {
    return createHmac('sha256', this.csrfKey).update(`${nonce}\n${sessionId}`).digest('base64url');
  }
}

interface RequestWithSession {
  postern_session?: Session<unknown> | null;
}
