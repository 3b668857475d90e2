/**
 * What the policy would do with a message, per recipient — the facts it used, the rules that
 * matched and the worker's plan — without sending anything or changing the store. `postern policy
 * explain` and the admin API's POST /policy/explain both come through here, so the console shows
 * what the CLI prints, and both show what the worker would do (same fact gathering, same plan).
 *
 * Untrusted input: the addresses, headers and message given (by an admin; the API's are checked
 * for size by its schema). Secrets: none (whether a PDF password exists, never the password).
 */
import type { Config } from '../config/types.js';
import { addressKey, inDomains } from '../core/index.js';
import { combineDirectories, LdapDirectory, withFailurePolicy } from '../directory/index.js';
import type { KeyStore, PortalDb } from '../keystore/index.js';
import { silentLogger } from '../log/index.js';
import { messageFacts } from '../mime/index.js';
import { describeAction, emptyDirectory, encryptionOutcome, loadStaticDirectory, type Action, type CompiledPolicy, type MessageFacts, type PartyFacts } from '../policy/index.js';
import { gatherFacts } from './facts.js';
import { describePlan, planMessage, type MessagePlan, type PlanFacts } from './plan.js';

export interface ExplainInput {
  /** Canonical addresses (as smtpd would store them); '' is the null sender. */
  from: string;
  to: string[];
  message: MessageFacts;
  body: Buffer;
  clientTrusted: boolean;
}

export interface ExplainDeps {
  config: Config;
  policy: CompiledPolicy;
  store: Pick<KeyStore, 'certificatesFor' | 'pgpKeysFor' | 'pdfPasswordRecord'>;
  /** portal.db, for whether webmail mailboxes exist; null when there is none yet. */
  portal: Pick<PortalDb, 'account'> | null;
}

export interface Explanation {
  policy: CompiledPolicy;
  message: MessageFacts;
  clientTrusted: boolean;
  facts: PlanFacts;
  plan: MessagePlan;
  /** Per recipient getting PDF mail or webmail: the state of its password or mailbox, in words. */
  pdfPasswords: Map<string, string>;
  mailboxes: Map<string, string>;
}

/** The message facts of an explain without a message file: a Subject and header fields. */
export function describedMessage(subject: string | undefined, headerFields: readonly { name: string; value: string }[]): { message: MessageFacts; body: Buffer } {
  const headers = new Map<string, string[]>();
  const lines: string[] = [];
  for (const { name, value } of headerFields) {
    const n = name.toLowerCase();
    headers.set(n, [...(headers.get(n) ?? []), value]);
    lines.push(`${name}: ${value}`);
  }
  if (subject !== undefined) {
    headers.set('subject', [subject]);
    lines.push(`Subject: ${subject}`);
  }
  const message: MessageFacts = { size: 0, headers, subject: subject ?? '', attachments: [], priority: 'normal', sensitivity: 'normal', encrypted: null, signed: null };
  // A line break in a value would start another field: folded to a space.
  return { message, body: Buffer.from(`${lines.map((l) => l.replace(/[\r\n]+/g, ' ')).join('\r\n')}\r\n\r\n`, 'utf8') };
}

/** The facts of a whole message (an .eml): its headers and parts. */
export function messageFileFacts(body: Buffer): { message: MessageFacts; body: Buffer } {
  return { message: messageFacts(body), body };
}

export async function explainMessage(input: ExplainInput, deps: ExplainDeps): Promise<Explanation> {
  const { config, policy, store } = deps;
  const { from, message, body, clientTrusted } = input;
  const groups = policy.groupsFile ? await loadStaticDirectory(policy.groupsFile) : emptyDirectory;
  // The directory the worker would ask: LDAP groups and attributes too (certificates are not
  // fetched: explaining must not change the store).
  const ldap = config.ldap.servers.length ? new LdapDirectory(config.ldap, { log: silentLogger() }) : null;
  const directory = ldap ? combineDirectories(withFailurePolicy(ldap, silentLogger()), groups) : groups;
  const pdfPasswords = new Map<string, string>();
  const mailboxes = new Map<string, string>();
  let facts: PlanFacts;
  try {
    // The worker's own fact gathering and planning: what is explained is what a message gets.
    ({ facts } = await gatherFacts({ body, message, sender: from, recipients: [...new Set(input.to)], clientTrusted, policy, config, lookups: store, directory, keysLoaded: true, memo: {} }));
  } finally {
    await ldap?.close().catch(() => undefined);
  }
  // For recipients that would get PDF mail: whether their password exists (explaining never makes one).
  for (const r of facts.recipients) {
    if (!r.address || !from) continue;
    const rec = await store.pdfPasswordRecord({ sender: from, recipient: r.address }, config.pdf.password_scope);
    pdfPasswords.set(r.address, rec ? `password exists since ${rec.created.toISOString().slice(0, 10)}${rec.notified ? '' : ', the sender will be told it'}` : 'new password, the sender will be told it');
  }
  // And for webmail: whether the mailbox exists (read only: explaining never makes one).
  for (const r of facts.recipients) {
    if (!r.address) continue;
    const a = deps.portal ? await deps.portal.account(addressKey(r.address)) : null;
    const tellable = from !== '' && inDomains(from, config.internal_domains);
    mailboxes.set(
      r.address,
      a?.passwordTold
        ? `account exists since ${a.created.toISOString().slice(0, 10)}`
        : a
          ? `account made ${a.created.toISOString().slice(0, 10)}, its password not yet told`
          : tellable
            ? 'new account, the sender will be told its password'
            : `new account, held: the sender ${from ? `${from} is not in internal_domains` : 'is <>'} and cannot be told its password`,
    );
  }
  return { policy, message, clientTrusted, facts, plan: planMessage(facts), pdfPasswords, mailboxes };
}

