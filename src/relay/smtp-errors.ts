/**
 * What the SMTP client's results mean in the relay's terms: for each recipient, delivered,
 * temporary or permanent, the reason — the next hop's own reply when it gave one, else our
 * Postfix-worded account of what happened on the connection (diagnostic.ts) — and whether the
 * next MX host may be tried. Everything is read from the client's own state (which reply it was
 * waiting for when the connection went), never from a library's error codes.
 */
import {
  connectFailed,
  dnsFailed,
  dnsOutcome,
  lostConnection,
  namaddr,
  protocolError,
  timedOut,
  tlsHandshakeFailed,
  tlsNotOffered,
  tlsAuthFailed,
  tlsRefused,
  type Diagnostic,
  type SmtpPhase,
} from './diagnostic.js';
import { outcomeDiagnostic, type OutcomeKind } from '../core/index.js';
import type { RecipientOutcome } from './outcome.js';
import { replyText, type SmtpClientError, type SmtpReply } from './smtp-client-session.js';
import type { TransactionResult } from './smtp-client-transaction.js';

/** The replies that belong to the mail transaction; a 5xx to anything else says nothing about the message. */
const TRANSACTIONAL = new Set<SmtpPhase>(['mail', 'rcpt', 'data', 'dot']);

/**
 * Temporary or permanent? Only a 5xx answer to the transaction itself (MAIL, RCPT, DATA, the end
 * of data) is permanent, and not 503 (bad sequence: our fault or the session's, not the
 * message's). A 5xx greeting (Postfix's smtp_skip_5xx_greeting), a refused HELO or STARTTLS are
 * connection-level: temporary.
 */
export function classifyReply(r: Pick<SmtpReply, 'code'>, phase: SmtpPhase): 'delivered' | 'deferred' | 'failed' {
  if (r.code >= 200 && r.code < 300) return 'delivered';
  if (TRANSACTIONAL.has(phase) && r.code >= 500 && r.code !== 503) return 'failed';
  return 'deferred';
}

/** The next hop as a failure names it: its name when it has one, and the address we used. */
export interface FailedHop {
  host: string;
  port: number;
  servername?: string;
  /** The address connected to (the resolved one for a route by name), when known. */
  address?: string;
}

/** Lookup failures of a route's host name (getaddrinfo), as Node codes them. */
const DNS_ERRNO = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'ENODATA', 'EAI_NONAME']);

/**
 * The reason for a failed session: the next hop's reply (`remote`), or our own account with its
 * status code. Never a library error code.
 */
export function describeFailure(err: SmtpClientError, hop: FailedHop): { reply: string; dsn?: string; remote: boolean } {
  const peer = namaddr(hop.servername ?? hop.host, err.detail.address ?? hop.address ?? hop.host);
  const own = (d: Diagnostic) => ({ reply: d.text, dsn: d.dsn, remote: false });
  switch (err.failure) {
    case 'connect': {
      const errno = err.detail.errno;
      if (errno && DNS_ERRNO.has(errno)) return own(dnsFailed(hop.host, 'A', dnsOutcome(errno === 'EAI_AGAIN' ? 'ETIMEOUT' : 'ENOTFOUND'), 'deferred_dns'));
      return own(connectFailed(peer, hop.port, errno));
    }
    case 'timeout':
      return own(timedOut(peer, err.phase));
    case 'lost':
      return own(lostConnection(peer, err.phase));
    case 'tls-handshake':
      return own(tlsHandshakeFailed());
    case 'tls-not-offered':
      return own(tlsNotOffered(peer));
    case 'tls-refused':
      return own(tlsRefused(peer, err.detail.reply ? replyText(err.detail.reply) : ''));
    case 'tls-auth':
      return own(tlsAuthFailed(peer, err.detail.reason ?? 'Server certificate not verified'));
    case 'protocol':
      return own(protocolError(peer));
    case 'reply':
      return { reply: err.detail.reply ? replyText(err.detail.reply) : '', remote: true };
  }
}

/** Recipient outcomes for a session that failed before any transaction: everyone alike. */
export function sessionFailure(recipients: readonly string[], err: SmtpClientError, hop: FailedHop, remote: string): RecipientOutcome[] {
  const why = describeFailure(err, hop);
  // Nothing of a transaction happened there: the next MX host may be tried at once.
  const kind = err.failure === 'tls-auth' ? { kind: 'deferred_tls_auth' as const } : {};
  return recipients.map((recipient) => ({ recipient, status: 'deferred', reply: why.reply, ...(why.dsn ? { dsn: why.dsn } : {}), ...(why.remote ? { remote } : {}), hostFailure: true, ...kind }));
}

