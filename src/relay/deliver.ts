/**
 * One recipient group to its next hop: a fixed SMTP host, a Maildir, or the MX hosts of the
 * recipient domain, tried in preference order like Postfix's smtp client. Every path answers per
 * recipient and never throws.
 */
import type { RouteTarget, TlsLevel } from '../config/types.js';
import { outcomeDiagnostic } from '../core/index.js';
import type { Logger } from '../log/index.js';
import { deliverMaildir } from './maildir.js';
import { StsPolicies } from './mta-sts-cache.js';
import { planMx, type DnsResolver } from './mx.js';
import { outcomesFor, type OutboundMessage, type RecipientOutcome } from './outcome.js';
import type { OwnAddressCheck } from './own-addresses.js';
import { SmtpTransport } from './smtp-transport.js';
import { TlsFailureCounter } from './tls-report.js';
import { rootCertificates } from 'node:tls';

const tlsRoots: readonly string[] = rootCertificates;
import { domainTls } from './tls-policy.js';

export interface DeliveryOptions {
  /** Our EHLO name, and the name an MX pointing back at us has (loop detection). */
  hostname: string;
  /** Loop detection by address: an MX host at address:port would be this gateway (own-addresses.ts). */
  isOwnAddress?: OwnAddressCheck;
  resolver: DnsResolver;
  /** Port for MX hosts: 25, except in tests. */
  mxPort?: number;
  maxConnections?: number;
  /** relay.connection_cache_time (ms). */
  cacheTime?: number;
  smtpTimeouts?: { connection?: number; greeting?: number; socket?: number };
  /** The CAs verify and sts trust (PEM): the system's and relay.tls_ca_file; read at each use, so a reload applies. */
  ca?: () => readonly string[];
  /** Test hook: where mta-sts.<domain> is reached (the certificate is still checked for that name). */
  stsOrigin?: (policyHost: string) => { host: string; port: number };
  log: Logger;
}

export class Delivery {
  private readonly smtp: SmtpTransport;
  /** MTA-STS policies fetched, cached per domain for their max_age. */
  readonly sts: StsPolicies;
  private readonly failures: TlsFailureCounter;

  constructor(private readonly opts: DeliveryOptions) {
    this.smtp = new SmtpTransport({ hostname: opts.hostname, maxConnections: opts.maxConnections, cacheTime: opts.cacheTime, timeouts: opts.smtpTimeouts, ...(opts.ca ? { ca: opts.ca } : {}) });
    this.sts = new StsPolicies({ resolver: opts.resolver, ca: opts.ca ?? (() => tlsRoots), ...(opts.stsOrigin ? { origin: opts.stsOrigin } : {}) });
    this.failures = new TlsFailureCounter(opts.log);
  }

  async deliver(target: RouteTarget, domain: string | undefined, msg: OutboundMessage): Promise<RecipientOutcome[]> {
    try {
      switch (target.kind) {
        case 'smtp':
        case 'smtps':
          return await this.smtp.deliver(target, msg);
        case 'maildir':
          return await deliverMaildir(target.path, msg);
        case 'mx':
          return await this.deliverMx(target.tls, domain ?? '', msg);
      }
    } catch (err) {
      // Transports answer per recipient and should not throw; if one does, it is our bug, and
      // the message waits for a fix rather than bouncing.
      this.opts.log.error({ event: 'relay.internal_error', queueId: msg.queueId, err }, 'delivery failed unexpectedly');
      const d = outcomeDiagnostic('deferred_local', { reason: 'local error in delivery' });
      return outcomesFor(msg.recipients, 'deferred', d.text, d.dsn);
    }
  }

  /**
   * RFC 5321 §5.1: try each address of each exchanger in order until one holds a conversation;
   * only when a host could not be reached at all is the next one tried (a 4xx or 5xx from a host
   * that answered is that domain's answer, as Postfix treats it).
   */
  private async deliverMx(level: TlsLevel, domain: string, msg: OutboundMessage): Promise<RecipientOutcome[]> {
    const port = this.opts.mxPort ?? 25;
    const own = this.opts.isOwnAddress;
    const plan = await planMx(domain, this.opts.resolver, { self: [this.opts.hostname.toLowerCase()], ...(own ? { isOwnAddress: (a: string) => own(a, port) } : {}) });
    if (plan.kind !== 'hosts') return outcomesFor(msg.recipients, plan.kind, plan.reply, plan.dsn);
    // REQUIRETLS wins over TLS-Required: No (a message cannot carry both meaningfully).
    const policy = await domainTls(level, domain, { resolver: this.opts.resolver, sts: this.sts }, msg.tlsOptional === true && !msg.requireTls);
    if (policy.kind === 'deferred') return outcomesFor(msg.recipients, 'deferred', policy.why.text, policy.why.dsn);
    if (policy.policy) this.opts.log.info({ event: 'relay.tls_policy', queueId: msg.queueId, domain, policy: policy.policy }, 'recipient domain publishes a TLS policy');
    const tried: string[] = [];
    let last: RecipientOutcome[] = [];
    for (const t of plan.targets) {
      const decision = await policy.host(t.host);
      if (decision.kind === 'skip') {
        // This host cannot meet the domain's policy: never a weaker level, the next host may.
        this.failures.count(decision.policy, domain, decision.result, t.host, decision.why.text, msg.queueId);
        tried.push(`${t.host}[${t.address}]`);
        last = outcomesFor(msg.recipients, 'deferred', decision.why.text, decision.why.dsn, 'deferred_tls_policy').map((o) => ({ ...o, hostFailure: true }));
        continue;
      }
      const { use } = decision;
      if (decision.report) this.failures.count('sts', domain, 'validation-failure', t.host, decision.report, msg.queueId, true);
      const outcomes = await this.smtp.deliver(
        { kind: 'smtp', host: t.address, port, tls: use.tls, servername: t.host, ...(use.peer ? { peer: use.peer } : {}) },
        msg,
      );
      const authFailed = outcomes.find((o) => o.kind === 'deferred_tls_auth');
      if (use.policy && authFailed) this.failures.count(use.policy, domain, use.policy === 'dane' ? 'tlsa-invalid' : 'certificate-not-trusted', t.host, authFailed.reply, msg.queueId);
      const report = outcomes.find((o) => o.tlsReport)?.tlsReport;
      if (report) this.failures.count('sts', domain, 'certificate-not-trusted', t.host, report, msg.queueId, true);
      if (!outcomes.every((o) => o.hostFailure)) return outcomes;
      tried.push(`${t.host}[${t.address}]`);
      // Our own reasons name the host ("connect to mx[addr]:25: …"); a reply has it in `remote`.
      last = outcomes;
    }
    this.opts.log.debug({ event: 'relay.mx_unreachable', queueId: msg.queueId, domain, tried }, 'no MX host reachable');
    if (last.length) return last;
    const d = outcomeDiagnostic('deferred_no_mx_host', { domain });
    return outcomesFor(msg.recipients, 'deferred', d.text, d.dsn);
  }

  /** A reloaded relay.connection_cache_time: for connections opened from now on. */
  setCacheTime(ms: number): void {
    this.smtp.setCacheTime(ms);
  }

  close(force = false): void {
    this.smtp.close(force);
  }
}