/** The explanation as `postern policy explain --json` prints it. */
export function explanationJson(e: Explanation) {
  const { sender, recipients, commands, policy: plans } = e.facts;
  return { policy: e.policy.file, sender, commands, plans: plans.map((p, i) => ({ ...p, facts: recipients[i] })), plan: { ...e.plan, policy: undefined, lines: describePlan(e.plan) } };
}

const OUTCOME = { smime: 'S/MIME', pgp: 'OpenPGP', pdf: 'PDF', webmail: 'webmail', plain: 'sent in clear: no key for this recipient', hold: 'held: no key for this recipient', bounce: 'bounced: no key for this recipient' };

/** The explanation as `postern policy explain` prints it, line by line ('' separates recipients). */
export function explanationLines(e: Explanation): string[] {
  const { policy, message: m, clientTrusted } = e;
  const { sender, recipients, commands, policy: plans } = e.facts;
  const out: string[] = [];
  const keys = (p: PartyFacts) => [p.keys.smime && 'S/MIME', p.keys.pgp && 'OpenPGP'].filter(Boolean).join(', ') || 'none';
  const party = (p: PartyFacts) => `${p.internal ? 'internal' : 'external'}; keys: ${keys(p)}${p.groups.length ? `; groups: ${p.groups.join(', ')}` : ''}`;
  const line = new Map(policy.rules.map((r) => [r.name, r.line]));
  out.push(`policy ${policy.file}: ${policy.rules.length} rule${policy.rules.length === 1 ? '' : 's'}`);
  out.push(`from <${sender.address}> (${party(sender)}); client ${clientTrusted ? 'trusted' : 'untrusted'}`);
  out.push(
    `message: ${m.size} bytes, ${m.attachments.length} attachment${m.attachments.length === 1 ? '' : 's'}, priority ${m.priority}, sensitivity ${m.sensitivity}` +
      `${m.encrypted ? `, encrypted (${m.encrypted})` : ''}${m.signed ? `, signed (${m.signed})` : ''}${commands.length ? `, commands: ${commands.join(', ')}` : ''}`,
  );
  plans.forEach((p, i) => {
    out.push('');
    out.push(`<${p.recipient}>  ${p.direction}  (${party(recipients[i]!)})`);
    out.push(`  rules: ${p.rules.map((r) => (line.has(r) ? `"${r}" (line ${line.get(r)})` : r)).join(' → ')}`);
    const outcome = (a: Extract<Action, { kind: 'encrypt' }>) => {
      const o = encryptionOutcome(a, recipients[i]!);
      if (o === 'webmail') return `webmail, ${e.mailboxes.get(p.recipient) ?? 'mailbox unknown'}`;
      return o === 'pdf' ? `PDF, ${e.pdfPasswords.get(p.recipient) ?? 'password unknown'}` : OUTCOME[o];
    };
    p.actions.forEach((a, n) => out.push(`  ${n + 1}. ${describeAction(a)}${a.kind === 'encrypt' ? ` → ${outcome(a)}` : ''}`));
    for (const s of p.skipped ?? []) out.push(`  (${s.action === 'generate_keys' ? 'generate_keys' : 'sign'} skipped: ${s.reason})`);
  });
  out.push('');
  out.push('what the worker does with this message:');
  for (const l of describePlan(e.plan)) out.push(`  ${l}`);
  return out;
}
