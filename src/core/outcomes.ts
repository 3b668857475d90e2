/**
 * The outcome catalogue: every way a recipient's mail can end (or wait) once smtpd has accepted
 * it, in one table — its class, the SMTP reply and RFC 3463 enhanced status code, the DSN
 * (RFC 3464) action and diagnostic text, the log event codes that report it and the metric that
 * will count it. The relay, dsn/ and diagnostic texts take their codes and wording from here, so
 * a mail admin can look up "held_encryption" in one place (README: "Outcomes").
 *
 * Refusals during the SMTP dialogue (relay denied, too big, smuggling) are not here: the client
 * keeps those messages, and errors.ts gives their replies.
 *
 * Texts are templates: "{name}" stands for a detail given when the outcome is rendered
 * (outcomeText); the type of the details object is derived from the template, so a missing or
 * misspelt detail is a compile error. Rendered texts are one line.
 */
import type { EventCode } from '../log/events.js';
import type { SmtpReply } from './errors.js';

export type OutcomeClass = 'delivered' | 'deferred' | 'held' | 'bounced' | 'dropped';

/** RFC 3464 2.3.3 Action, as a notice about this outcome states it. */
export type DsnAction = 'delivered' | 'relayed' | 'delayed' | 'failed';

/** Which notice (RFC 3461 NOTIFY) the relay sends for this outcome when the sender asked; null: none. */
export type NoticeKind = 'failure' | 'delay' | 'success';

export interface OutcomeSpec {
  class: OutcomeClass;
  /** SMTP basic reply code (RFC 5321 4.2). */
  code: number;
  /** RFC 3463 enhanced status code; its class digit agrees with `code`'s. */
  status: string;
  /**
   * The reply text and the DSN's Diagnostic-Code text, as a template. "{reply}": the next hop's
   * own reply line, whose codes then win over `code`/`status` (`fromReply`).
   */
  text: string;
  /** `code` and `status` are defaults: the next hop's reply line carries the real ones. */
  fromReply?: true;
  /** Action in a delivery status notification about this outcome. */
  action: DsnAction;
  /** The notice this outcome causes (when the sender's NOTIFY asks for it); null: never one. */
  notice: NoticeKind | null;
  /** The log event codes that report it (log/events.ts), first the usual one. */
  events: readonly [EventCode, ...EventCode[]];
  /** Prometheus-style series name with its labels (the export is a later issue). */
  metric: string;
  /** One line for the admin who looks the outcome up. */
  meaning: string;
}

