/**
 * The shapes the relay hands to dsn/ and gets back. Kept apart from the builder so callers can
 * import the types without pulling in anything else.
 */
import type { Envelope } from '../core/index.js';

export type DsnKind = 'failure' | 'delay' | 'success';

export interface DsnRecipient {
  /** Final-Recipient (the address we tried to deliver to). */
  address: string;
  /** ORCPT as stored in the envelope ("addr-type;xtext"); decoded for Original-Recipient. */
  orcpt?: string;
  action: 'failed' | 'delayed' | 'delivered' | 'relayed';
  /** Enhanced status code (RFC 3463), e.g. "5.1.1". A malformed one is replaced by the action's X.0.0. */
  status: string;
  /** The remote reply line ("smtp") or our own reason ("x-postern"). Untrusted: sanitised here. */
  diagnostic?: { type: 'smtp' | 'x-postern'; text: string };
  /** Next hop host name (Remote-MTA: dns; host). */
  remoteMta?: string;
  lastAttempt?: Date;
  /** Only written for action "delayed". */
  willRetryUntil?: Date;
}

export interface DsnInput {
  kind: DsnKind;
  /** Our hostname: Reporting-MTA, the From: domain, the Message-ID domain. */
  reportingMta: string;
  /** Queue id of the original message (X-Postern-Queue-ID, part of the Message-ID). */
  queueId: string;
  /** The original message's envelope; its sender receives the notice unless `postmaster` is set. */
  envelope: Envelope;
  /**
   * A double bounce (Postfix's 2bounce): the original is itself a notice from the null sender that
   * could not be delivered, so this one goes to that postmaster address instead.
   */
  postmaster?: string;
  recipients: DsnRecipient[];
  /** The original message as its sender wrote it (CRLF line ends), or its header block only. */
  message: Buffer;
  /** `message` is only the original's header block (original.ts): never returned as a whole. */
  headersOnly?: boolean;
  /** Defaults to the current time. */
  now?: Date;
  /** Largest original returned in full (bytes, default 50 000 like Postfix's bounce_size_limit); above it headers only. */
  returnLimit?: number;
}

export interface DsnMessage {
  /** Always the null sender: a notice must never cause another notice. */
  sender: '';
  /** The original envelope sender. */
  recipient: string;
  /** The complete notice, CRLF line ends, ending with CRLF, no line over 998 octets. */
  body: Buffer;
  /** The body holds 8-bit octets: send with BODY=8BITMIME. */
  eightBit: boolean;
  /** RFC 6533 global types were used (UTF-8 in header fields): send with SMTPUTF8. */
  smtputf8: boolean;
  /** The Message-ID header's value, for logs. */
  messageId: string;
  /** What the third part carries: the whole original, or its header block only. */
  returned: 'message' | 'headers';
}
