/**
 * `postern policy activate FILE [--hash HASH]` and `postern policy versions`: the admin API's
 * activation from a shell — the same checks, the same atomic write and kept versions
 * (policy/activate.ts), audited through the CLI. A running gateway takes the new file by itself
 * (it watches the policy file, as after an edit by hand).
 */
import { readFile } from 'node:fs/promises';
import { loadConfig } from '../config/index.js';
import { formatConfigProblem } from '../core/index.js';
import { activatePolicy, FilePolicyVersions, policyVersionsDir } from '../policy/index.js';
import { DEFAULT_CONFIG, parse, UsageError, type CliIo } from './args.js';
import { cliActor, withStore } from './keys-common.js';

export async function policyActivateCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { hash: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('usage: postern policy activate FILE [--hash HASH-OF-THE-POLICY-IT-WAS-EDITED-FROM]');
  if (values.hash !== undefined && !/^[0-9a-f]{64}$/.test(values.hash)) throw new UsageError('--hash: expected the 64 hex digits `postern policy versions` shows');
  const source = positionals[0]!;
  const text = await readFile(source, 'utf8');
  // The keystore first: an activation that could not be audited must not happen.
  return withStore(values.config, async (store, config) => {
    const r = await activatePolicy(config.policy.file, new FilePolicyVersions(policyVersionsDir(config)), { text, base: values.hash ?? null, by: cliActor() });
    switch (r.outcome) {
      case 'invalid':
        // Checked as if it were the policy file; the admin knows it by the name given.
        for (const p of r.problems) io.err(formatConfigProblem(p.file === config.policy.file ? { ...p, file: source } : p));
        io.err(`${source}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}; nothing activated`);
        return 1;
      case 'stale':
        io.err(`${config.policy.file} changed since the version --hash names (now ${r.current}); nothing activated`);
        return 1;
      case 'unchanged':
        io.out(`${config.policy.file} already is this policy (version ${r.version.id})`);
        return 0;
      case 'activated':
        await store.audit({ actor: cliActor(), action: 'policy.activate', object: 'policy', detail: `version ${r.version.id}`, before: r.before, after: text });
        io.out(`activated ${source} as ${config.policy.file} (version ${r.version.id}, ${r.policy.rules.length} rule${r.policy.rules.length === 1 ? '' : 's'}); a running gateway reloads it by itself`);
        return 0;
    }
  });
}

export async function policyVersionsCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  if (positionals.length) throw new UsageError('usage: postern policy versions [--json]');
  const config = await loadConfig(values.config ?? DEFAULT_CONFIG);
  const versions = await new FilePolicyVersions(policyVersionsDir(config)).list();
  if (values.json) io.out(JSON.stringify(versions, null, 2));
  else for (const v of versions) io.out(`${v.id}\t${v.time.toISOString()}\t${v.by ?? '(found in the file)'}\t${v.hash}`);
  return 0;
}