export const OUTCOMES = {
  // delivered: the next hop (or the mailbox) has the message
  relayed: {
    class: 'delivered', code: 250, status: '2.0.0', text: '{reply}', fromReply: true, action: 'relayed', notice: 'success',
    events: ['relay.delivered'], metric: 'postern_messages_delivered_total{via="smtp"}',
    meaning: 'the next hop took the message over SMTP (it may send notices of its own)',
  },
  delivered: {
    class: 'delivered', code: 250, status: '2.0.0', text: 'delivered to maildir as {file}', action: 'delivered', notice: 'success',
    events: ['relay.delivered'], metric: 'postern_messages_delivered_total{via="maildir"}',
    meaning: 'written to the Maildir of a maildir: route; final',
  },

  // deferred: tried again per relay.retry until max_queue_lifetime
  deferred_remote: {
    class: 'deferred', code: 450, status: '4.0.0', text: '{reply}', fromReply: true, action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="remote"}',
    meaning: 'the next hop answered 4xx (or a 5xx relay.reply_rules call temporary: greylisting, rate limits)',
  },
  deferred_connect: {
    class: 'deferred', code: 451, status: '4.4.1', text: 'connect to {peer}:{port}: {error}', action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="connect"}',
    meaning: 'the next hop could not be reached (refused, timed out, no route)',
  },
  deferred_lost_connection: {
    class: 'deferred', code: 451, status: '4.4.2', text: 'lost connection with {peer}{while}', action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="connection"}',
    meaning: 'the next hop closed the connection during the SMTP conversation',
  },
  deferred_timeout: {
    class: 'deferred', code: 451, status: '4.4.2', text: 'conversation with {peer} timed out{while}', action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="timeout"}',
    meaning: 'the next hop stopped answering during the SMTP conversation',
  },
  deferred_protocol: {
    class: 'deferred', code: 451, status: '4.4.2', text: 'host {peer} violated the SMTP protocol', action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="protocol"}',
    meaning: 'the next hop answered with something that is not SMTP',
  },
  deferred_tls: {
    class: 'deferred', code: 451, status: '4.7.5', text: 'Cannot start TLS: handshake failure', action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="tls"}',
    meaning: 'the TLS handshake with the next hop failed',
  },
  deferred_tls_not_offered: {
    class: 'deferred', code: 451, status: '4.7.4', text: 'TLS is required, but was not offered by host {peer}', action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="tls_required"}',
    meaning: 'the route\'s TLS level (encrypt or stronger, or REQUIRETLS) demands TLS and the next hop does not offer STARTTLS',
  },
  deferred_tls_refused: {
    class: 'deferred', code: 451, status: '4.7.4', text: 'TLS is required, but host {peer} refused to start TLS: {reply}', action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="tls_required"}',
    meaning: 'the route\'s TLS level (encrypt or stronger, or REQUIRETLS) demands TLS and the next hop refused STARTTLS',
  },
  deferred_tls_auth: {
    class: 'deferred', code: 451, status: '4.7.5', text: '{reason} (host {peer})', action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="tls_auth"}',
    meaning: 'the route\'s TLS level (verify, dane, sts, or REQUIRETLS) demands an authenticated next hop and its certificate did not pass (untrusted CA, wrong name, TLSA mismatch)',
  },
  deferred_tls_policy: {
    class: 'deferred', code: 451, status: '4.7.5', text: '{reason}', action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="tls_policy"}',
    meaning: 'the recipient domain\'s TLS policy could not be met: a TLSA lookup failed (dane), or no MX host matches its MTA-STS policy in enforce mode',
  },
  deferred_dns: {
    class: 'deferred', code: 451, status: '4.4.3', text: 'Host or domain name not found. Name service error for name={name} type={type}: {error}', action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="dns"}',
    meaning: 'DNS gave no answer (server failure, time-out, resolver refused us)',
  },
  deferred_mx_no_address: {
    class: 'deferred', code: 451, status: '4.4.4', text: 'Host or domain name not found. Name service error for name={name} type={type}: {error}', action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="routing"}',
    meaning: 'the domain has MX records but no MX host has an address (Postfix defers this too)',
  },
  deferred_no_mx_host: {
    class: 'deferred', code: 451, status: '4.4.4', text: 'no MX host to try for {domain}', action: 'delayed', notice: 'delay',
    events: ['relay.deferred'], metric: 'postern_messages_deferred_total{reason="routing"}',
    meaning: 'the MX plan of the domain left no host to try',
  },
  deferred_local: {
    class: 'deferred', code: 451, status: '4.3.0', text: '{reason}', action: 'delayed', notice: 'delay',
    events: ['relay.deferred', 'relay.internal_error'], metric: 'postern_messages_deferred_total{reason="local"}',
    meaning: 'a local problem while delivering (maildir write failed, an internal error): fix it and the retry delivers',
  },
  deferred_no_space: {
    class: 'deferred', code: 452, status: '4.3.1', text: 'insufficient system storage', action: 'delayed', notice: null,
    events: ['worker.no_space', 'relay.no_space'], metric: 'postern_messages_deferred_total{reason="no_space"}',
    meaning: 'the spool file system is full; the message waits in place until space comes back',
  },
  deferred_temporary: {
    class: 'deferred', code: 451, status: '4.0.0', text: '{reason}', action: 'delayed', notice: null,
    events: ['worker.deferred'], metric: 'postern_messages_deferred_total{reason="worker"}',
    meaning: 'the worker met a temporary failure (a directory down, policy says defer); processed again in a minute',
  },
  deferred_store: {
    class: 'deferred', code: 451, status: '4.3.0', text: 'keystore unavailable', action: 'delayed', notice: null,
    events: ['worker.store_unavailable'], metric: 'postern_messages_deferred_total{reason="store"}',
    meaning: 'the message needs the keystore (keys, PDF passwords, mailboxes) and it cannot be reached (PostgreSQL down or failing over); never sent in clear, processed again in a minute',
  },
  deferred_transform_timeout: {
    class: 'deferred', code: 451, status: '4.3.0', text: '{reason}', action: 'delayed', notice: null,
    events: ['worker.transform_timeout'], metric: 'postern_messages_deferred_total{reason="transform_timeout"}',
    meaning: 'processing took longer than worker.transform_timeout (a look-up that never answered?); the slot was freed, processed again in a minute',
  },

  // held: in hold/, waits for an admin (`postern queue release`) and is never retried by itself
  held_policy: {
    class: 'held', code: 451, status: '4.7.1', text: '{reason}', action: 'delayed', notice: null,
    events: ['worker.held'], metric: 'postern_messages_held_total{reason="policy"}',
    meaning: 'a policy rule says hold (the reason is the rule\'s)',
  },
  held_encryption: {
    class: 'held', code: 451, status: '4.7.5', text: '{reason}', action: 'delayed', notice: null,
    events: ['worker.held'], metric: 'postern_messages_held_total{reason="encryption"}',
    meaning: 'encryption is required but cannot be done now (no usable certificate or key, or the encryption failed); never sent in clear',
  },
  held_after_errors: {
    class: 'held', code: 451, status: '4.3.0', text: '{reason}', action: 'delayed', notice: null,
    events: ['worker.held_after_errors'], metric: 'postern_messages_held_total{reason="errors"}',
    meaning: 'processing failed three times in a row (a bug this message triggers?); the reason names the error',
  },
  held_poison: {
    class: 'held', code: 451, status: '4.3.0', text: '{reason}', action: 'delayed', notice: null,
    events: ['worker.held_poison'], metric: 'postern_messages_held_total{reason="poison"}',
    meaning: 'the message crashed the worker every time it was processed, also alone',
  },
  held_limit: {
    class: 'held', code: 451, status: '4.6.0', text: '{reason}', action: 'delayed', notice: null,
    events: ['worker.limit_exceeded'], metric: 'postern_messages_held_total{reason="limit"}',
    meaning: 'the message goes past a limit against hostile mail (MIME nesting or parts, a header field, OpenPGP decompressed size, a CMS length, depth or count); the reason names it',
  },
  held_after_timeouts: {
    class: 'held', code: 451, status: '4.3.0', text: '{reason}', action: 'delayed', notice: null,
    events: ['worker.held_after_timeouts'], metric: 'postern_messages_held_total{reason="timeouts"}',
    meaning: 'processing took longer than worker.transform_timeout three times in a row',
  },
  held_no_route: {
    class: 'held', code: 451, status: '4.3.5', text: 'no relay route matches {recipient}', action: 'delayed', notice: null,
    events: ['relay.no_route'], metric: 'postern_messages_held_total{reason="no_route"}',
    meaning: 'relay.routes has no entry for the recipient: a configuration gap; fix the routes, then queue release',
  },
  held_admin: {
    class: 'held', code: 451, status: '4.3.0', text: '{reason}', action: 'delayed', notice: null,
    events: ['relay.held'], metric: 'postern_messages_held_total{reason="admin"}',
    meaning: 'held on request (postern queue hold, or the gateway\'s own hold of a poison message) while the relay had it',
  },

  // bounced: failed for good; a failure notice goes to the sender
  bounced_remote: {
    class: 'bounced', code: 550, status: '5.0.0', text: '{reply}', fromReply: true, action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="remote"}',
    meaning: 'the next hop refused the recipient or the message with a 5xx',
  },
  bounced_size: {
    class: 'bounced', code: 552, status: '5.3.4', text: 'message size {size} exceeds size limit {limit} of server {peer}', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="size"}',
    meaning: 'the message is larger than the next hop takes (its SIZE, or a 552 size refusal): it will not shrink, so no retries',
  },
  bounced_smtputf8: {
    class: 'bounced', code: 550, status: '5.6.7', text: 'SMTPUTF8 is required, but was not offered by host {peer}', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="smtputf8"}',
    meaning: 'the message needs SMTPUTF8 (a UTF-8 address) and the next hop does not offer it (RFC 6531)',
  },
  bounced_conversion: {
    // RFC 3463 X.6.3 "conversion required but prohibited": binary content (RFC 3030) that only a
    // BINARYMIME next hop may take as it is, and no faithful 7/8-bit form exists (a signed part).
    class: 'bounced', code: 554, status: '5.6.3', text: 'conversion required but prohibited: {reason}', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="conversion"}',
    meaning: 'the message is BINARYMIME, its binary content cannot be re-encoded without breaking it (a signature, an unreadable structure), and the next hop does not take BINARYMIME',
  },
  bounced_requiretls: {
    class: 'bounced', code: 550, status: '5.7.30', text: 'REQUIRETLS support required, but not offered by host {peer}', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="requiretls"}',
    meaning: 'the sender asked for REQUIRETLS (RFC 8689) and the authenticated next hop does not offer it; never sent without',
  },
  bounced_policy: {
    class: 'bounced', code: 550, status: '5.7.1', text: '{reason}', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="policy"}',
    meaning: 'a policy rule says bounce (the reason is the rule\'s)',
  },
  bounced_encryption: {
    // X.7.1 (refused by policy), not X.7.5: RFC 3463's cryptographic failure is about validating
    // or decrypting in transport, and 5.7.1 is what senders have seen for this since the start.
    class: 'bounced', code: 550, status: '5.7.1', text: '{reason}', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="encryption"}',
    meaning: 'encryption is required, cannot be done, and the rule says otherwise: bounce',
  },
  bounced_bad_domain: {
    class: 'bounced', code: 550, status: '5.1.2', text: 'invalid {what}: {domain}', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="address"}',
    meaning: 'the recipient domain is not a valid domain name or address literal',
  },
  bounced_no_domain: {
    class: 'bounced', code: 550, status: '5.1.2', text: 'Host or domain name not found. Name service error for name={name} type={type}: {error}', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="address"}',
    meaning: 'the recipient domain does not exist in DNS',
  },
  bounced_dns: {
    class: 'bounced', code: 550, status: '5.4.4', text: 'Host or domain name not found. Name service error for name={name} type={type}: {error}', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="dns"}',
    meaning: 'the next hop\'s name does not exist in DNS',
  },
  bounced_null_mx: {
    class: 'bounced', code: 556, status: '5.1.10', text: 'Domain {domain} does not accept mail (nullMX)', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="address"}',
    meaning: 'the recipient domain publishes a null MX (RFC 7505): it takes no mail',
  },
  bounced_mail_loop: {
    class: 'bounced', code: 554, status: '5.4.6', text: 'mail for {domain} loops back to myself', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="loop"}',
    meaning: 'the best MX of the domain is this gateway itself: add the domain to relay.routes',
  },
  bounced_bad_recipient: {
    class: 'bounced', code: 550, status: '5.1.3', text: 'recipient address contains line breaks', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="address"}',
    meaning: 'a maildir: route cannot write this recipient into a header safely',
  },
  bounced_bad_sender: {
    class: 'bounced', code: 550, status: '5.1.7', text: 'sender address contains line breaks', action: 'failed', notice: 'failure',
    events: ['relay.bounce'], metric: 'postern_messages_bounced_total{reason="address"}',
    meaning: 'a maildir: route cannot write this sender into Return-Path safely',
  },
  bounced_expired: {
    // Postfix reports an expired message as failed with 4.4.7 (class 4: it failed only in time).
    class: 'bounced', code: 451, status: '4.4.7', text: 'message expired in queue; last reply: {reply}', action: 'failed', notice: 'failure',
    events: ['relay.expired', 'relay.bounce'], metric: 'postern_messages_bounced_total{reason="expired"}',
    meaning: 'still deferred when relay.max_queue_lifetime ran out; the last temporary failure is named',
  },

  // dropped: deliberately not delivered, and nobody is told
  dropped_policy: {
    // Like Postfix's discard(8), which "pretends to deliver": no notice, no bounce.
    class: 'dropped', code: 250, status: '2.0.0', text: 'discarded by policy: {reason}', action: 'delivered', notice: null,
    events: ['worker.deleted'], metric: 'postern_messages_dropped_total{reason="policy"}',
    meaning: 'a policy rule says delete',
  },
} as const satisfies Record<string, OutcomeSpec>;

