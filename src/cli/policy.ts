/**
 * `postern policy explain --from A --to B [--to C …] [FILE]`: what the policy would do with a
 * message, per recipient — the facts it used, the rules that matched and the plan — without
 * sending anything. FILE is a message (.eml) whose headers and parts supply the message facts;
 * without it, --subject and --header describe one.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { addressKey, inDomains, parseAddress } from '../core/index.js';
import { combineDirectories, LdapDirectory, withFailurePolicy } from '../directory/index.js';
import { openKeyStore, openPortalDb, portalDbFile } from '../keystore/index.js';
import { silentLogger } from '../log/index.js';
import { messageFacts } from '../mime/index.js';
import { describeAction, type Action, emptyDirectory, encryptionOutcome, loadStaticDirectory, type MessageFacts, type PartyFacts } from '../policy/index.js';
import { gatherFacts } from '../worker/facts.js';
import { describePlan, planMessage, type PlanFacts } from '../worker/plan.js';
import { DEFAULT_CONFIG, parse, UsageError, type CliIo } from './args.js';
import { loadConfigAndPolicy } from './policy-load.js';

const USAGE = 'policy explain --from ADDRESS --to ADDRESS [--to …] [--subject TEXT] [--header "Name: value"]… [--client trusted|untrusted] [--json] [MESSAGE-FILE]';

export async function policyCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, {
    from: { type: 'string' },
    to: { type: 'string', multiple: true },
    subject: { type: 'string' },
    header: { type: 'string', multiple: true },
    client: { type: 'string' },
    json: { type: 'boolean' },
  });
  const [sub, file, ...extra] = positionals;
  if (sub !== 'explain' || extra.length) throw new UsageError(`usage: postern ${USAGE}`);
  if (values.from === undefined || !values.to?.length) throw new UsageError('policy explain needs --from and at least one --to');
  if (values.client !== undefined && values.client !== 'trusted' && values.client !== 'untrusted') throw new UsageError('--client must be trusted or untrusted');
  // The addresses as smtpd would store them: the plan is for the canonical form, and a spelling
  // smtpd would refuse (a soft hyphen in the domain, say) is refused here with the reason.
  const canonical = (a: string, who: string): string => {
    if (a === '') return a;
    const c = parseAddress(a);
    if (!c.ok) throw new UsageError(`--${who} ${JSON.stringify(a)}: ${c.detail}`);
    return c.address;
  };
  const from = canonical(values.from, 'from');
  const to = values.to.map((a) => canonical(a, 'to'));
  const { config, policy } = await loadConfigAndPolicy(values.config ?? DEFAULT_CONFIG);

  let message: MessageFacts;
  let body: Buffer;
  if (file) {
    body = await readFile(file);
    message = messageFacts(body);
  } else {
    const headers = new Map<string, string[]>();
    const lines: string[] = [];
    for (const h of values.header ?? []) {
      const at = h.indexOf(':');
      if (at <= 0) throw new UsageError(`--header ${JSON.stringify(h)}: expected "Name: value"`);
      const name = h.slice(0, at).trim().toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), h.slice(at + 1).trim()]);
      lines.push(`${h.slice(0, at).trim()}: ${h.slice(at + 1).trim()}`);
    }
    if (values.subject !== undefined) {
      headers.set('subject', [values.subject]);
      lines.push(`Subject: ${values.subject}`);
    }
    message = { size: 0, headers, subject: values.subject ?? '', attachments: [], priority: 'normal', sensitivity: 'normal', encrypted: null, signed: null };
    body = Buffer.from(`${lines.map((l) => l.replace(/[\r\n]+/g, ' ')).join('\r\n')}\r\n\r\n`, 'utf8');
  }
  const clientTrusted = values.client !== 'untrusted';

  const groups = policy.groupsFile ? await loadStaticDirectory(policy.groupsFile) : emptyDirectory;
  // The directory the worker would ask: LDAP groups and attributes too (certificates are not
  // fetched: explaining must not change the store).
  const ldap = config.ldap.servers.length ? new LdapDirectory(config.ldap, { log: silentLogger() }) : null;
  const directory = ldap ? combineDirectories(withFailurePolicy(ldap, silentLogger()), groups) : groups;
  const store = await openKeyStore(config);
  let facts: PlanFacts;
  const pdfPasswords = new Map<string, string>();
  const mailboxes = new Map<string, string>();
  try {
    // The worker's own fact gathering and planning: what is printed is what a message gets.
    ({ facts } = await gatherFacts({ body, message, sender: from, recipients: [...new Set(to)], clientTrusted, policy, config, lookups: store, directory, keysLoaded: true, memo: {} }));
    // For recipients that would get PDF mail: whether their password exists (explaining never makes one).
    for (const r of facts.recipients) {
      if (!r.address || !from) continue;
      const rec = await store.pdfPasswordRecord({ sender: from, recipient: r.address }, config.pdf.password_scope);
      pdfPasswords.set(r.address, rec ? `password exists since ${rec.created.toISOString().slice(0, 10)}${rec.notified ? '' : ', the sender will be told it'}` : 'new password, the sender will be told it');
    }
    // And for webmail: whether the mailbox exists (read only: explaining never makes one).
    const portalFile = portalDbFile(config);
    const portal = existsSync(portalFile) ? await openPortalDb(portalFile, { readonly: true }) : null;
    try {
      for (const r of facts.recipients) {
        if (!r.address) continue;
        const a = portal ? await portal.account(addressKey(r.address)) : null;
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
    } finally {
      portal?.close();
    }
  } finally {
    await store.close();
    await ldap?.close().catch(() => undefined);
  }
  const { sender, recipients, commands, policy: plans } = facts;
  const plan = planMessage(facts);

  if (values.json) {
    io.out(JSON.stringify({ policy: policy.file, sender, commands, plans: plans.map((p, i) => ({ ...p, facts: recipients[i] })), plan: { ...plan, policy: undefined, lines: describePlan(plan) } }, null, 2));
    return 0;
  }
  const keys = (p: PartyFacts) => [p.keys.smime && 'S/MIME', p.keys.pgp && 'OpenPGP'].filter(Boolean).join(', ') || 'none';
  const party = (p: PartyFacts) => `${p.internal ? 'internal' : 'external'}; keys: ${keys(p)}${p.groups.length ? `; groups: ${p.groups.join(', ')}` : ''}`;
  const line = new Map(policy.rules.map((r) => [r.name, r.line]));
  io.out(`policy ${policy.file}: ${policy.rules.length} rule${policy.rules.length === 1 ? '' : 's'}`);
  io.out(`from <${sender.address}> (${party(sender)}); client ${clientTrusted ? 'trusted' : 'untrusted'}`);
  const m = message;
  io.out(
    `message: ${m.size} bytes, ${m.attachments.length} attachment${m.attachments.length === 1 ? '' : 's'}, priority ${m.priority}, sensitivity ${m.sensitivity}` +
      `${m.encrypted ? `, encrypted (${m.encrypted})` : ''}${m.signed ? `, signed (${m.signed})` : ''}${commands.length ? `, commands: ${commands.join(', ')}` : ''}`,
  );
  plans.forEach((p, i) => {
    io.out('');
    io.out(`<${p.recipient}>  ${p.direction}  (${party(recipients[i]!)})`);
    io.out(`  rules: ${p.rules.map((r) => (line.has(r) ? `"${r}" (line ${line.get(r)})` : r)).join(' → ')}`);
    const OUTCOME = { smime: 'S/MIME', pgp: 'OpenPGP', pdf: 'PDF', webmail: 'webmail', plain: 'sent in clear: no key for this recipient', hold: 'held: no key for this recipient', bounce: 'bounced: no key for this recipient' };
    const outcome = (a: Extract<Action, { kind: 'encrypt' }>) => {
      const o = encryptionOutcome(a, recipients[i]!);
      if (o === 'webmail') return `webmail, ${mailboxes.get(p.recipient) ?? 'mailbox unknown'}`;
      return o === 'pdf' ? `PDF, ${pdfPasswords.get(p.recipient) ?? 'password unknown'}` : OUTCOME[o];
    };
    p.actions.forEach((a, n) => io.out(`  ${n + 1}. ${describeAction(a)}${a.kind === 'encrypt' ? ` → ${outcome(a)}` : ''}`));
    for (const s of p.skipped ?? []) io.out(`  (${s.action === 'generate_keys' ? 'generate_keys' : 'sign'} skipped: ${s.reason})`);
  });
  io.out('');
  io.out('what the worker does with this message:');
  for (const l of describePlan(plan)) io.out(`  ${l}`);
  return 0;
}
