/**
 * The message plan: what the worker will do with one message, decided from facts gathered
 * beforehand (facts.ts) and nothing else — no I/O, no clock, no keys. The worker executes exactly
 * this (execute.ts), and `postern policy explain` prints exactly this (describePlan), so an admin
 * reads the same answer the mail gets.
 *
 * Per recipient the policy's plan (policy/evaluate.ts) becomes a verdict: stopped (held, bounced,
 * deleted, with the reason) or delivered with a treatment — which methods open, sign, encrypt —
 * plus header edits and redirection. Recipients with the same treatment form one delivery group:
 * one transform run, one outgoing entry, named by its content (so a re-run that decides otherwise
 * replaces the output instead of adding to it).
 *
 * The one thing a plan must never say is "in clear" where the policy says encrypt: such recipients
 * are stopped with the reason.
 */
import { createHash } from 'node:crypto';
import type { OutcomeKind } from '../core/index.js';
import type { HeaderEdits } from '../mime/index.js';
import type { CommandName, MessageFacts, PartyFacts, RecipientPlan } from '../policy/index.js';
import { encryptionOutcome } from '../policy/index.js';
import { methodOf, type CryptoMethodId, type MethodId } from './methods/index.js';
import type { CryptoChoice } from './transform.js';

/** What the plan needs to know about the message's body, looked at only when some plan needs it. */
export interface BodyFacts {
  /** The method of the outermost crypto layer (or the first found below the top when opening). */
  inside: CryptoMethodId | null;
  /** The whole body is ciphertext the sender's client made (asked only when a rule requires encryption). */
  sealed: boolean;
  /** There are .pgp/.gpg/.asc attachments (a decrypt rule may ask for them). */
  pgpFiles: boolean;
  /** The body goes past a structure limit (core/limits.ts): it is not opened, this says why. */
  limit?: string;
}

export interface PlanFacts {
  message: MessageFacts;
  sender: PartyFacts;
  /** One per distinct envelope recipient, in envelope order. */
  recipients: PartyFacts[];
  commands: CommandName[];
  clientTrusted: boolean;
  /** The policy's plan per recipient (policy/evaluate.ts), same order as `recipients`. */
  policy: RecipientPlan[];
  body: BodyFacts;
  /** The worker has its keys (without them nothing is signed, encrypted or opened). */
  keysLoaded: boolean;
  /** Autocrypt is on in postern.yaml. */
  autocrypt: boolean;
  /** X-Postern-* fields the message arrived with (only Postern states results: removed). */
  ownFields: string[];
  /** The Subject without its commands, when commands are to be removed; else null. */
  cleanedSubject: string | null;
}

/** `outcome`: the catalogue's name for it (core/outcomes.ts), which the relay's bounce and the logs use. */
export type Stop = { kind: 'hold' | 'reject' | 'delete'; reason: string; outcome: Extract<OutcomeKind, 'held_policy' | 'held_encryption' | 'held_limit' | 'bounced_policy' | 'bounced_encryption' | 'bounced_conversion' | 'dropped_policy'> };

export interface Delivery {
  /** Envelope recipients of this copy (before a redirect). */
  recipients: string[];
  treatment: CryptoChoice;
  edits: HeaderEdits;
  redirect: string[] | null;
  /** Names the treatment; with the recipients it names the output (spool commitOutgoing). */
  key: string;
}

export interface MessagePlan {
  policy: RecipientPlan[];
  /** Header fields removed and the Subject rewritten before any transform. */
  strip: string[];
  cleanedSubject: string | null;
  /** generate_keys for an internal sender without keys: made before signing. */
  generate: { smime: boolean; pgp: boolean } | null;
  deliveries: Delivery[];
  stopped: (Stop & { recipients: string[] })[];
  /** copy: the message as it arrived, once per address. */
  copies: string[];
  /** notify_sender: the recipients whose outcome is reported to the sender. */
  notifySender: string[];
  /** alert: one notice per set of admin addresses, naming the rules and recipients. */
  alerts: { to: string[]; rules: string[]; recipients: string[] }[];
  /** Add the internal sender's Autocrypt header to copies that leave for outside only. */
  autocrypt: boolean;
}

type Verdict = { kind: 'pass'; choice: CryptoChoice } | Stop;