export type OutcomeKind = keyof typeof OUTCOMES;

/** The "{name}" slots of a template. */
type Slots<S extends string> = S extends `${string}{${infer P}}${infer R}` ? P | Slots<R> : never;

/** The details an outcome's text needs, by name. */
export type OutcomeDetails<K extends OutcomeKind> = { readonly [P in Slots<(typeof OUTCOMES)[K]['text']>]: string | number };

export const OUTCOME_KINDS = Object.keys(OUTCOMES) as OutcomeKind[];

export function isOutcomeKind(s: unknown): s is OutcomeKind {
  return typeof s === 'string' && Object.hasOwn(OUTCOMES, s);
}

export function outcomeSpec(kind: OutcomeKind): OutcomeSpec {
  return OUTCOMES[kind];
}

/**
 * A detail as it may stand in a reply line: one line (each CR or LF a space). Other characters
 * are kept — a policy's reason may be UTF-8 — and whoever writes the text out (an SMTP reply,
 * dsn/fields.ts) makes it printable for its channel.
 */
function oneLine(v: string | number): string {
  return String(v).replace(/[\r\n]/g, ' ');
}

/** The outcome's text with its details filled in; a slot without a detail stays visible as "{name}". */
export function outcomeText<K extends OutcomeKind>(kind: K, details: OutcomeDetails<K>): string {
  const d = details as Readonly<Record<string, string | number>>;
  return OUTCOMES[kind].text.replace(/\{([a-z]+)\}/g, (slot, name: string) => (Object.hasOwn(d, name) ? oneLine(d[name]!) : slot));
}

