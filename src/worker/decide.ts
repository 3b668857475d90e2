/**
 * The per-message decision: gather the facts, let the policy decide per recipient, and split the
 * recipients into groups the worker can act on now: hold, bounce, delete, header edits, redirects,
 * copies, subject commands removed. Transforms (sign, encrypt, decrypt) arrive with their issues;
 * until then the one thing this stage must never do is send in clear what the policy says must be
 * encrypted — such recipients are held or bounced with the reason.
 */
import type { Config } from '../config/types.js';
import type { Envelope } from '../core/index.js';
import { issueFromCa, type KeyStore } from '../keystore/index.js';
import { generatePgpKey } from '../openpgp/index.js';
import type { Logger } from '../log/index.js';
import { editHeaders, messageFacts, subjectCommands, type HeaderEdits } from '../mime/index.js';
import { describePlan, encryptionOutcome, evaluate, type Action, type CommandName, type CompiledPolicy, type Directory, type PartyFacts, type RecipientPlan } from '../policy/index.js';
import type { ClaimedEntry, HeldDraft, OutgoingDraft } from '../spool/index.js';
import { partyFacts } from './policy-facts.js';

export interface PolicyContext {
  config: Config;
  policy: CompiledPolicy;
  store: KeyStore;
  directory: Directory;
}

export interface Decision {
  drafts: OutgoingDraft[];
  held: HeldDraft[];
}

type Verdict = { kind: 'pass' } | { kind: 'hold'; reason: string } | { kind: 'reject'; reason: string } | { kind: 'delete'; reason: string };

/** What can be done for this recipient now. */
function verdictOf(plan: RecipientPlan, facts: Parameters<typeof encryptionOutcome>[1]): Verdict {
  for (const a of plan.actions) {
    if (a.kind === 'delete') return { kind: 'delete', reason: a.reason };
    if (a.kind === 'hold') return { kind: 'hold', reason: a.reason };
    if (a.kind === 'bounce') return { kind: 'reject', reason: a.reason };
    if (a.kind === 'encrypt' && a.require) {
      const outcome = encryptionOutcome(a, facts);
      const reason =
        outcome === 'hold' || outcome === 'bounce'
          ? `encryption required, but there is no ${a.methods.map((m) => (m === 'smime' ? 'S/MIME certificate' : 'OpenPGP key')).join(' or ')} for ${plan.recipient}`
          : `encryption required, but this version of Postern cannot encrypt yet (rule "${plan.rules.at(-1)}")`;
      return a.otherwise === 'bounce' ? { kind: 'reject', reason } : { kind: 'hold', reason };
    }
  }
  return { kind: 'pass' };
}

/** The envelope restricted to some recipients (their DSN parameters kept). */
function subset(env: Envelope, rcpts: Set<string>): Envelope {
  return { ...env, recipients: env.recipients.filter((r) => rcpts.has(r.address)) };
}

