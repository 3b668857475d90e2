/**
 * One LDAP server as the directory uses it: a single connection (ldapts multiplexes concurrent
 * operations on it by message id), bound once and reused, replaced after any failure; every use
 * bounded by the server's timeout; and a short back-off after a failure so a dead server costs
 * one time-out per retry_after, not one per message.
 *
 * Untrusted input: everything the server sends (ldapts parses the BER; values are handed on as
 * strings or Buffers, certificates are parsed by pki/ later). Filters arrive already built by
 * ldap-filter.ts.
 * Secrets: the bind password, read from the environment or a file at each (re)connect, passed
 * only to ldapts' bind, and never put into an error or a log line (ldapts redacts it in its own
 * debug output too).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Client, ResultCodeError, type ClientOptions, type Entry } from 'ldapts';
import type { LdapServerConfig } from '../config/types.js';
import { LdapUnavailableError } from './ldap-errors.js';

/** A search entry with attribute types lower-cased (options such as ";binary" kept). */
export interface LdapEntry {
  dn: string;
  attributes: Map<string, (string | Buffer)[]>;
}

export interface LdapSearchRequest {
  base: string;
  scope: 'base' | 'one' | 'sub';
  filter: string;
  attributes: string[];
  /** Attributes whose values must stay bytes (certificates). */
  binary?: string[];
  sizeLimit?: number;
}

export type LdapSearch = (req: LdapSearchRequest) => Promise<LdapEntry[]>;

interface Session {
  client: Client;
  /** Connected, TLS'd and bound. */
  ready: Promise<void>;
  state: 'pending' | 'ready' | 'failed';
  /** Why the connection was cut for sending too much (ldapts reports only a generic socket error). */
  overflow?: string;
}

/** Why an operation failed, in one line without CR/LF (ldapts' socket errors span lines). */
function reason(err: unknown): string {
  if (err instanceof LdapUnavailableError) return err.reason;
  if (err instanceof ResultCodeError) return `${err.message.split('\n')[0]} (result code ${err.code})`;
  const e = err as NodeJS.ErrnoException;
  const text = (e?.code && !String(e.message).includes(e.code) ? `${e.code}: ` : '') + String(e?.message ?? err);
  return text.split(/\r?\n/)[0]!.slice(0, 200);
}

class Deadline extends Error {}

export class LdapServerClient {
  private session: Session | null = null;
  private downUntil = 0;
  private downReason = '';
  private closed = false;

  constructor(
    readonly config: LdapServerConfig,
    private readonly retryAfter: number,
    private readonly now: () => number = Date.now,
    /**
     * maxBytes: the connection is cut once the server has sent this much (ldapts buffers a whole
     * message however large). For one-off reads from servers a certificate names (CRLs).
     */
    private readonly limits: { maxBytes?: number } = {},
  ) {}

  get url(): string {
    return this.config.url;
  }

