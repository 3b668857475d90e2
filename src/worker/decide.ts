/**
 * The per-message decision: gather the facts, let the policy decide per recipient, and split the
 * recipients into groups with identical treatment: held, bounced, deleted, or delivered — each
 * delivered group decrypted/verified, signed and encrypted as its plan says (transform.ts), its
 * header edited, maybe redirected; plus copies and subject commands removed.
 *
 * The one thing this stage must never do is send in clear what the policy says must be encrypted:
 * such recipients are held or bounced with the reason.
 */
import type { Config } from '../config/types.js';
import { inDomains, type Envelope } from '../core/index.js';
import { keepOriginal, ORIGINAL_NOTE, type KeptOriginal } from '../dsn/index.js';
import { issueFromCa, type KeyStore } from '../keystore/index.js';
import { generatePgpKey } from '../openpgp/index.js';
import type { Logger } from '../log/index.js';
import { addressesOf, cryptoMethods, editHeaders, messageFacts, subjectCommands, type HeaderEdits } from '../mime/index.js';
import { describePlan, encryptionOutcome, evaluate, type Action, type CommandName, type CompiledPolicy, type Directory, type PartyFacts, type RecipientPlan } from '../policy/index.js';
import type { ClaimedEntry, HeldDraft, OutgoingDraft } from '../spool/index.js';
import type { CryptoKeys } from './crypto-keys.js';
import type { PgpKeys } from './pgp-keys.js';
import { adminAlert, originalHeadersOf, senderNotice, wantsSenderNotice, type RecipientOutcome } from './notices.js';
import { fetchMissingKeys, learnAutocrypt, type KeySources } from './key-sources.js';
import { memoLookups, partyFacts } from './policy-facts.js';
import { sealedOnce, transformGroup, type CryptoChoice, type MessageMemo } from './transform.js';

export interface PolicyContext {
  config: Config;
  policy: CompiledPolicy;
  store: KeyStore;
  directory: Directory;
  /** Prepared keys (shared across policy reloads); without them nothing is signed or encrypted. */
  keys?: CryptoKeys;
  pgpKeys?: PgpKeys;
  /** LDAP certificates and OpenPGP key discovery for recipients the store has no key for. */
  sources?: KeySources;
}

export interface Decision {
  drafts: OutgoingDraft[];
  held: HeldDraft[];
}

type Verdict = { kind: 'pass'; choice: CryptoChoice } | { kind: 'hold'; reason: string } | { kind: 'reject'; reason: string } | { kind: 'delete'; reason: string };

const METHOD_NAMES = { smime: 'S/MIME certificate', pgp: 'OpenPGP key' } as const;