export async function decide(entry: ClaimedEntry, ctx: PolicyContext | null, log: Logger): Promise<Decision> {
  const env = entry.meta.envelope;
  if (!ctx) return { drafts: [{ envelope: env, body: entry.body }], held: [] };
  const { policy } = ctx;
  const message = messageFacts(entry.body);
  const tokens = [...policy.commands.keys()];
  const commands = subjectCommands(message.subject, tokens)
    .found.map((t) => policy.commands.get(t.toLowerCase()))
    .filter((c): c is CommandName => c !== undefined);
  const deps = { config: ctx.config, store: ctx.store, directory: ctx.directory };
  const addresses = [...new Set(env.recipients.map((r) => r.address))];
  const [sender, ...recipients] = await Promise.all([partyFacts(env.sender, 'sender', deps), ...addresses.map((a) => partyFacts(a, 'recipient', deps))]);
  const plans = evaluate(policy, { message, sender: sender!, recipients, clientTrusted: env.client.trusted, commands });
  await generateKeys(plans, sender!, ctx, entry.id, log);

  const pass = new Set<string>();
  const groups = new Map<string, { verdict: Exclude<Verdict, { kind: 'pass' }>; rcpts: Set<string> }>();
  plans.forEach((plan, i) => {
    const v = verdictOf(plan, recipients[i]!);
    // Every plan at debug (one line per recipient per message is a lot at info); the ones that
    // stop a recipient are logged below at warn.
    log.debug({ event: 'worker.plan', queueId: entry.id, recipient: plan.recipient, direction: plan.direction, rules: plan.rules, plan: describePlan(plan), verdict: v.kind }, 'policy decided');
    if (v.kind === 'pass') return pass.add(plan.recipient);
    const key = `${v.kind}\0${v.reason}`;
    const g = groups.get(key) ?? { verdict: v, rcpts: new Set<string>() };
    g.rcpts.add(plan.recipient);
    groups.set(key, g);
  });

  const drafts: OutgoingDraft[] = [];
  const held: HeldDraft[] = [];
  // Subject commands are instructions to Postern, not part of the mail: removed before delivery.
  const cleaned = commands.length && env.client.trusted ? subjectCommands(message.subject, tokens).subject : null;
  // Recipients who pass, grouped by what is done to their copy (headers edited, redirected).
  const byEdit = new Map<string, { edits: HeaderEdits; redirect: string[] | null; rcpts: Set<string> }>();
  plans.forEach((plan) => {
    if (!pass.has(plan.recipient)) return;
    const add: [string, string][] = [];
    const remove: string[] = [];
    let redirect: string[] | null = null;
    for (const a of plan.actions) {
      if (a.kind === 'add_header') add.push([a.name, a.value]);
      else if (a.kind === 'remove_header') remove.push(...a.names);
      else if (a.kind === 'redirect') redirect = a.to;
    }
    const edits: HeaderEdits = { add, remove, ...(cleaned !== null ? { set: [['Subject', cleaned]] as [string, string][] } : {}) };
    const key = JSON.stringify([edits, redirect]);
    const g = byEdit.get(key) ?? { edits, redirect, rcpts: new Set<string>() };
    g.rcpts.add(plan.recipient);
    byEdit.set(key, g);
  });
  for (const { edits, redirect, rcpts } of byEdit.values()) {
    const changed = (edits.add?.length ?? 0) + (edits.remove?.length ?? 0) + (edits.set?.length ?? 0) > 0;
    const body = changed ? editHeaders(entry.body, edits) : entry.body;
    if (redirect) log.info({ event: 'worker.redirected', queueId: entry.id, recipients: [...rcpts], to: redirect }, 'redirected by policy');
    drafts.push({ envelope: redirect ? { ...env, recipients: redirect.map((address) => ({ address })) } : subset(env, rcpts), body });
  }
  // Copies (an archive, a supervisor) get the message as it arrived, once per address.
  const copies = [...new Set(plans.flatMap((p) => p.actions.flatMap((a) => (a.kind === 'copy' ? a.to : []))))];
  if (copies.length) {
    drafts.push({ envelope: { ...env, recipients: copies.map((address) => ({ address, notify: ['NEVER' as const] })) }, body: entry.body, notes: { copyOf: entry.id } });
    log.info({ event: 'worker.copied', queueId: entry.id, to: copies }, 'copied by policy');
  }
  for (const { verdict, rcpts } of groups.values()) {
    if (verdict.kind === 'delete') {
      log.warn({ event: 'worker.deleted', queueId: entry.id, recipients: [...rcpts], reason: verdict.reason }, 'deleted by policy');
    } else if (verdict.kind === 'reject') {
      // The relay turns this into a failure for these recipients and a bounce to the sender.
      drafts.push({ envelope: subset(env, rcpts), body: entry.body, notes: { reject: verdict.reason } });
    } else {
      held.push({ envelope: subset(env, rcpts), body: entry.body, reason: verdict.reason });
      log.warn({ event: 'worker.held', queueId: entry.id, recipients: [...rcpts], reason: verdict.reason }, 'held by policy');
    }
  }
  return { drafts, held };
}

/**
 * generate_keys: an internal sender without keys gets them now — an S/MIME certificate from the
 * internal CA and/or an OpenPGP key — so this and later mail can be signed. A failure (no CA yet)
 * is logged and the message goes on: missing keys never stop mail.
 */
async function generateKeys(plans: RecipientPlan[], sender: PartyFacts, ctx: PolicyContext, queueId: string, log: Logger): Promise<void> {
  const want = plans.flatMap((p) => p.actions).filter((a): a is Extract<Action, { kind: 'generate_keys' }> => a.kind === 'generate_keys');
  if (!want.length || !sender.internal || !sender.address) return;
  const smime = want.some((a) => a.smime) && !sender.keys.smime;
  const pgp = want.some((a) => a.pgp) && !sender.keys.pgp;
  try {
    if (smime) {
      const cert = await issueFromCa(ctx.store, ctx.config, { address: sender.address, actor: 'worker' });
      log.info({ event: 'worker.keys_generated', queueId, address: sender.address, kind: 'smime', fingerprint: cert.fingerprint }, 'S/MIME certificate issued for the sender');
    }
    if (pgp) {
      const { key } = await ctx.store.importPgpKey(await generatePgpKey({ address: sender.address }), { source: 'generated', actor: 'worker' });
      log.info({ event: 'worker.keys_generated', queueId, address: sender.address, kind: 'pgp', fingerprint: key.info.fingerprint }, 'OpenPGP key generated for the sender');
    }
  } catch (err) {
    log.error({ event: 'worker.keys_not_generated', queueId, address: sender.address, reason: (err as Error).message }, 'could not generate keys for the sender');
  }
}