/** What can be done for this recipient, and with which method. */
function verdictOf(plan: RecipientPlan, recipient: PartyFacts, sender: PartyFacts, f: PlanFacts): Verdict {
  const { inside, pgpFiles, sealed } = f.body;
  const canCrypt = f.keysLoaded;
  const choice: CryptoChoice = { open: null, sign: null, encrypt: null, sendKeys: null };
  let signWith: CryptoMethodId | 'auto' | null = null;
  // Fail closed: what a rule would open but cannot be searched is held, never passed unopened.
  if (f.body.limit && f.keysLoaded && plan.actions.some((a) => a.kind === 'decrypt' || a.kind === 'verify')) return { kind: 'hold', reason: f.body.limit, outcome: 'held_limit' };
  for (const a of plan.actions) {
    if (a.kind === 'delete') return { kind: 'delete', reason: a.reason, outcome: 'dropped_policy' };
    if (a.kind === 'hold') return { kind: 'hold', reason: a.reason, outcome: 'held_policy' };
    if (a.kind === 'bounce') return { kind: 'reject', reason: a.reason, outcome: 'bounced_policy' };
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
      const fail = (reason: string): Stop => (a.otherwise === 'bounce' ? { kind: 'reject', reason, outcome: 'bounced_encryption' } : { kind: 'hold', reason, outcome: 'held_encryption' });
      const method = outcome === 'plain' || outcome === 'hold' || outcome === 'bounce' ? null : outcome;
      if (method && canCrypt) {
        choice.encrypt = method;
        if (method === 'smime' && a.smime) choice.smimeOptions = a.smime;
        if (method === 'pgp' && a.pgp?.inline) choice.pgpInline = true;
        if (method === 'pdf' && a.pdf) choice.pdfOptions = a.pdf;
        if (a.header_protection && methodOf(method).protectsHeaders) choice.headerProtection = a.header_protection;
      } else if (method) {
        if (a.require) return fail(`encryption required for ${plan.recipient}, but the keys are not loaded (rule "${plan.rules.at(-1)}")`);
      } else if ((outcome === 'hold' || outcome === 'bounce') && !(sealed && !plan.actions.some((x) => x.kind === 'decrypt'))) {
        // (Ciphertext the sender's client made, which nothing here decrypts, is encrypted already: it passes.)
        return fail(`encryption required, but there is no ${a.methods.map((m) => methodOf(m).keyName).join(' or ')} for ${plan.recipient}`);
      }
    }
  }
  // "sign" means "when the sender has a key"; auto signs the way the message is encrypted (a
  // method that signs inside its own encryption), else with S/MIME, else with OpenPGP.
  // A method that does not keep a signature made before it (PDF mail: the message goes into a
  // document no reader checks a signature in) is not signed for.
  if (signWith && canCrypt && !(choice.encrypt && !methodOf(choice.encrypt).keepsSignature)) {
    const has = sender.keys;
    const inside = choice.encrypt === 'smime' || choice.encrypt === 'pgp' ? choice.encrypt : null;
    if (signWith === 'auto') choice.sign = inside && methodOf(inside).signsInside && has[inside] ? inside : has.smime ? 'smime' : has.pgp ? 'pgp' : null;
    else choice.sign = has[signWith] ? signWith : null;
  }
  return { kind: 'pass', choice };
}

const digest = (s: string) => createHash('sha256').update(s).digest('base64url').slice(0, 12);