/** What can be done for this recipient now, and with which crypto. */
function verdictOf(plan: RecipientPlan, recipient: PartyFacts, sender: PartyFacts, canCrypt: boolean, inside: 'smime' | 'pgp' | null, pgpFiles: boolean, sealed: boolean): Verdict {
  const choice: CryptoChoice = { open: null, sign: null, encrypt: null, sendKeys: null };
  let signWith: 'smime' | 'pgp' | 'auto' | null = null;
  for (const a of plan.actions) {
    if (a.kind === 'delete') return { kind: 'delete', reason: a.reason };
    if (a.kind === 'hold') return { kind: 'hold', reason: a.reason };
    if (a.kind === 'bounce') return { kind: 'reject', reason: a.reason };
    // Opening only what is there: plain mail keeps one group for all its recipients.
    // OpenPGP attachments and armor in HTML are only looked for when a rule asks for them.
    const pgpExtras = a.kind === 'decrypt' && ((a.pgp_attachments && pgpFiles) || a.pgp_inline_html);
    const method = inside ?? (pgpExtras ? 'pgp' : null);
    if ((a.kind === 'decrypt' || a.kind === 'verify') && method && canCrypt) {
      choice.open ??= { decrypt: false, verify: false, method };
      choice.open[a.kind] = true;
      // Decrypted content is verified too: what was inside is only worth as much as its signature.
      if (a.kind === 'decrypt') choice.open.verify = true;
      if (a.kind === 'decrypt' && a.pgp_attachments && method === 'pgp') choice.open.pgpAttachments = true;
      if (a.kind === 'decrypt' && a.pgp_inline_html && method === 'pgp') choice.open.pgpInlineHtml = true;
    }
    if (a.kind === 'sign') signWith = a.method;
    if (a.kind === 'send_keys') choice.sendKeys = { smime: a.smime || (choice.sendKeys?.smime ?? false), pgp: a.pgp || (choice.sendKeys?.pgp ?? false) };
    if (a.kind === 'encrypt') {
      const outcome = encryptionOutcome(a, recipient);
      const fail = (reason: string): Verdict => (a.otherwise === 'bounce' ? { kind: 'reject', reason } : { kind: 'hold', reason });
      if ((outcome === 'smime' || outcome === 'pgp') && canCrypt) {
        choice.encrypt = outcome;
        if (outcome === 'smime' && a.smime) choice.smimeOptions = a.smime;
        if (outcome === 'pgp' && a.pgp?.inline) choice.pgpInline = true;
        if (a.header_protection) choice.headerProtection = a.header_protection;
      } else if (outcome === 'smime' || outcome === 'pgp') {
        if (a.require) return fail(`encryption required for ${plan.recipient}, but the keys are not loaded (rule "${plan.rules.at(-1)}")`);
      } else if ((outcome === 'hold' || outcome === 'bounce') && !(sealed && !plan.actions.some((x) => x.kind === 'decrypt'))) {
        // (Ciphertext the sender's client made, which nothing here decrypts, is encrypted already: it passes.)
        return fail(`encryption required, but there is no ${a.methods.map((m) => METHOD_NAMES[m]).join(' or ')} for ${plan.recipient}`);
      }
    }
  }
  // "sign" means "when the sender has a key"; auto signs the way the message is encrypted (an
  // OpenPGP signature inside OpenPGP encryption), else with S/MIME, else with OpenPGP.
  if (signWith && canCrypt) {
    const has = sender.keys;
    if (signWith === 'smime') choice.sign = has.smime ? 'smime' : null;
    else if (signWith === 'pgp') choice.sign = has.pgp ? 'pgp' : null;
    else choice.sign = choice.encrypt === 'pgp' && has.pgp ? 'pgp' : has.smime ? 'smime' : has.pgp ? 'pgp' : null;
  }
  return { kind: 'pass', choice };
}

/** The envelope restricted to some recipients (their DSN parameters kept). */
function subset(env: Envelope, rcpts: Set<string>): Envelope {
  return { ...env, recipients: env.recipients.filter((r) => rcpts.has(r.address)) };
}

