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
import { outcomesFor, type OutboundMessage, type RecipientOutcome } from './outcome.js';
import { targetKey } from './routes.js';

export type SmtpTarget = Extract<RouteTarget, { kind: 'smtp' | 'smtps' }>;

type Pool = Mail<SMTPPoolSentMessageInfo, SMTPPoolOptions>;

export interface SmtpTransportOptions {
  /** Our EHLO name (config.hostname). */
  hostname: string;
  /** Connections per destination. */
  maxConnections?: number;
  /** Test hook: shorter timeouts. */
  timeouts?: { connection?: number; greeting?: number; socket?: number };
}

/** The reply text for one failure; never the message body (nodemailer does not put it there). */
function replyOf(err: NodemailerError): string {
  if (err.response) return err.response.replace(/\r?\n/g, ' ').trim();
  const code = err.code ? `${err.code}: ` : '';
  return `${code}${err.message}`.replace(/\r?\n/g, ' ').trim();
}

/**
 * Temporary or permanent? Only a 5xx answer to the transaction itself (MAIL, RCPT, DATA) is
 * permanent. Connection-level trouble is always temporary, even with a 5xx: a 5xx greeting
 * (Postfix's smtp_skip_5xx_greeting) or a STARTTLS refused while TLS is required (Postfix defers
 * with "TLS is required, but was not offered by host") says nothing about the message.
 */
export function classifyError(err: NodemailerError): 'deferred' | 'failed' {
  const transactional = err.code === 'EENVELOPE' || err.code === 'EMESSAGE';
  if (transactional && typeof err.responseCode === 'number' && err.responseCode >= 500 && err.responseCode !== 503) return 'failed';
  return 'deferred';
}

export class SmtpTransport {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly opts: SmtpTransportOptions) {}

  private pool(target: SmtpTarget): Pool {
    const key = targetKey(target);
    const existing = this.pools.get(key);
    if (existing) return existing;
    const t = this.opts.timeouts ?? {};
    const tlsMode = target.kind === 'smtps' ? 'implicit' : target.tls;
    const pool = nodemailer.createTransport({
      pool: true,
      host: target.host,
      port: target.port,
      secure: target.kind === 'smtps',
      name: this.opts.hostname,
      maxConnections: this.opts.maxConnections ?? 5,
      maxMessages: 100,
      // Requeueing happens only when not a byte of the message went out (a stale pooled
      // connection); anything else comes back to us, and our retry schedule decides.
      maxRequeues: 2,
      ignoreTLS: tlsMode === 'none',
      requireTLS: tlsMode === 'required',
      opportunisticTLS: tlsMode === 'opportunistic',
      // Like Postfix's "may" and "encrypt" levels: encryption against passive eavesdropping
      // without authenticating the next hop, so self-signed certificates (the norm between MTAs)
      // work. TODO: a "verify" level (CA and name check, DANE/MTA-STS for mx) when routes grow a
      // per-route TLS policy.
      tls: { rejectUnauthorized: false, minVersion: 'TLSv1.2' },
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
    this.pools.set(key, pool);
    return pool;
  }

  async deliver(target: SmtpTarget, msg: OutboundMessage): Promise<RecipientOutcome[]> {
    const to = msg.recipients.map((address) => ({ name: '', address }));
    try {
      const info = await this.pool(target).sendMail({
        envelope: { from: msg.sender === '' ? false : msg.sender, to, use8BitMime: msg.eightBit, size: msg.body.length },
        raw: msg.body,
      });
      return this.mapAccepted(msg.recipients, info.envelope?.to ?? [], info.rejectedErrors ?? [], replyOf({ response: info.response } as NodemailerError));
    } catch (e) {
      const err = e as NodemailerError;
      // Every recipient refused at RCPT: nodemailer fails the message but tells us each reply.
      if (err.rejectedErrors?.length && err.rejectedErrors.length === msg.recipients.length) {
        return msg.recipients.map((recipient, i) => {
          const r = err.rejectedErrors![i]!;
          return { recipient, status: classifyError(r), reply: replyOf(r) };
        });
      }
      let reply = replyOf(err);
      if (err.code === 'ETLS' && target.kind === 'smtp' && target.tls === 'required') reply = `TLS is required, but could not be used: ${reply}`;
      return outcomesFor(msg.recipients, classifyError(err), reply);
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

  /** Close idle pooled connections at once; with `force` also those in the middle of a message. */
  close(force = false): void {
    for (const p of this.pools.values()) p.close({ force });
    this.pools.clear();
  }

  /** Drop the pools of destinations no longer routed to (after a reload). */
  retain(keys: ReadonlySet<string>): void {
    for (const [key, p] of this.pools) {
      if (!keys.has(key)) {
        p.close();
        this.pools.delete(key);
      }
    }
  }
}
