/**
 * Running a message plan (plan.ts): keys generated, the header cleaned, each delivery group put
 * through its treatment (transform.ts, the methods), header edits and results stated, copies,
 * stopped recipients held or bounced, and the sender's report and admins' alerts written. What
 * comes out is a list of drafts for outgoing/ and hold/, all written by the spool at once.
 *
 * The plan decided; this step only finds out what the world allows now: a key that went away
 * between the look-up and the run holds that group (fail closed) — it never changes a decision
 * into "in clear".
 */
import { inDomains, type Envelope } from '../core/index.js';
import { keepOriginal, ORIGINAL_NOTE, type KeptOriginal } from '../dsn/index.js';
import { isStoreUnavailable, issueFromCa } from '../keystore/index.js';
import type { Logger } from '../log/index.js';
import { editHeaders, type HeaderEdits } from '../mime/index.js';
import { generatePgpKey } from '../openpgp/index.js';
import type { ClaimedEntry, HeldDraft, OutgoingDraft } from '../spool/index.js';
import type { PolicyContext } from './decide.js';
import { adminAlert, originalHeadersOf, senderNotice, wantsSenderNotice, type RecipientOutcome } from './notices.js';
import type { SideNotice } from './methods/index.js';
import type { MessagePlan } from './plan.js';
import type { KeyLookups } from './policy-facts.js';
import { transformGroup, type MessageMemo } from './transform.js';
import { copyMethod, directionOf, type DecisionTally, type ProcessedCopy } from './tally.js';

export interface Decision {
  drafts: OutgoingDraft[];
  held: HeldDraft[];
  /** Run once drafts and held are durable (a method's bookkeeping: PDF mail's "sender told"). */
  afterCommit?: (() => Promise<void>)[];
  /** What the metrics count once the outputs are durable (tally.ts). */
  tally?: DecisionTally;
}

/** What the fact-gathering step prepared for execution. */
export interface Prepared {
  /** The message after the plan's header clean-up (own fields removed, commands out of the Subject). */
  base: Buffer;
  lookups: KeyLookups;
  memo: MessageMemo;
}

/** The envelope restricted to some recipients (their DSN parameters kept). */
function subset(env: Envelope, rcpts: readonly string[]): Envelope {
  const want = new Set(rcpts);
  return { ...env, recipients: env.recipients.filter((r) => want.has(r.address)) };
}

