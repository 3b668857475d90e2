/**
 * What a delivery attempt says about each recipient. Every transport answers per recipient, even
 * when the whole transaction failed, so the relay has one shape to act on — and issue 3 can
 * persist exactly these records (done marks, DSN input) without touching the transports.
 */
import type { MessageSource } from './smtp-client-body.js';
import type { Envelope } from '../core/envelope.js';

import type { OutcomeKind } from '../core/index.js';
import type { TlsFacts } from './tls-peer.js';

/**
 * delivered: the next hop took responsibility (250 after DATA, or the file is in new/).
 * deferred: try again later (4xx, network, TLS, local I/O). failed: permanent (5xx).
 */
export type RecipientStatus = 'delivered' | 'deferred' | 'failed';

export interface RecipientOutcome {
  recipient: string;
  status: RecipientStatus;
  /**
   * The next hop's reply line ("250 2.0.0 Ok", "550 5.1.1 no such user") or our own reason,
   * worded as Postfix words it ("connect to host[addr]:25: Connection refused", diagnostic.ts).
   */
  reply: string;
  /** The enhanced status code of our own reason (a next hop's reply carries its own). */
  dsn?: string;
  /** The next hop that gave `reply` (its host name); absent when the reply is our own. */
  remote?: string;
  /**
   * The next hop could not be reached or would not talk (connection, greeting, TLS): nothing of
   * the transaction happened there, so an MX route tries its next host.
   */
  hostFailure?: boolean;
  /**
   * Delivered to a next hop that announced DSN and was given the recipient's NOTIFY: from there on
   * it reports, so no "relayed" notice of ours (RFC 3461 §6.2.1).
   */
  dsnPassed?: boolean;
  /** The TLS session the reply came over: version, cipher, how the next hop was verified. */
  tls?: TlsFacts;
  /** What MTA-STS testing mode would have refused on that session (reported, not enforced). */
  tlsReport?: string;
  /** Why the reply-classification table changed the status, for logs. */
  note?: string;
  /**
   * The entry of the outcome catalogue (core/outcomes.ts) this is, when the transport or the
   * classification knows; otherwise the status's usual one (defaultOutcome).
   */
  kind?: OutcomeKind;
}

/** One message as the transports see it: a single recipient group bound for one target. */
export interface OutboundMessage {
  /** For logs only. */
  queueId: string;
  /** MAIL FROM; "" is the null reverse-path. */
  sender: string;
  recipients: string[];
  /** The message bytes, sent unchanged: in memory, or a spool file range read as it is sent. */
  body: MessageSource;
  /** BODY=8BITMIME was declared when the message came in. */
  eightBit: boolean;
  /** BODY=BINARYMIME: the worker left the content binary (it could not convert it); never sent over DATA. */
  binary?: boolean;
  /** REQUIRETLS (RFC 8689): only to an authenticated next hop that offers it, else a bounce (5.7.30). */
  requireTls?: boolean;
  /**
   * `TLS-Required: No` in the header (RFC 8689 §5): the recipient domain's TLS policies (dane,
   * sts) may be ignored; the route's own level still holds.
   */
  tlsOptional?: boolean;
  /** The message came in with SMTPUTF8: passed on to next hops that offer it. */
  smtputf8?: boolean;
  /**
   * RET and ENVID, and each recipient's NOTIFY and ORCPT (RFC 3461) as the sender gave them: an
   * SMTP next hop that supports DSN gets them (looked up by address).
   */
  dsn?: Pick<Envelope, 'ret' | 'envid' | 'recipients'>;
}

export function outcomesFor(recipients: readonly string[], status: RecipientStatus, reply: string, dsn?: string, kind?: OutcomeKind): RecipientOutcome[] {
  return recipients.map((recipient) => ({ recipient, status, reply, ...(dsn ? { dsn } : {}), ...(kind ? { kind } : {}) }));
}