/**
 * Each recipient's outcome from a transaction's replies: its RCPT reply when refused, else the
 * reply to MAIL, DATA or the end of data, else the 421 or the failure that ended the session.
 */
export function transactionOutcomes(
  recipients: readonly string[],
  res: TransactionResult,
  hop: FailedHop,
  remote: string,
  size: number,
  /** Per recipient: its NOTIFY went to the next hop (which announced DSN). */
  notifyPassed: readonly boolean[] = [],
): RecipientOutcome[] {
  const peer = namaddr(hop.servername ?? hop.host, hop.address ?? hop.host);
  switch (res.kind) {
    case 'size':
      // Our own refusal, worded as Postfix's smtp client words it, with the status the next hop
      // would have given (RFC 1870: 552 5.3.4): permanent, since the message will not shrink.
      return own(recipients, 'failed', outcomeDiagnostic('bounced_size', { size, limit: res.limit, peer }), 'bounced_size');
    case 'smtputf8':
      // Postfix (smtp_proto.c): an address needs SMTPUTF8 and the next hop lacks it; no retry helps.
      return own(recipients, 'failed', outcomeDiagnostic('bounced_smtputf8', { peer }), 'bounced_smtputf8');
    case 'binarymime':
      // RFC 3030 §3: BINARYMIME content goes only by BDAT to a next hop that announced it.
      return own(recipients, 'failed', outcomeDiagnostic('bounced_conversion', { reason: `the message is BINARYMIME and cannot be re-encoded, and host ${peer} does not offer BINARYMIME and CHUNKING` }), 'bounced_conversion');
    case 'requiretls':
      // RFC 8689 §4.2.1: permanent for this host; hostFailure lets an MX route try the next one.
      return own(recipients, 'failed', outcomeDiagnostic('bounced_requiretls', { peer })).map((o) => ({ ...o, hostFailure: true, kind: 'bounced_requiretls' as const }));
    case 'bad-address':
      return own(recipients, 'deferred', outcomeDiagnostic('deferred_local', { reason: `local data error while talking to ${peer}: invalid envelope address` }));
  }
  const byReply = (recipient: string, r: SmtpReply, phase: SmtpPhase, hostFailure = false): RecipientOutcome => ({
    recipient,
    status: classifyReply(r, phase),
    reply: replyText(r),
    remote,
    ...(hostFailure ? { hostFailure: true } : {}),
  });
  const mailRefused = res.mail && res.mail !== res.closing && !(res.mail.code >= 200 && res.mail.code < 300);
  return recipients.map((recipient, i) => {
    if (mailRefused) return byReply(recipient, res.mail!, 'mail');
    const rcpt = res.rcpt[i];
    if (rcpt && classifyReply(rcpt, 'rcpt') !== 'delivered') return byReply(recipient, rcpt, 'rcpt');
    if (res.final) {
      const o = byReply(recipient, res.final, 'dot');
      return o.status === 'delivered' && notifyPassed[i] ? { ...o, dsnPassed: true } : o;
    }
    // A 421 before any of the body went: nothing happened there, the next MX host may try.
    if (res.closing) return byReply(recipient, res.closing, 'data', !res.bodyStarted);
    if (res.data) return byReply(recipient, res.data, 'data');
    if (res.local !== undefined) {
      const what = res.local.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
      const d = outcomeDiagnostic('deferred_local', { reason: `local data error while talking to ${peer}${what ? `: ${what}` : ''}` });
      return { recipient, status: 'deferred', reply: d.text, dsn: d.dsn };
    }
    if (res.error) {
      const why = describeFailure(res.error, hop);
      // As before the lean client: any connection-level failure lets an MX route try its next host.
      return { recipient, status: 'deferred', reply: why.reply, ...(why.dsn ? { dsn: why.dsn } : {}), ...(why.remote ? { remote } : {}), hostFailure: true };
    }
    // Cannot happen: a transaction without a final reply ended with an error or a refusal.
    const d = lostConnection(peer, undefined);
    return { recipient, status: 'deferred', reply: d.text, dsn: d.dsn };
  });
}

/** Our own reason (the outcome catalogue's text and status) for every recipient. */
function own(recipients: readonly string[], status: 'deferred' | 'failed', d: Diagnostic, kind?: OutcomeKind): RecipientOutcome[] {
  return recipients.map((recipient) => ({ recipient, status, reply: d.text, dsn: d.dsn, ...(kind ? { kind } : {}) }));
}