export async function executePlan(entry: ClaimedEntry, plan: MessagePlan, prepared: Prepared, ctx: PolicyContext, log: Logger): Promise<Decision> {
  const env = entry.meta.envelope;
  const { base, lookups, memo } = prepared;
  if (plan.generate) await generateKeys(plan.generate, env.sender, ctx, entry.id, log);

  const drafts: OutgoingDraft[] = [];
  const held: HeldDraft[] = [];
  const afterCommit: (() => Promise<void>)[] = [];
  /** Messages the methods write beside their result (PDF mail: the password to the sender). */
  const sideNotices: SideNotice[] = [];
  const internal = (a: string) => inDomains(a, ctx.config.internal_domains);
  const outboundAll = (e: Envelope) => e.recipients.every((r) => !internal(r.address));
  const autocrypt = plan.autocrypt && ctx.pgpKeys ? await ctx.pgpKeys.autocrypt(env.sender, lookups) : null;
  /** What happened to each recipient, for notify_sender and alerts. */
  const outcomes = new Map<string, RecipientOutcome>();
  const directions = new Map(plan.policy.map((p) => [p.recipient, p.direction]));
  const processed: ProcessedCopy[] = [];
  for (const d of plan.deliveries) {
    let method: ProcessedCopy['method'] = 'clear';
    const { treatment: choice, edits, redirect } = d;
    const envelope = redirect ? { ...env, recipients: redirect.map((address) => ({ address })) } : subset(env, d.recipients);
    let body = base;
    let resultFields: [string, string][] = [];
    let decrypted = false;
    let kept: KeptOriginal | null = null;
    if (ctx.keys && ctx.pgpKeys && (choice.open || choice.sign || choice.encrypt || choice.sendKeys)) {
      const r = await transformGroup(base, choice, envelope.recipients.map((x) => x.address), memo, { config: ctx.config, store: ctx.store, portal: ctx.portal, keys: ctx.keys, pgp: ctx.pgpKeys, lookups, log, queueId: entry.id, sender: env.sender });
      if (r.kind === 'hold') {
        const heldAs = r.outcome ?? 'held_encryption';
        held.push({ envelope: subset(env, d.recipients), body: entry.body, reason: r.reason, heldAs });
        log.warn({ event: 'worker.held', queueId: entry.id, outcome: heldAs, recipients: d.recipients, reason: r.reason }, heldAs === 'held_limit' ? 'held: the message goes past a limit' : 'held: encryption could not be done');
        for (const a of d.recipients) outcomes.set(a, { recipient: a, delivery: 'held', encryption: null, signed: false, reason: r.reason });
        continue;
      }
      body = r.body;
      resultFields = r.headers;
      if (r.notices) sideNotices.push(...r.notices);
      if (r.afterCommit) afterCommit.push(...r.afterCommit);
      decrypted = r.opened?.encryption?.status === 'decrypted';
      method = copyMethod({ encryption: r.encryption, signedWith: r.signed ? choice.sign : null, decryptedFrom: decrypted ? (choice.open?.method ?? null) : null });
      // A bounce returns what the sender wrote, never this copy (dsn/original.ts).
      if (r.body !== base) kept = keepOriginal(entry.body, envelope, { limit: ctx.config.relay.bounce_size_limit, headersOnly: decrypted });
      for (const a of d.recipients) outcomes.set(a, { recipient: a, delivery: 'sent', encryption: r.encryption, signed: r.signed });
    } else {
      for (const a of d.recipients) outcomes.set(a, { recipient: a, delivery: 'sent', encryption: null, signed: false });
    }
    const all: HeaderEdits = { ...edits, add: [...resultFields, ...(edits.add ?? [])], ...(autocrypt && outboundAll(envelope) ? { addFolded: [['Autocrypt', autocrypt]] as [string, string][] } : {}) };
    const changed = (all.add?.length ?? 0) + (all.remove?.length ?? 0) + (all.set?.length ?? 0) + (all.addFolded?.length ?? 0) > 0;
    if (changed) body = editHeaders(body, all);
    if (redirect) log.info({ event: 'worker.redirected', queueId: entry.id, recipients: d.recipients, to: redirect }, 'redirected by policy');
    const notes = { ...(decrypted ? { decrypted: true } : {}), ...(kept ? { [ORIGINAL_NOTE]: kept } : {}) };
    drafts.push({ envelope, body, key: `deliver:${d.key}`, ...(decrypted || kept ? { notes } : {}) });
    processed.push({ method, direction: directionOf(d.recipients, directions), recipients: d.recipients.length });
  }
  // Copies (an archive, a supervisor) get the message as it arrived, once per address.
  if (plan.copies.length) {
    drafts.push({ envelope: { ...env, recipients: plan.copies.map((address) => ({ address, notify: ['NEVER' as const] })) }, body: entry.body, key: 'copy', notes: { copyOf: entry.id } });
    log.info({ event: 'worker.copied', queueId: entry.id, to: plan.copies }, 'copied by policy');
  }
  for (const s of plan.stopped) {
    const delivery = s.kind === 'delete' ? 'deleted' : s.kind === 'reject' ? 'bounced' : 'held';
    for (const a of s.recipients) outcomes.set(a, { recipient: a, delivery, encryption: null, signed: false, reason: s.reason });
    if (s.kind === 'delete') {
      log.warn({ event: 'worker.deleted', queueId: entry.id, outcome: s.outcome, recipients: s.recipients, reason: s.reason }, 'deleted by policy');
    } else if (s.kind === 'reject') {
      // The relay turns this into a failure for these recipients and a bounce to the sender.
      drafts.push({ envelope: subset(env, s.recipients), body: entry.body, key: 'reject', notes: { reject: s.reason, ...(s.outcome === 'bounced_encryption' || s.outcome === 'bounced_conversion' ? { rejectAs: s.outcome } : {}) } });
    } else {
      held.push({ envelope: subset(env, s.recipients), body: entry.body, reason: s.reason, heldAs: s.outcome === 'held_encryption' || s.outcome === 'held_limit' ? s.outcome : 'held_policy' });
      log.warn({ event: 'worker.held', queueId: entry.id, outcome: s.outcome, recipients: s.recipients, reason: s.reason }, s.outcome === 'held_encryption' ? 'held: encryption required, cannot be done' : 'held by policy');
    }
  }
  // A report or an alert that cannot be written must not stop the mail it is about.
  try {
    drafts.push(...notices(entry, plan, outcomes, sideNotices, ctx, log));
  } catch (err) {
    log.error({ event: 'worker.notice_failed', queueId: entry.id, reason: (err as Error).message }, 'delivery report or alert not written');
  }
  const dropped = plan.stopped.filter((s) => s.kind === 'delete').reduce((n, s) => n + s.recipients.length, 0);
  return { drafts, held, ...(afterCommit.length ? { afterCommit } : {}), tally: { processed, dropped } };
}

