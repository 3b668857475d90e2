/**
 * How the relay words a failure it found itself, rather than a reply a next hop gave: as Postfix's
 * smtp client words it (smtp_connect.c, smtp_trouble.c, smtp_proto.c, dns_strerror), so that
 * admins, helpdesks and their log searches read Postern's deferrals, `queue show` and bounces the
 * way they read Postfix's. Each text comes with the RFC 3463 status Postfix gives it; both are
 * the outcome catalogue's (core/outcomes.ts), filled in here. No text holds a library's error
 * code (ESOCKET, ECONNECTION): those name our implementation, not what happened on the network.
 */
import { outcomeDiagnostic } from '../core/index.js';

/** Our own account of a failure: the text, and its enhanced status code. */
export interface Diagnostic {
  text: string;
  dsn: string;
}

/**
 * Where in the SMTP conversation a connection was lost or timed out. Postfix names the reply it
 * was waiting for; with PIPELINING that is the oldest command still unanswered.
 */
export type SmtpPhase = 'greeting' | 'ehlo' | 'helo' | 'starttls' | 'mail' | 'rcpt' | 'data' | 'body' | 'dot' | 'rset' | 'quit';

const WHILE: Record<SmtpPhase, string> = {
  greeting: 'receiving the initial server greeting',
  ehlo: 'performing the EHLO handshake',
  helo: 'performing the HELO handshake',
  starttls: 'receiving the STARTTLS response',
  mail: 'sending MAIL FROM',
  rcpt: 'sending RCPT TO',
  data: 'sending DATA command',
  body: 'sending message body',
  // Postfix's warning, kept: the next hop may have taken the message before the line went.
  dot: 'sending end of data -- message may be sent more than once',
  rset: 'sending RSET',
  quit: 'sending QUIT',
};

/** The C library's strerror() texts for the errors a connect() can end with (glibc wording). */
const STRERROR: Record<string, string> = {
  ECONNREFUSED: 'Connection refused',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  EHOSTDOWN: 'Host is down',
  ENETDOWN: 'Network is down',
  ECONNRESET: 'Connection reset by peer',
  ECONNABORTED: 'Software caused connection abort',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EADDRINUSE: 'Address already in use',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EPIPE: 'Broken pipe',
  EMFILE: 'Too many open files',
  ENFILE: 'Too many open files in system',
  ENOBUFS: 'No buffer space available',
};

/** Reply text must stay one printable line whatever a peer or a resolver handed us. */
function clean(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 400);
}

/** "host[address]", Postfix's namaddr; a next hop given as an address is "address[address]". */
export function namaddr(host: string | undefined, address: string): string {
  return clean(`${host || address}[${address}]`);
}

export function strerror(errno: string | undefined): string {
  if (errno && STRERROR[errno]) return STRERROR[errno];
  // An errno name the table lacks is still the system's word for it; anything else is not.
  return errno && /^E[A-Z0-9]{2,15}$/.test(errno) ? `Connection failed (${errno})` : 'Connection failed';
}

/** " while sending RCPT TO", or nothing when the phase is unknown. */
const during = (phase: SmtpPhase | undefined): string => (phase ? ` while ${WHILE[phase]}` : '');

/** "connect to mx.example.com[192.0.2.1]:25: Connection refused" (4.4.1). */
export function connectFailed(peer: string, port: number, errno: string | undefined): Diagnostic {
  return outcomeDiagnostic('deferred_connect', { peer, port, error: strerror(errno) });
}

/** "lost connection with mx.example.com[192.0.2.1] while sending end of data -- …" (4.4.2). */
export function lostConnection(peer: string, phase: SmtpPhase | undefined): Diagnostic {
  return outcomeDiagnostic('deferred_lost_connection', { peer, while: during(phase) });
}