export function planMessage(f: PlanFacts): MessagePlan {
  // generate_keys: an internal sender without keys gets them before this message is signed, so the
  // plan counts on them (if making them fails, the signature step says so and the mail goes on).
  const want = f.policy.flatMap((p) => p.actions).filter((a) => a.kind === 'generate_keys');
  const smime = want.some((a) => a.smime) && !f.sender.keys.smime;
  const pgp = want.some((a) => a.pgp) && !f.sender.keys.pgp;
  const generate = want.length && f.sender.internal && f.sender.address && (smime || pgp) ? { smime, pgp } : null;
  // Only the S/MIME certificate counts for this message: a new OpenPGP key signs from the next one
  // on (its publication to partners comes first).
  const sender: PartyFacts = generate?.smime ? { ...f.sender, keys: { ...f.sender.keys, smime: true } } : f.sender;

  const deliveries = new Map<string, Delivery>();
  const stopped = new Map<string, Stop & { recipients: string[] }>();
  f.policy.forEach((plan, i) => {
    const v = verdictOf(plan, f.recipients[i]!, sender, f);
    if (v.kind !== 'pass') {
      const key = `${v.outcome}\0${v.reason}`;
      const g = stopped.get(key) ?? { ...v, recipients: [] };
      g.recipients.push(plan.recipient);
      stopped.set(key, g);
      return;
    }
    const add: [string, string][] = [];
    const remove: string[] = [];
    let redirect: string[] | null = null;
    for (const a of plan.actions) {
      if (a.kind === 'add_header') add.push([a.name, a.value]);
      else if (a.kind === 'remove_header') remove.push(...a.names);
      else if (a.kind === 'redirect') redirect = a.to;
    }
    const edits: HeaderEdits = { add, remove };
    // A method with a secret per recipient (PDF mail) makes one output per recipient.
    const own = v.choice.encrypt && methodOf(v.choice.encrypt).perRecipient ? plan.recipient : null;
    const key = JSON.stringify([v.choice, edits, redirect, ...(own ? [own] : [])]);
    const g = deliveries.get(key) ?? { recipients: [], treatment: v.choice, edits, redirect, key: digest(key) };
    g.recipients.push(plan.recipient);
    deliveries.set(key, g);
  });

  const alerts = new Map<string, { to: string[]; rules: string[]; recipients: string[] }>();
  for (const p of f.policy) {
    for (const a of p.actions) {
      if (a.kind !== 'alert') continue;
      const key = [...a.to].sort().join(',');
      const g = alerts.get(key) ?? { to: a.to, rules: [], recipients: [] };
      for (const r of p.rules) if (!g.rules.includes(r)) g.rules.push(r);
      if (!g.recipients.includes(p.recipient)) g.recipients.push(p.recipient);
      alerts.set(key, g);
    }
  }
  return {
    policy: f.policy,
    strip: f.ownFields,
    cleanedSubject: f.cleanedSubject,
    generate,
    deliveries: [...deliveries.values()],
    stopped: [...stopped.values()],
    copies: [...new Set(f.policy.flatMap((p) => p.actions.flatMap((a) => (a.kind === 'copy' ? a.to : []))))],
    notifySender: f.policy.filter((p) => p.actions.some((a) => a.kind === 'notify_sender')).map((p) => p.recipient),
    alerts: [...alerts.values()],
    // Only for mail our own users send (a trusted client): an outsider claiming an internal
    // sender gets no key of theirs attached.
    autocrypt: f.keysLoaded && f.autocrypt && f.sender.internal && f.clientTrusted,
  };
}

const label = (id: MethodId) => methodOf(id).label;

/** One line per step of a treatment, as an admin reads it. */
export function describeTreatment(t: CryptoChoice): string {
  const steps: string[] = [];
  if (t.open) steps.push(`${[t.open.decrypt && 'decrypt', t.open.verify && 'verify'].filter(Boolean).join(' and ')} (${label(t.open.method)} first)`);
  if (t.sendKeys) steps.push(`attach the sender's keys (${[t.sendKeys.smime && 'S/MIME', t.sendKeys.pgp && 'OpenPGP'].filter(Boolean).join(', ')})`);
  if (t.sign) steps.push(`sign with ${label(t.sign)}`);
  if (t.encrypt) steps.push(`encrypt with ${label(t.encrypt)}${t.pgpInline ? ' (inline for plain text)' : ''}${t.smimeOptions?.cipher ? ` (${t.smimeOptions.cipher})` : ''}${t.pdfOptions?.cipher ? ` (${t.pdfOptions.cipher})` : ''}${t.pdfOptions?.reply === false ? ' (no Reply button)' : ''}${t.headerProtection ? `, header protection ${t.headerProtection}` : ''}`);
  return steps.length ? steps.join(', then ') : 'unchanged';
}

/** The plan as `policy explain` prints it and the worker logs it at debug level. */
export function describePlan(p: MessagePlan): string[] {
  const list = (a: readonly string[]) => a.map((x) => `<${x}>`).join(', ');
  const out: string[] = [];
  if (p.generate) out.push(`generate keys for the sender: ${[p.generate.smime && 'S/MIME certificate', p.generate.pgp && 'OpenPGP key'].filter(Boolean).join(', ')}`);
  for (const d of p.deliveries) {
    const edits = [...(d.edits.add ?? []).map(([n]) => `add ${n}`), ...(d.edits.remove ?? []).map((n) => `remove ${n}`)];
    out.push(`deliver to ${list(d.recipients)}${d.redirect ? ` redirected to ${list(d.redirect)}` : ''}: ${describeTreatment(d.treatment)}${edits.length ? `; header: ${edits.join(', ')}` : ''}`);
  }
  const VERB = { hold: 'hold', reject: 'bounce', delete: 'delete' } as const;
  for (const s of p.stopped) out.push(`${VERB[s.kind]} ${list(s.recipients)}: ${s.reason}`);
  if (p.copies.length) out.push(`copy the message as it arrived to ${list(p.copies)}`);
  if (p.notifySender.length) out.push(`report to the sender what happened to ${list(p.notifySender)}`);
  for (const a of p.alerts) out.push(`alert ${list(a.to)} (rules ${a.rules.map((r) => `"${r}"`).join(', ')})`);
  if (p.autocrypt) out.push("add the sender's Autocrypt header to copies for outside");
  return out;
}
