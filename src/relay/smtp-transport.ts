/**
 * SMTP delivery to a fixed next hop (smtp://host:port with STARTTLS, smtps://host:port with
 * implicit TLS) through Postern's own client (smtp-client-*.ts): sessions cached per next hop and
 * reused across messages the way Postfix's connection cache does, one transaction per message
 * with PIPELINING when offered, and an answer per recipient.
 *
 * The body is sent as given, dot-stuffed on the way; it stays byte-exact because smtpd and the
 * worker end every message with CRLF and use CRLF throughout. The sender "" is sent as
 * `MAIL FROM:<>`. Addresses go out with their local part as given and the domain in ASCII form.
 */
import type { RouteTarget } from '../config/types.js';
import type { OutboundMessage, RecipientOutcome } from './outcome.js';
import { targetKey } from './routes.js';
import type { MessageSource } from './smtp-client-body.js';
import { ConnectionCache } from './smtp-client-cache.js';
import { SmtpClientError, SmtpSession } from './smtp-client-session.js';
import { transact, type ClientEnvelope, type ClientRecipient } from './smtp-client-transaction.js';
import { demandsTls, type PeerCheck } from './tls-peer.js';
import { createHash } from 'node:crypto';
import { sessionFailure, transactionOutcomes, type FailedHop } from './smtp-errors.js';

/**
 * A next hop by address. For MX routes `host` is one address of the exchanger and `servername`
 * its DNS name: TLS SNI and the name in replies, logs and DSNs (Remote-MTA).
 */
export type SmtpTarget = Extract<RouteTarget, { kind: 'smtp' | 'smtps' }> & {
  servername?: string;
  /** What the certificate must prove, as the MX route's policy decided (dane, sts); else from `tls`. */
  peer?: PeerCheck;
};

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
  /** Test hook: shorter timeouts. `socket` is the wait for each reply and for the body to drain. */
  timeouts?: { connection?: number; greeting?: number; socket?: number };
  /** The CAs a verified next hop's chain may end at (PEM): the system's and relay.tls_ca_file. */
  ca?: () => readonly string[];
}

/**
 * STARTTLS use and the certificate check of a delivery. `verify` checks the host the route names
 * (the MX host name for mx routes). A message with REQUIRETLS (RFC 8689 §4.2.1) goes only to a
 * next hop authenticated at least as `verify` would, whatever the route's level.
 */
export function sessionTls(target: SmtpTarget, requireTls: boolean): { tls: 'none' | 'may' | 'encrypt'; peer?: PeerCheck } {
  const name = target.servername ?? target.host;
  const verify: PeerCheck = { kind: 'pkix', name, as: 'verified' };
  let tls: 'none' | 'may' | 'encrypt' = target.kind === 'smtps' || target.tls === 'verify' ? 'encrypt' : target.tls;
  let peer = target.peer ?? (target.tls === 'verify' ? verify : undefined);
  if (requireTls && !demandsTls(peer)) [tls, peer] = ['encrypt', verify];
  return peer ? { tls, peer } : { tls };
}

/** Postfix's smtp_connection_cache_time_limit default. */
export const DEFAULT_CACHE_TIME_MS = 2_000;

export class SmtpTransport {
  private readonly cache: ConnectionCache;

  constructor(private readonly opts: SmtpTransportOptions) {
    this.cache = new ConnectionCache(opts.maxConnections ?? 5, opts.cacheTime ?? DEFAULT_CACHE_TIME_MS);
  }

  async deliver(target: SmtpTarget, msg: OutboundMessage): Promise<RecipientOutcome[]> {
    return this.send(target, envelopeOf(msg), msg.body);
  }

  /** One message, from any body source (a spool file range streams instead of sitting in memory). */
  async send(target: SmtpTarget, env: ClientEnvelope, body: MessageSource): Promise<RecipientOutcome[]> {
    const check = sessionTls(target, env.requireTls === true);
    // A session is reused only for deliveries that ask the same of it.
    const key = `${targetKey(target)}#${target.servername ?? ''}#${check.tls}${check.peer ? '#' + createHash('sha256').update(JSON.stringify(check.peer)).digest('hex').slice(0, 16) : ''}`;
    const remote = target.servername ?? target.host;
    const hop: FailedHop = { host: target.host, port: target.port, ...(target.servername ? { servername: target.servername } : {}) };
    const recipients = env.recipients.map((r) => r.address);
    const t = this.opts.timeouts ?? {};
    const open = () =>
      SmtpSession.open({
        host: target.host,
        port: target.port,
        ...(target.servername ? { servername: target.servername } : {}),
        implicitTls: target.kind === 'smtps',
        tls: target.kind === 'smtps' ? 'none' : check.tls,
        ...(check.peer ? { peer: check.peer } : {}),
        ...(this.opts.ca ? { ca: this.opts.ca() } : {}),
        hostname: this.opts.hostname,
        timeouts: { connection: t.connection ?? 30_000, greeting: t.greeting ?? 30_000, socket: t.socket ?? 5 * 60_000 },
      });
    for (let fresh = false; ; fresh = true) {
      let lease;
      try {
        lease = await this.cache.acquire(key, open);
      } catch (e) {
        if (!(e instanceof SmtpClientError)) throw e;
        return sessionFailure(recipients, e, hop, remote);
      }
      const { session, reused } = lease;
      const res = await transact(session, env, body).finally(() => this.cache.release(key, session));
      // A cached connection the next hop dropped while it idled: nothing was taken, so once more
      // on a new one (Postfix does the same with a stale cached session).
      if (reused && !fresh && res.kind === 'replies' && res.error?.failure === 'lost' && !res.bodyStarted && !res.rcpt.length) continue;
      const dsn = session.extensions.has('DSN');
      const notifyPassed = env.recipients.map((r) => dsn && !!r.notify?.length);
      const outcomes = transactionOutcomes(recipients, res, { ...hop, address: session.address }, remote, sizeOf(body), notifyPassed);
      const tls = session.tls;
      const report = session.tlsReport;
      return tls || report ? outcomes.map((o) => ({ ...o, ...(tls ? { tls } : {}), ...(report ? { tlsReport: report } : {}) })) : outcomes;
    }
  }

  /** A new cache time applies from now on; idle connections are closed (with QUIT). */
  setCacheTime(ms: number): void {
    this.cache.setCacheTime(ms);
  }

  /** Close idle cached connections at once; with `force` also those in the middle of a message. */
  close(force = false): void {
    this.cache.close(force);
  }
}

const sizeOf = (b: MessageSource) => (Buffer.isBuffer(b) ? b.length : b.size);

/** The envelope as the client sends it, with the DSN parameters the sender gave our smtpd. */
function envelopeOf(msg: OutboundMessage): ClientEnvelope {
  const byAddress = new Map(msg.dsn?.recipients.map((r) => [r.address, r]) ?? []);
  const recipients = msg.recipients.map((address): ClientRecipient => {
    const r = byAddress.get(address);
    return { address, ...(r?.notify ? { notify: r.notify } : {}), ...(r?.orcpt ? { orcpt: r.orcpt } : {}) };
  });
  return {
    sender: msg.sender,
    recipients,
    eightBit: msg.eightBit,
    ...(msg.binary ? { binary: true } : {}),
    ...(msg.requireTls ? { requireTls: true } : {}),
    ...(msg.smtputf8 ? { smtputf8: true } : {}),
    ...(msg.dsn?.ret ? { ret: msg.dsn.ret } : {}),
    ...(msg.dsn?.envid ? { envid: msg.dsn.envid } : {}),
  };
}
