/**
 * One recipient group of an entry to its next hop, and what its answers become: status records
 * for the entry, and the log lines (relay.delivered, relay.bounce, relay.deferred) with the
 * reason as Postfix words it, its dsn= status and its outcome (core/outcomes.ts), as an admin greps
 * a Postfix log for them.
 */
import { defaultOutcome, OUTCOMES, type OutcomeKind } from '../core/index.js';
import { countOutcome, observeDelivery, type Logger } from '../log/index.js';
import { enhancedStatus } from '../dsn/index.js';
import { rangeSource, type OpenEntry, type RecipientRecord } from '../spool/index.js';
import type { ReplyClassifier } from './classify.js';
import type { Delivery } from './deliver.js';
import type { RecipientOutcome } from './outcome.js';
import { describeTarget, type RecipientGroup } from './routes.js';
import { describeTls } from './tls-peer.js';
import { tlsRequiredNo } from './tls-required.js';

export interface GroupContext {
  delivery: Delivery;
  classifier: ReplyClassifier;
  log: Logger;
}

export const recordOf = (o: RecipientOutcome, at: string): RecipientRecord => ({
  t: 'rcpt',
  at,
  rcpt: o.recipient,
  status: o.status,
  reply: o.reply,
  ...(o.dsn ? { dsn: o.dsn } : {}),
  ...(o.remote ? { remote: o.remote } : {}),
  ...(o.dsnPassed ? { dsnPassed: true } : {}),
  ...(o.tls ? { tls: describeTls(o.tls) } : {}),
});

const CLASS_OF = { delivered: 'delivered', deferred: 'deferred', failed: 'bounced' } as const;

/** The catalogue entry of an outcome: the one it names, or its status's usual one. */
export function kindOf(o: Pick<RecipientOutcome, 'kind' | 'status' | 'remote'>): OutcomeKind {
  // A kind that no longer fits the status (the classification turned a failure into a deferral) is not used.
  if (o.kind && OUTCOMES[o.kind].class === CLASS_OF[o.status]) return o.kind;
  return defaultOutcome(o.status, o.status !== 'delivered' || o.remote !== undefined);
}

/** The enhanced status of an outcome: ours, or the one in the next hop's reply. */
export function dsnOf(o: Pick<RecipientOutcome, 'dsn' | 'reply' | 'status' | 'kind' | 'remote'>): string {
  return o.dsn ?? enhancedStatus(o.reply, OUTCOMES[kindOf(o)].status);
}

export async function deliverGroup(ctx: GroupContext, entry: OpenEntry, g: RecipientGroup, attemptNo: number): Promise<RecipientOutcome[]> {
  const { log } = ctx;
  const started = Date.now();
  const queueId = entry.meta.id;
  const env = entry.meta.envelope;
  const to = g.domain ? `${describeTarget(g.target)} ${g.domain}` : describeTarget(g.target);
  // A large entry's body streams from its file range (spool stream.ts); small ones are in memory.
  const body = entry.range ? rangeSource(entry.range) : entry.body;
  // Only the domain's published policies can be set aside by the header: no need to read it otherwise.
  const published = g.target.kind === 'mx' && (g.target.tls === 'dane' || g.target.tls === 'sts');
  const raw = await ctx.delivery.deliver(g.target, g.domain, {
    queueId,
    sender: env.sender,
    recipients: g.recipients,
    body,
    eightBit: env.body === '8BITMIME',
    ...(env.body === 'BINARYMIME' ? { binary: true } : {}),
    ...(env.requireTls ? { requireTls: true } : {}),
    ...(published && !env.requireTls && (await tlsRequiredNo(body)) ? { tlsOptional: true } : {}),
    ...(env.smtputf8 ? { smtputf8: true } : {}),
    dsn: env,
  });
  const outcomes = raw.map((o) => ctx.classifier.classify(o));
  const ms = Date.now() - started;
  const name = entry.name;
  const by = (st: RecipientOutcome['status']) => outcomes.filter((o) => o.status === st);
  const delivered = by('delivered');
  const failed = by('failed');
  const deferred = by('deferred');
  if (delivered.length) {
    const tls = delivered[0]!.tls;
    // Postfix's "Verified TLS connection established …: TLSv1.3 with cipher …", on the delivery's line.
    log.info({ event: 'relay.delivered', queueId, name, to, outcome: kindOf(delivered[0]!), recipients: delivered.length, ms, reply: delivered[0]!.reply, tls: tls ? describeTls(tls) : 'none' }, 'delivered');
  }
  if (failed.length) {
    const recipients = failed.map((o) => ({ address: o.recipient, outcome: kindOf(o), dsn: dsnOf(o), reply: o.reply, ...(o.note ? { note: o.note } : {}) }));
    log.warn({ event: 'relay.bounce', queueId, name, to, recipients, ms }, 'recipients rejected permanently');
  }
  if (deferred.length) {
    const first = deferred[0]!;
    const note = deferred.find((o) => o.note)?.note;
    log.warn(
      { event: 'relay.deferred', queueId, name, to, recipients: deferred.length, outcome: kindOf(first), dsn: dsnOf(first), reason: first.reply, attempt: attemptNo, ms, ...(note ? { note } : {}) },
      'delivery deferred',
    );
  }
  return outcomes;
}

/**
 * The metrics of one attempt's answers (log/metrics.ts), counted once they are final for this
 * attempt: a deferral past the queue lifetime is the bounce it becomes, and each recipient
 * delivered observes its time since arrival.
 */
export function countAttempt(outcomes: readonly RecipientOutcome[], expired: boolean, receivedMs: number, nowMs: number): void {
  for (const o of outcomes) {
    countOutcome(o.status === 'deferred' && expired ? 'bounced_expired' : kindOf(o));
    if (o.status === 'delivered') observeDelivery((nowMs - receivedMs) / 1000);
  }
}