/**
 * notify_sender and alert: messages Postern writes itself, from the null sender (they can never
 * loop or bounce back), queued like any other output of this message.
 */
function notices(entry: ClaimedEntry, plan: MessagePlan, outcomes: Map<string, RecipientOutcome>, side: readonly SideNotice[], ctx: PolicyContext, log: Logger): OutgoingDraft[] {
  const env = entry.meta.envelope;
  const out: OutgoingDraft[] = [];
  const hostname = ctx.config.hostname;
  const notice = (key: string, to: string[], body: Buffer): OutgoingDraft => ({
    envelope: { sender: '', recipients: to.map((address) => ({ address, notify: ['NEVER' as const] })), client: env.client, receivedAt: env.receivedAt, ...(to.some((a) => /[^\x00-\x7f]/.test(a)) ? { smtputf8: true } : {}) },
    body,
    key,
    notes: { noticeOf: entry.id },
  });
  for (const n of side) out.push(notice(`notice:${n.key}`, n.to, n.body));
  const original = originalHeadersOf(entry.body);
  if (plan.notifySender.length && wantsSenderNotice(env.sender, original)) {
    const list = plan.notifySender.map((r) => outcomes.get(r)).filter((o): o is RecipientOutcome => o !== undefined);
    out.push(notice('notice:sender', [env.sender], senderNotice({ hostname, queueId: entry.id, sender: env.sender, originalHeaders: original, outcomes: list })));
    log.info({ event: 'worker.sender_notified', queueId: entry.id, sender: env.sender }, 'delivery report queued for the sender');
  }
  // One alert per set of admin addresses, naming every recipient and rule that raised it.
  for (const a of plan.alerts) {
    const recipients = a.recipients.map((r) => outcomes.get(r)).filter((o): o is RecipientOutcome => o !== undefined);
    const reasons = [...new Set(recipients.map((r) => r.reason).filter((r): r is string => !!r))];
    out.push(notice(`notice:alert:${[...a.to].sort().join(',')}`, a.to, adminAlert({ hostname, queueId: entry.id, to: a.to, rules: a.rules, ...(reasons.length ? { reason: reasons.join('; ') } : {}), sender: env.sender, recipients, original: entry.body })));
    log.warn({ event: 'worker.alert', queueId: entry.id, to: a.to, rules: a.rules }, 'admin alert queued');
  }
  return out;
}

/**
 * generate_keys: an internal sender without keys gets them now — an S/MIME certificate from the
 * internal CA and/or an OpenPGP key — so this and later mail can be signed. A failure (no CA yet)
 * is logged and the message goes on: missing keys never stop mail.
 */
async function generateKeys(want: { smime: boolean; pgp: boolean }, address: string, ctx: PolicyContext, queueId: string, log: Logger): Promise<void> {
  try {
    if (want.smime) {
      const cert = await issueFromCa(ctx.store, ctx.config, { address, actor: 'worker' });
      log.info({ event: 'worker.keys_generated', queueId, address, kind: 'smime', fingerprint: cert.fingerprint }, 'S/MIME certificate issued for the sender');
    }
    if (want.pgp) {
      const { key } = await ctx.store.importPgpKey(await generatePgpKey({ address }), { source: 'generated', actor: 'worker' });
      log.info({ event: 'worker.keys_generated', queueId, address, kind: 'pgp', fingerprint: key.info.fingerprint }, 'OpenPGP key generated for the sender');
    }
  } catch (err) {
    // No store now is not "no CA": the message waits, and its keys are made when it answers.
    if (isStoreUnavailable(err)) throw err;
    log.error({ event: 'worker.keys_not_generated', queueId, address, reason: (err as Error).message }, 'could not generate keys for the sender');
  }
}
