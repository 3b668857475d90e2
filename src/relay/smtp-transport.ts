/**
 * SMTP delivery to a fixed next hop (smtp://host:port with STARTTLS, smtps://host:port with
 * implicit TLS) through nodemailer's pooled transport: one pool per destination, so connections
 * are reused across messages the way Postfix's connection cache does.
 *
 * nodemailer facts this relies on (verified by test/integration/relay.test.ts):
 * - `raw` is sent as is, dot-stuffed by nodemailer; it stays byte-exact only when the message
 *   uses CRLF throughout and ends with CRLF (bare CR/LF are normalised, a missing final CRLF is
 *   added) — smtpd and the worker guarantee both.
 * - envelope.from `false` is sent as `MAIL FROM:<>`.
 * - envelope recipients given as {address} objects skip its header address parser, which could
 *   otherwise re-read an unusual (quoted) local part; it still punycodes IDN domains.
 */
import nodemailer from 'nodemailer';
import type { Mail, NodemailerError, SMTPPoolOptions, SMTPPoolSentMessageInfo } from 'nodemailer';
import type { RouteTarget } from '../config/types.js';
import { namaddr } from './diagnostic.js';
import { outcomesFor, type OutboundMessage, type RecipientOutcome } from './outcome.js';
import { targetKey } from './routes.js';
import { announcedSizeExceeded, classifyError, describeFailure, forgetFailures, instrumentNodemailer, isHostFailure, replyOf } from './smtp-errors.js';

/**
 * A next hop by address. For MX routes `host` is one address of the exchanger and `servername`
 * its DNS name: TLS SNI and the name in replies, logs and DSNs (Remote-MTA).
 */
export type SmtpTarget = Extract<RouteTarget, { kind: 'smtp' | 'smtps' }> & { servername?: string };

type Pool = Mail<SMTPPoolSentMessageInfo, SMTPPoolOptions>;

export interface SmtpTransportOptions {
  /** Our EHLO name (config.hostname). */
  hostname: string;
  /** Connections per destination. */
  maxConnections?: number;
  /**
   * An idle cached connection is closed (with QUIT) after this long (ms): Postfix's
   * smtp_connection_cache_time_limit. Short, because every idle connection holds one of the next
   * hop's session slots (Postfix smtpd's process limit, a provider's per-client limit).
   */
  cacheTime?: number;
  /** Test hook: shorter timeouts. */
  timeouts?: { connection?: number; greeting?: number; socket?: number };
}

/**
 * A pool object unused this long is dropped: MX routes create one per exchanger address, without
 * end. Its connections are long gone by then (cacheTime); this only frees the object.
 */
const POOL_IDLE_MS = 30_000;
/** Postfix's smtp_connection_cache_time_limit default. */
export const DEFAULT_CACHE_TIME_MS = 2_000;

interface PoolSlot {
  pool: Pool;
  lastUsed: number;
  inUse: number;
}