/** The outcome as an SMTP reply of our own (errors.ts' shape). */
export function outcomeReply<K extends OutcomeKind>(kind: K, details: OutcomeDetails<K>): SmtpReply {
  const s = OUTCOMES[kind];
  return { code: s.code, status: s.status, text: outcomeText(kind, details) };
}

/** "550 5.7.1 text": the reply line the relay records for a recipient. */
export function outcomeLine<K extends OutcomeKind>(kind: K, details: OutcomeDetails<K>): string {
  const r = outcomeReply(kind, details);
  return `${r.code} ${r.status} ${r.text}`;
}

/** The prose reason and its status, as the relay records its own reasons (relay/diagnostic.ts). */
export function outcomeDiagnostic<K extends OutcomeKind>(kind: K, details: OutcomeDetails<K>): { text: string; dsn: string } {
  return { text: outcomeText(kind, details), dsn: OUTCOMES[kind].status };
}

/** The usual outcome of a recipient status when nothing more precise is known. */
export function defaultOutcome(status: 'delivered' | 'deferred' | 'failed', viaSmtp = true): OutcomeKind {
  if (status === 'delivered') return viaSmtp ? 'relayed' : 'delivered';
  return status === 'deferred' ? 'deferred_remote' : 'bounced_remote';
}

/** The outcome whose notice is `notice` when nothing more precise is known (its action and status). */
export const NOTICE_OUTCOME: Readonly<Record<NoticeKind, OutcomeKind>> = { failure: 'bounced_remote', delay: 'deferred_remote', success: 'delivered' };

/** "postern_messages_bounced_total{reason=\"policy\"}" → its name and labels. */
export function parseMetric(metric: string): { name: string; labels: Record<string, string> } {
  const m = /^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})?$/.exec(metric);
  if (!m) throw new Error(`not a metric series: ${metric}`);
  const labels: Record<string, string> = {};
  for (const pair of m[2] ? m[2].split(',') : []) {
    const l = /^([a-z_][a-z0-9_]*)="([^"\\]*)"$/.exec(pair);
    if (!l) throw new Error(`bad label in ${metric}: ${pair}`);
    labels[l[1]!] = l[2]!;
  }
  return { name: m[1]!, labels };
}
