/**
 * relay: delivers the entries of spool/outgoing/ to their next hop per relay.routes (mx with the
 * RFC 5321 fallbacks, smtp:// with STARTTLS, smtps://, maildir:), records each recipient's answer
 * in the entry, retries temporary failures from deferred/ on the relay.retry schedule until
 * max_queue_lifetime, queues delivery status notifications (dsn/), and removes an entry only once
 * every recipient has a final answer.
 *
 * TLS toward next hops per route level (none, may, encrypt, verify, dane, sts: tls-policy.ts),
 * and REQUIRETLS (RFC 8689) on delivery.
 *
 * Untrusted input: the spooled envelope and message (sent on byte-exact; only the header is read,
 * for TLS-Required), everything a next-hop server answers (reply lines go to logs JSON-escaped,
 * and into DSNs sanitised by dsn/), its certificate chain, DNS answers (MX, TLSA, TXT), and
 * MTA-STS policy files fetched over HTTPS.
 *
 * Secrets: none held. Message bodies are never logged.
 */
export { startRelay, type Relay, type RelayOptions } from './relay.js';
export { matchRoute, groupByRoute, recipientDomain, describeTarget, targetKey, type RecipientGroup } from './routes.js';
export { deliverMaildir, maildirName } from './maildir.js';
export { SmtpTransport, DEFAULT_CACHE_TIME_MS, type SmtpTarget } from './smtp-transport.js';
export { classifyReply } from './smtp-errors.js';
export { type MessageSource, type StreamSource } from './smtp-client-body.js';
export { type Diagnostic, type SmtpPhase } from './diagnostic.js';
export { planMx, systemResolver, type DnsResolver, type MxPlan } from './mx.js';
export { SecureDns, type SecureAnswer, type NameServer } from './dns-secure.js';
export { type TlsaRecord, type TlsFacts, type TlsVerification } from './tls-peer.js';
export { ReplyClassifier } from './classify.js';
export {
  queueRows, queueRow, queueEntryViews, queueEntryView, LISTED_QUEUES,
  type QueueRow, type QueueRecipientRow, type QueueFilter, type QueueEntryView, type QueueRecipientView,
} from './queue-view.js';
export { entryState, uniqueRecipients, isFinal, type EntryState, type RecipientState } from './state.js';
export type { OutboundMessage, RecipientOutcome, RecipientStatus } from './outcome.js';