  /**
   * Run `work` with a bound connection, all of it within the server's timeout. Any failure is an
   * LdapUnavailableError naming the server; a connection-level one replaces the connection and
   * backs off for retry_after. A reused connection that turns out dead (the server closed it
   * while idle) is retried once on a fresh one, within the same time budget.
   */
  async run<T>(work: (search: LdapSearch) => Promise<T>): Promise<T> {
    if (this.closed) throw new LdapUnavailableError(this.url, 'the directory is closed');
    if (this.now() < this.downUntil) throw new LdapUnavailableError(this.url, `not asked again yet after a failure (${this.downReason})`, { skipped: true });
    const started = this.now();
    for (let attempt = 0; ; attempt++) {
      const existing = this.session;
      const session = this.currentSession();
      const reused = session === existing;
      const left = this.config.timeout - (this.now() - started);
      try {
        return await withDeadline(
          (async () => {
            await session.ready;
            return work((req) => this.search(session, req));
          })(),
          Math.max(left, 1),
        );
      } catch (err) {
        const timedOut = err instanceof Deadline;
        const protocolLevel = err instanceof ResultCodeError && session.state === 'ready';
        if (!protocolLevel) this.drop(session);
        if (!timedOut && !protocolLevel && reused && attempt === 0 && this.config.timeout - (this.now() - started) > 0) continue;
        const why = timedOut ? `no answer within ${this.config.timeout} ms` : (session.overflow ?? reason(err));
        // A result code on a search (bad base DN, size limit) is the answer, not an outage; a
        // failed connect, StartTLS or bind is, and is not retried at once (a wrong password
        // repeated per mail would lock the service account in most directories).
        if (!protocolLevel) {
          this.downUntil = this.now() + this.retryAfter;
          this.downReason = why;
        }
        throw new LdapUnavailableError(this.url, why, { cause: err });
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.session) this.drop(this.session);
  }

  private currentSession(): Session {
    // A connection the server closed while idle would be reconnected by ldapts unbound: replace it.
    if (this.session && this.session.state !== 'pending' && !this.session.client.isConnected) this.drop(this.session);
    return (this.session ??= this.connect());
  }

  private connect(): Session {
    const c = this.config;
    const ldaps = c.url.startsWith('ldaps:');
    const tls = ldaps || c.starttls ? this.tlsOptions() : undefined;
    // Filled in below; the byte cap reports into it.
    const session = { ready: Promise.resolve(), state: 'pending' } as Session;
    const client = new Client({
      url: c.url,
      // ldapts' own timers are a second line behind the deadline in run().
      timeout: c.timeout,
      connectTimeout: c.timeout,
      strictDN: false,
      ...(ldaps && !(tls instanceof Error) ? { tlsOptions: tls } : {}),
      ...(this.limits.maxBytes !== undefined ? capped(this.limits.maxBytes, session) : {}),
    });
    session.client = client;
    session.ready = (async () => {
      if (tls instanceof Error) throw tls;
      if (c.starttls) await client.startTLS(tls ?? {});
      // Anonymous is a bind with an empty DN (RFC 4513 §5.1.1); doing it connects up front, so
      // "ready" always means a live connection.
      if (!c.bind_dn) await client.bind('', '');
      else {
        const password = await this.password();
        try {
          await client.bind(c.bind_dn, password);
        } catch (err) {
          // Say who was refused and why; the password itself never enters the message.
          throw new LdapUnavailableError(c.url, `bind as ${c.bind_dn} refused: ${reason(err)}`, { cause: err });
        }
      }
    })();
    session.ready.then(
      () => (session.state = 'ready'),
      () => (session.state = 'failed'),
    );
    return session;
  }

  private async search(session: Session, req: LdapSearchRequest): Promise<LdapEntry[]> {
    const binary = [...new Set((req.binary ?? []).flatMap((a) => [a, a.toLowerCase(), `${a.split(';')[0]};binary`]))];
    const { searchEntries } = await session.client.search(req.base, {
      scope: req.scope,
      filter: req.filter,
      attributes: req.attributes,
      explicitBufferAttributes: binary,
      sizeLimit: req.sizeLimit ?? 0,
      timeLimit: Math.max(1, Math.ceil(this.config.timeout / 1000)),
    });
    return searchEntries.map(toEntry);
  }

  private drop(session: Session): void {
    if (this.session === session) this.session = null;
    // Not awaited: on a hung server the unbind itself would wait; ldapts destroys the socket after writing it.
    session.client.unbind().catch(() => undefined);
  }

  private async password(): Promise<string> {
    const c = this.config;
    if (c.password_env) {
      const v = process.env[c.password_env];
      if (!v) throw new LdapUnavailableError(c.url, `the bind password variable ${c.password_env} is not set`);
      return v;
    }
    if (c.password_file) {
      try {
        // One trailing newline is what editors and `echo` add; it is not part of the password.
        return (await readFile(c.password_file, 'utf8')).replace(/\r?\n$/, '');
      } catch (err) {
        throw new LdapUnavailableError(c.url, `cannot read the bind password file ${c.password_file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    return '';
  }

  /** TLS options, or the error of an unreadable CA file (reported when the connection is used). */
  private tlsOptions(): ConnectionOptions | LdapUnavailableError {
    const c = this.config;
    const host = new URL(c.url).hostname.replace(/^\[|\]$/g, '');
    let ca: Buffer | undefined;
    if (c.tls.ca_file) {
      try {
        // Synchronous: a small file, read once per connection, and the client needs it up front.
        ca = readFileSync(c.tls.ca_file);
      } catch (err) {
        return new LdapUnavailableError(c.url, `cannot read the CA file ${c.tls.ca_file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    // SNI carries host names only (RFC 6066 §3); the certificate is still checked against an IP.
    // `host` also names what the certificate must match after StartTLS (ldapts passes only the socket).
    return { host, ...(isIP(host) ? {} : { servername: host }), rejectUnauthorized: c.tls.reject_unauthorized, ...(ca ? { ca } : {}) };
  }
}

function toEntry(e: Entry): LdapEntry {
  const attributes = new Map<string, (string | Buffer)[]>();
  for (const [k, v] of Object.entries(e)) {
    if (k === 'dn') continue;
    const values = (Array.isArray(v) ? v : [v]) as (string | Buffer)[];
    const key = k.toLowerCase();
    attributes.set(key, [...(attributes.get(key) ?? []), ...values]);
  }
  return { dn: e.dn, attributes };
}

/** ldapts' default transports (net.connect, tls.connect), cut once the server has sent more than `max` bytes. */
function capped(max: number, session: Session): Pick<ClientOptions, 'createConnection' | 'createSecureConnection'> {
  const cap = <S extends Socket>(socket: S): S => {
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > max && !session.overflow) {
        session.overflow = `the server sent more than the limit of ${max} bytes`;
        socket.destroy(new Error(session.overflow));
      }
    });
    return socket;
  };
  return {
    createConnection: ((...args: Parameters<typeof netConnect>) => cap(netConnect(...args))) as typeof netConnect,
    createSecureConnection: ((...args: Parameters<typeof tlsConnect>) => cap(tlsConnect(...args))) as typeof tlsConnect,
  };
}

/** `p`, or a Deadline error after `ms`; the loser's late rejection is swallowed. */
function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Deadline()), ms);
  });
  p.catch(() => undefined);
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