/** "conversation with mx.example.com[192.0.2.1] timed out while receiving the initial server greeting" (4.4.2). */
export function timedOut(peer: string, phase: SmtpPhase | undefined): Diagnostic {
  return outcomeDiagnostic('deferred_timeout', { peer, while: during(phase) });
}

/** The TLS handshake failed (a STARTTLS upgrade or an smtps connection). */
export function tlsHandshakeFailed(): Diagnostic {
  return outcomeDiagnostic('deferred_tls', {});
}

/** A route with `tls: required` and a next hop that did not announce STARTTLS. */
export function tlsNotOffered(peer: string): Diagnostic {
  return outcomeDiagnostic('deferred_tls_not_offered', { peer });
}

/** A route with `tls: required` and a next hop that announced STARTTLS but refused it. */
export function tlsRefused(peer: string, reply: string): Diagnostic {
  return outcomeDiagnostic('deferred_tls_refused', { peer, reply: clean(reply) });
}

/** The certificate did not pass the route's check: "Server certificate not trusted (…) (host mx[addr])" (4.7.5). */
export function tlsAuthFailed(peer: string, reason: string): Diagnostic {
  return outcomeDiagnostic('deferred_tls_auth', { peer, reason: clean(reason) });
}

/** The recipient domain's TLS policy cannot be met on this host ("TLSA lookup error for …", an MX outside the MTA-STS policy) (4.7.5). */
export function tlsPolicyFailed(reason: string): Diagnostic {
  return outcomeDiagnostic('deferred_tls_policy', { reason: clean(reason) });
}

/** The next hop answered with something that is not SMTP. */
export function protocolError(peer: string): Diagnostic {
  return outcomeDiagnostic('deferred_protocol', { peer });
}

/** How a DNS question ended, in the resolver's terms (h_errno). */
export type DnsOutcome = 'not_found' | 'no_data' | 'try_again' | 'no_recovery';

const DNS_STRERROR: Record<DnsOutcome, string> = {
  not_found: 'Host not found',
  no_data: 'Host found but no data record of requested type',
  try_again: 'Host not found, try again',
  no_recovery: 'Non-recoverable error',
};

/** What a name or record that does not exist means where it was asked (outcomes with the DNS text). */
export type DnsAbsent = 'bounced_dns' | 'bounced_no_domain' | 'deferred_mx_no_address' | 'deferred_dns';

/**
 * "Host or domain name not found. Name service error for name=example.net type=MX: Host not
 * found, try again". No answer at all is deferred_dns (4.4.3) — also a resolver that refuses us
 * (NO_RECOVERY), which is our own set-up's fault, not the domain's; a name or record that does
 * not exist is `absent` (Postfix: 5.4.4, bounced_dns).
 */
export function dnsFailed(name: string, type: 'MX' | 'A' | 'AAAA', outcome: DnsOutcome, absent: DnsAbsent = 'bounced_dns'): Diagnostic {
  const temporary = outcome === 'try_again' || outcome === 'no_recovery';
  return outcomeDiagnostic(temporary ? 'deferred_dns' : absent, { name: clean(name), type, error: DNS_STRERROR[outcome] });
}

/** The DNS text for an answer that is not an outcome of the resolver's (a malformed reply). */
export function dnsText(kind: DnsAbsent, name: string, type: 'MX' | 'A' | 'AAAA', error: string): Diagnostic {
  return outcomeDiagnostic(kind, { name: clean(name), type, error });
}

/**
 * The outcome a resolver error code stands for. Node's c-ares codes: ENOTFOUND (NXDOMAIN),
 * ENODATA (no record of that type), and the rest are failures to get an answer at all.
 */
export function dnsOutcome(code: string): DnsOutcome {
  if (code === 'ENOTFOUND') return 'not_found';
  if (code === 'ENODATA') return 'no_data';
  if (code === 'EFORMERR' || code === 'ENOTIMP' || code === 'EREFUSED' || code === 'EBADNAME' || code === 'EBADQUERY') return 'no_recovery';
  return 'try_again';
}