/** Only Postern states results: the X-Postern-* fields a message arrives with are removed. */
function ownHeaders(message: ReturnType<typeof messageFacts>): string[] {
  return [...message.headers.keys()].filter((n) => n.startsWith('x-postern-'));
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
  const addresses = [...new Set(env.recipients.map((r) => r.address))];
  const io = { config: ctx.config, store: ctx.store, log, queueId: entry.id };
  if (ctx.config.discovery.autocrypt) await learnAutocrypt(message.headers, addressesOf(message.headers.get('from')?.[0] ?? '')[0] ?? '', io);
  // Before the look-ups are memoised: what the directory or discovery finds must count.
  if (ctx.sources) await fetchMissingKeys(addresses, ctx.sources, io);
  const lookups = memoLookups(ctx.store);
  const deps = { config: ctx.config, store: lookups, directory: ctx.directory };
  const [sender, ...recipients] = await Promise.all([partyFacts(env.sender, 'sender', deps), ...addresses.map((a) => partyFacts(a, 'recipient', deps))]);
  const plans = evaluate(policy, { message, sender: sender!, recipients, clientTrusted: env.client.trusted, commands });
  const skipped = plans.flatMap((p) => p.skipped ?? []);
  if (skipped.length) {
    log.info({ event: 'worker.sign_skipped', queueId: entry.id, sender: env.sender, client: env.client.address, reason: skipped[0]!.reason }, 'not signed: the client is not trusted');
  }
  await generateKeys(plans, sender!, ctx, entry.id, log);

  const strip = ownHeaders(message);
  // Subject commands are instructions to Postern, not part of the mail: removed before delivery —
  // before the transforms, so that header protection copies the Subject without them, and an
  // encrypted message's hidden Subject is not written outside again afterwards.
  const cleaned = commands.length && env.client.trusted ? subjectCommands(message.subject, tokens).subject : null;
  const base = strip.length || cleaned !== null ? editHeaders(entry.body, { remove: strip, ...(cleaned !== null ? { set: [['Subject', cleaned]] as [string, string][] } : {}) }) : entry.body;
  const memo: MessageMemo = {};
  // What the message carries decides how it is opened: the outermost layer's kind. Crypto only
  // below the top (a signed part in a mixed, armour in an attachment) is opened too, to be
  // reported — looked for only when some plan opens mail (not on the outbound hot path).
  const opens = plans.some((p) => p.actions.some((a) => a.kind === 'decrypt' || a.kind === 'verify'));
  const inside = message.encrypted ?? message.signed ?? (opens ? (cryptoMethods(entry.body)[0] ?? null) : null);
  // Whole-body ciphertext made by the sender's client matters only to a rule requiring encryption here.
  const requires = plans.some((p) => p.actions.some((a) => a.kind === 'encrypt' && a.require));
  const sealed = requires ? (await sealedOnce(base, memo)) !== null : false;
  const pgpFiles = message.attachments.some((a) => /\.(pgp|gpg|asc)$/i.test(a.name));
  const verdicts = new Map<string, Verdict>();
  const groups = new Map<string, { verdict: Exclude<Verdict, { kind: 'pass' }>; rcpts: Set<string> }>();
  plans.forEach((plan, i) => {
    const v = verdictOf(plan, recipients[i]!, sender!, ctx.keys !== undefined && ctx.pgpKeys !== undefined, inside, pgpFiles, sealed);
    // Every plan at debug (one line per recipient per message is a lot at info); the ones that
    // stop a recipient are logged below at warn.
    log.debug({ event: 'worker.plan', queueId: entry.id, recipient: plan.recipient, direction: plan.direction, rules: plan.rules, plan: describePlan(plan), verdict: v.kind }, 'policy decided');
    verdicts.set(plan.recipient, v);
    if (v.kind === 'pass') return;
    const key = `${v.kind}\0${v.reason}`;
    const g = groups.get(key) ?? { verdict: v, rcpts: new Set<string>() };
    g.rcpts.add(plan.recipient);
    groups.set(key, g);
  });

  const drafts: OutgoingDraft[] = [];
  const held: HeldDraft[] = [];
  // Recipients who pass, grouped by what is done to their copy (crypto, headers edited, redirected).
  const byTreatment = new Map<string, { choice: CryptoChoice; edits: HeaderEdits; redirect: string[] | null; rcpts: Set<string> }>();
  plans.forEach((plan) => {
    const v = verdicts.get(plan.recipient)!;
    if (v.kind !== 'pass') return;
    const add: [string, string][] = [];
    const remove: string[] = [];
    let redirect: string[] | null = null;
    for (const a of plan.actions) {
      if (a.kind === 'add_header') add.push([a.name, a.value]);
      else if (a.kind === 'remove_header') remove.push(...a.names);
      else if (a.kind === 'redirect') redirect = a.to;
    }
    const edits: HeaderEdits = { add, remove };
    const key = JSON.stringify([v.choice, edits, redirect]);
    const g = byTreatment.get(key) ?? { choice: v.choice, edits, redirect, rcpts: new Set<string>() };
    g.rcpts.add(plan.recipient);
    byTreatment.set(key, g);
  });
  // Autocrypt Level 1: our internal senders' keys travel with their outgoing mail.
  const internal = (a: string) => inDomains(a, ctx.config.internal_domains);
  const outboundAll = (e: Envelope) => e.recipients.every((r) => !internal(r.address));
  // Only for mail our own users send (a trusted client), as signatures: an outsider claiming an
  // internal sender gets no key of theirs attached either.
  const autocrypt = ctx.pgpKeys && sender!.internal && env.client.trusted && ctx.config.discovery.autocrypt ? await ctx.pgpKeys.autocrypt(env.sender, lookups) : null;
  /** What happened to each recipient, for notify_sender. */
  const outcomes = new Map<string, RecipientOutcome>();
  for (const { choice, edits, redirect, rcpts } of byTreatment.values()) {
    const envelope = redirect ? { ...env, recipients: redirect.map((address) => ({ address })) } : subset(env, rcpts);
    let body = base;
    let resultFields: [string, string][] = [];
    let decrypted = false;
    let kept: KeptOriginal | null = null;
    if (ctx.keys && ctx.pgpKeys && (choice.open || choice.sign || choice.encrypt || choice.sendKeys)) {
      const r = await transformGroup(base, choice, envelope.recipients.map((x) => x.address), memo, { config: ctx.config, store: ctx.store, keys: ctx.keys, pgp: ctx.pgpKeys, lookups, log, queueId: entry.id, sender: env.sender });
      if (r.kind === 'hold') {
        held.push({ envelope: subset(env, rcpts), body: entry.body, reason: r.reason });
        log.warn({ event: 'worker.held', queueId: entry.id, recipients: [...rcpts], reason: r.reason }, 'held: encryption could not be done');
        for (const a of rcpts) outcomes.set(a, { recipient: a, delivery: 'held', encryption: null, signed: false, reason: r.reason });
        continue;
      }
      body = r.body;
      resultFields = r.headers;
      decrypted = r.opened?.encryption?.status === 'decrypted';
      // A bounce returns what the sender wrote, never this copy (dsn/original.ts).
      if (r.body !== base) kept = keepOriginal(entry.body, envelope, { limit: ctx.config.relay.bounce_size_limit, headersOnly: decrypted });
      for (const a of rcpts) outcomes.set(a, { recipient: a, delivery: 'sent', encryption: r.encryption, signed: r.signed });
    } else {
      for (const a of rcpts) outcomes.set(a, { recipient: a, delivery: 'sent', encryption: null, signed: false });
    }
    const all: HeaderEdits = { ...edits, add: [...resultFields, ...(edits.add ?? [])], ...(autocrypt && outboundAll(envelope) ? { addFolded: [['Autocrypt', autocrypt]] as [string, string][] } : {}) };
    const changed = (all.add?.length ?? 0) + (all.remove?.length ?? 0) + (all.set?.length ?? 0) + (all.addFolded?.length ?? 0) > 0;
    if (changed) body = editHeaders(body, all);
    if (redirect) log.info({ event: 'worker.redirected', queueId: entry.id, recipients: [...rcpts], to: redirect }, 'redirected by policy');
    const notes = { ...(decrypted ? { decrypted: true } : {}), ...(kept ? { [ORIGINAL_NOTE]: kept } : {}) };
    drafts.push({ envelope, body, ...(decrypted || kept ? { notes } : {}) });
  }
  // Copies (an archive, a supervisor) get the message as it arrived, once per address.
  const copies = [...new Set(plans.flatMap((p) => p.actions.flatMap((a) => (a.kind === 'copy' ? a.to : []))))];
  if (copies.length) {
    drafts.push({ envelope: { ...env, recipients: copies.map((address) => ({ address, notify: ['NEVER' as const] })) }, body: entry.body, notes: { copyOf: entry.id } });
    log.info({ event: 'worker.copied', queueId: entry.id, to: copies }, 'copied by policy');
  }
  for (const { verdict, rcpts } of groups.values()) {
    const delivery = verdict.kind === 'delete' ? 'deleted' : verdict.kind === 'reject' ? 'bounced' : 'held';
    for (const a of rcpts) outcomes.set(a, { recipient: a, delivery, encryption: null, signed: false, reason: verdict.reason });
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
  // A report or an alert that cannot be written must not stop the mail it is about.
  try {
    drafts.push(...notices(entry, plans, outcomes, ctx, log));
  } catch (err) {
    log.error({ event: 'worker.notice_failed', queueId: entry.id, reason: (err as Error).message }, 'delivery report or alert not written');
  }
  return { drafts, held };
}

/**
 * notify_sender and alert: messages Postern writes itself, from the null sender (they can never
 * loop or bounce back), queued like any other output of this message.
 */
function notices(entry: ClaimedEntry, plans: RecipientPlan[], outcomes: Map<string, RecipientOutcome>, ctx: PolicyContext, log: Logger): OutgoingDraft[] {
  const env = entry.meta.envelope;
  const out: OutgoingDraft[] = [];
  const hostname = ctx.config.hostname;
  const notice = (to: string[], body: Buffer): OutgoingDraft => ({
    envelope: { sender: '', recipients: to.map((address) => ({ address, notify: ['NEVER' as const] })), client: env.client, receivedAt: env.receivedAt, ...(to.some((a) => /[^\x00-\x7f]/.test(a)) ? { smtputf8: true } : {}) },
    body,
    notes: { noticeOf: entry.id },
  });
  const original = originalHeadersOf(entry.body);
  const notify = plans.filter((p) => p.actions.some((a) => a.kind === 'notify_sender'));
  if (notify.length && wantsSenderNotice(env.sender, original)) {
    const list = notify.map((p) => outcomes.get(p.recipient)).filter((o): o is RecipientOutcome => o !== undefined);
    out.push(notice([env.sender], senderNotice({ hostname, queueId: entry.id, sender: env.sender, originalHeaders: original, outcomes: list })));
    log.info({ event: 'worker.sender_notified', queueId: entry.id, sender: env.sender }, 'delivery report queued for the sender');
  }
  // One alert per set of admin addresses, naming every recipient and rule that raised it.
  const alerts = new Map<string, { to: string[]; rules: Set<string>; recipients: RecipientOutcome[] }>();
  for (const p of plans) {
    for (const a of p.actions) {
      if (a.kind !== 'alert') continue;
      const key = [...a.to].sort().join(',');
      const g = alerts.get(key) ?? { to: a.to, rules: new Set<string>(), recipients: [] };
      p.rules.forEach((r) => g.rules.add(r));
      const o = outcomes.get(p.recipient);
      if (o && !g.recipients.includes(o)) g.recipients.push(o);
      alerts.set(key, g);
    }
  }
  for (const g of alerts.values()) {
    const reasons = [...new Set(g.recipients.map((r) => r.reason).filter((r): r is string => !!r))];
    out.push(notice(g.to, adminAlert({ hostname, queueId: entry.id, to: g.to, rules: [...g.rules], ...(reasons.length ? { reason: reasons.join('; ') } : {}), sender: env.sender, recipients: g.recipients, original: entry.body })));
    log.warn({ event: 'worker.alert', queueId: entry.id, to: g.to, rules: [...g.rules] }, 'admin alert queued');
  }
  return out;
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
      // Now it has one: this very message can be signed.
      sender.keys.smime = true;
    }
    if (pgp) {
      const { key } = await ctx.store.importPgpKey(await generatePgpKey({ address: sender.address }), { source: 'generated', actor: 'worker' });
      log.info({ event: 'worker.keys_generated', queueId, address: sender.address, kind: 'pgp', fingerprint: key.info.fingerprint }, 'OpenPGP key generated for the sender');
    }
  } catch (err) {
    log.error({ event: 'worker.keys_not_generated', queueId, address: sender.address, reason: (err as Error).message }, 'could not generate keys for the sender');
  }
}
