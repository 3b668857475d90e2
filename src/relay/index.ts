/**
 * relay: delivers the entries of spool/outgoing/ to their next hop per relay.routes (smtp://
 * with STARTTLS, smtps://, maildir:; mx comes with issue 3), retries temporary failures, holds
 * what cannot be delivered, and removes an entry only once every recipient has a final answer.
 *
 * Untrusted input: the spooled envelope and message (sent on byte-exact, never parsed here) and
 * everything a next-hop server answers (reply lines go to logs, JSON-escaped by pino).
 *
 * Secrets: none held. Message bodies are never logged; TLS to the next hop encrypts without
 * authenticating it yet (see smtp-transport.ts).
 */
export { startRelay, type Relay, type RelayOptions, type MxResolver } from './relay.js';
export { matchRoute, groupByRoute, recipientDomain, describeTarget, targetKey, type RecipientGroup } from './routes.js';
export { deliverMaildir, maildirName } from './maildir.js';
export { SmtpTransport, classifyError, type SmtpTarget } from './smtp-transport.js';
export type { OutboundMessage, RecipientOutcome, RecipientStatus } from './outcome.js';
