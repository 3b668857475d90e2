/**
 * `postern policy explain --from A --to B [--to C …] [FILE]`: what the policy would do with a
 * message, per recipient — the facts it used, the rules that matched and the plan — without
 * sending anything. FILE is a message (.eml) whose headers and parts supply the message facts;
 * without it, --subject and --header describe one.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseAddress } from '../core/index.js';
import { openKeyStore, openPortalStore, portalDbFile } from '../keystore/index.js';
import { describedMessage, explainMessage, explanationJson, explanationLines, messageFileFacts } from '../worker/explain.js';
import { DEFAULT_CONFIG, parse, UsageError, type CliIo } from './args.js';
import { loadConfigAndPolicy } from './policy-load.js';

const USAGE = 'policy explain --from ADDRESS --to ADDRESS [--to …] [--subject TEXT] [--header "Name: value"]… [--client trusted|untrusted] [--json] [MESSAGE-FILE]';

export async function policyCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv[0] === 'activate') return (await import('./policy-activate.js')).policyActivateCommand(argv.slice(1), io);
  if (argv[0] === 'push') return (await import('./policy-activate.js')).policyPushCommand(argv.slice(1), io);
  if (argv[0] === 'versions') return (await import('./policy-activate.js')).policyVersionsCommand(argv.slice(1), io);
  const { values, positionals } = parse(argv, {
    from: { type: 'string' },
    to: { type: 'string', multiple: true },
    subject: { type: 'string' },
    header: { type: 'string', multiple: true },
    client: { type: 'string' },
    json: { type: 'boolean' },
  });
  const [sub, file, ...extra] = positionals;
  if (sub !== 'explain' || extra.length) throw new UsageError(`usage: postern ${USAGE} | policy activate FILE [--hash HASH] | policy push FILE [--hash HASH] [--comment TEXT] | policy versions`);
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

  const headers = (values.header ?? []).map((h) => {
    const at = h.indexOf(':');
    if (at <= 0) throw new UsageError(`--header ${JSON.stringify(h)}: expected "Name: value"`);
    return { name: h.slice(0, at).trim(), value: h.slice(at + 1).trim() };
  });
  const { message, body } = file ? messageFileFacts(await readFile(file)) : describedMessage(values.subject, headers);
  const store = await openKeyStore(config);
  // portal.db is only read, and not made when absent; a cluster's portal schema is made as its keystore is.
  const portal = config.keystore.postgres
    ? await openPortalStore(config, { role: 'cli' })
    : existsSync(portalDbFile(config))
      ? await openPortalStore(config, { role: 'cli', readonly: true })
      : null;
  let explanation;
  try {
    explanation = await explainMessage({ from, to, message, body, clientTrusted: values.client !== 'untrusted' }, { config, policy, store, portal });
  } finally {
    await portal?.close();
    await store.close();
  }
  if (values.json) io.out(JSON.stringify(explanationJson(explanation), null, 2));
  else for (const l of explanationLines(explanation)) io.out(l);
  return 0;
}