export class SmtpTransport {
  private readonly pools = new Map<string, PoolSlot>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private opts: SmtpTransportOptions) {
    instrumentNodemailer();
    this.sweeper = setInterval(() => this.sweep(), POOL_IDLE_MS / 2);
    this.sweeper.unref();
  }

  private sweep(now = Date.now()): void {
    for (const [key, slot] of this.pools) {
      if (slot.inUse === 0 && now - slot.lastUsed > POOL_IDLE_MS) {
        slot.pool.close();
        this.pools.delete(key);
      }
    }
  }

  private slot(target: SmtpTarget): PoolSlot {
    const key = `${targetKey(target)}#${target.servername ?? ''}`;
    let slot = this.pools.get(key);
    if (!slot) {
      slot = { pool: this.createPool(target), lastUsed: Date.now(), inUse: 0 };
      this.pools.set(key, slot);
    }
    return slot;
  }

  private createPool(target: SmtpTarget): Pool {
    const t = this.opts.timeouts ?? {};
    const tlsMode = target.kind === 'smtps' ? 'implicit' : target.tls;
    const pool = nodemailer.createTransport({
      pool: true,
      host: target.host,
      port: target.port,
      secure: target.kind === 'smtps',
      name: this.opts.hostname,
      maxConnections: this.opts.maxConnections ?? 5,
      // Postfix reuses a connection for as long as it stays up (smtp_connection_reuse_count_limit
      // = 0); a new session every 100 messages cost a handshake (and with TLS, a key exchange).
      maxMessages: 10_000,
      // Requeueing happens only when not a byte of the message went out (a stale pooled
      // connection); anything else comes back to us, and our retry schedule decides.
      maxRequeues: 2,
      // 0 would mean "never" to nodemailer; to us it means "do not keep the connection".
      idleTimeout: Math.max(1, this.opts.cacheTime ?? DEFAULT_CACHE_TIME_MS),
      ignoreTLS: tlsMode === 'none',
      requireTLS: tlsMode === 'required',
      opportunisticTLS: tlsMode === 'opportunistic',
      // Like Postfix's "may" and "encrypt" levels: encryption against passive eavesdropping
      // without authenticating the next hop, so self-signed certificates (the norm between MTAs)
      // work. There is no "verify" level yet (CA and name check, DANE or MTA-STS for mx): routes
      // would need a per-route TLS policy first.
      tls: { rejectUnauthorized: false, minVersion: 'TLSv1.2', ...(target.servername ? { servername: target.servername } : {}) },
      connectionTimeout: t.connection ?? 30_000,
      greetingTimeout: t.greeting ?? 30_000,
      socketTimeout: t.socket ?? 5 * 60_000,
      // A next hop on the loopback or a private interface is normal for a gateway.
      allowInternalNetworkInterfaces: true,
      disableFileAccess: true,
      disableUrlAccess: true,
      logger: false,
      debug: false,
    });
    // Mail re-emits transport errors; without a listener an 'error' event would kill the role.
    // The failure itself reaches the sendMail caller.
    pool.on('error', () => undefined);
    return pool;
  }

  async deliver(target: SmtpTarget, msg: OutboundMessage): Promise<RecipientOutcome[]> {
    const to = msg.recipients.map((address) => ({ name: '', address }));
    const remote = target.servername ?? target.host;
    const slot = this.slot(target);
    slot.inUse++;
    try {
      const info = await slot.pool.sendMail({
        envelope: { from: msg.sender === '' ? false : msg.sender, to, use8BitMime: msg.eightBit, size: msg.body.length },
        raw: msg.body,
      });
      forgetFailures(target.host, target.port);
      const ok = replyOf({ response: info.response } as NodemailerError);
      return this.mapAccepted(msg.recipients, info.envelope?.to ?? [], info.rejectedErrors ?? [], ok).map((o) => ({ ...o, remote }));
    } catch (e) {
      const err = e as NodemailerError;
      // Every recipient refused at RCPT: nodemailer fails the message but tells us each reply.
      if (err.rejectedErrors?.length && err.rejectedErrors.length === msg.recipients.length) {
        return msg.recipients.map((recipient, i) => {
          const r = err.rejectedErrors![i]!;
          return { recipient, status: classifyError(r), reply: replyOf(r), remote };
        });
      }
      const limit = announcedSizeExceeded(err);
      if (limit !== null) {
        // Our own refusal, worded as Postfix's smtp client words it, with the status the next hop
        // would have given (RFC 1870: 552 5.3.4): permanent, since the message will not shrink.
        return outcomesFor(msg.recipients, 'failed', `message size ${msg.body.length} exceeds size limit ${limit} of server ${namaddr(remote, target.host)}`, '5.3.4');
      }
      const why = describeFailure(err, { host: target.host, port: target.port, servername: target.servername, tlsRequired: target.kind === 'smtp' && target.tls === 'required' });
      return msg.recipients.map((recipient) => ({
        recipient,
        status: classifyError(err),
        reply: why.reply,
        ...(why.dsn ? { dsn: why.dsn } : {}),
        ...(why.remote ? { remote } : {}),
        ...(isHostFailure(err) ? { hostFailure: true } : {}),
      }));
    } finally {
      slot.inUse--;
      slot.lastUsed = Date.now();
    }
  }

  /**
   * Map nodemailer's per-recipient answer back to our addresses. Its envelope list is ours
   * normalised (IDN → punycode) in the same order, so positions pair them up.
   */
  private mapAccepted(ours: string[], theirs: string[], rejected: NodemailerError[], okReply: string): RecipientOutcome[] {
    const byTheirs = new Map<string, NodemailerError>();
    for (const r of rejected) if (r.recipient) byTheirs.set(r.recipient, r);
    return ours.map((recipient, i) => {
      const r = byTheirs.get(theirs.length === ours.length ? theirs[i]! : recipient);
      if (!r) return { recipient, status: 'delivered', reply: okReply };
      return { recipient, status: classifyError(r), reply: replyOf(r) };
    });
  }

  /**
   * A new cache time applies to pools made from now on; idle pools are closed (with QUIT), so
   * the next message opens one with it.
   */
  setCacheTime(ms: number): void {
    if (ms === (this.opts.cacheTime ?? DEFAULT_CACHE_TIME_MS)) return;
    this.opts = { ...this.opts, cacheTime: ms };
    for (const [key, slot] of this.pools) {
      if (slot.inUse > 0) continue;
      slot.pool.close();
      this.pools.delete(key);
    }
  }

  /** Close idle pooled connections at once; with `force` also those in the middle of a message. */
  close(force = false): void {
    clearInterval(this.sweeper);
    for (const slot of this.pools.values()) slot.pool.close({ force });
    this.pools.clear();
  }
}
