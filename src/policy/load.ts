/**
 * The policy file as every caller checks it: compiled rules and the groups file it names, or every
 * problem of either with file, line and column. `postern check`, `start`, the worker's reload and
 * the admin API (validate, explain against a draft, activate) all come through here, so a draft
 * the console calls valid is one the gateway runs.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative } from 'node:path';
import { checkConfig, parseYaml, problemAt } from '../config/index.js';
import type { Config } from '../config/types.js';
import { ConfigError, type ConfigProblem } from '../core/index.js';
import { compilePolicy } from './compile.js';
import { loadStaticDirectory } from './directory.js';
import type { CompiledPolicy } from './types.js';

export type PolicyCheck = { ok: true; policy: CompiledPolicy } | { ok: false; problems: ConfigProblem[] };

/**
 * Check `text` as if it were the content of `file` (which anchors a relative `groups:` path).
 * Never throws for anything in the text: a hostile draft (alias bombs, deep nesting) is a problem
 * to report, not a crash of the caller.
 */
export async function checkPolicyText(text: string, file: string, opts: { groupsBesideFile?: boolean } = {}): Promise<PolicyCheck> {
  let r: ReturnType<typeof compilePolicy>;
  try {
    r = compilePolicy(text, file);
  } catch (err) {
    // yaml's toJS refuses excessive aliases (a "billion laughs" document) by throwing.
    return { ok: false, problems: [{ file, line: 0, column: 0, key: '', message: `YAML: ${(err as Error).message.split('\n')[0]}` }] };
  }
  if (!r.ok) return r;
  // A draft from the admin API must not make the admin role (root) read any file of the machine
  // as a groups file and answer what it found there: only files in the policy file's folder.
  if (opts.groupsBesideFile && r.policy.groupsFile) {
    const rel = relative(dirname(file), r.policy.groupsFile);
    if (!rel || rel.startsWith('..') || isAbsolute(rel)) {
      const yaml = parseYaml(text, file);
      const where = yaml.ok ? problemAt(yaml, file, ['groups'], '') : { file, line: 0, column: 0, key: 'groups' };
      return { ok: false, problems: [{ ...where, message: `a groups file must be in the policy file's folder (${dirname(file)})` }] };
    }
  }
  // The groups file is part of the policy: a broken one is refused with it.
  if (r.policy.groupsFile) {
    try {
      await loadStaticDirectory(r.policy.groupsFile);
    } catch (err) {
      if (err instanceof ConfigError) return { ok: false, problems: err.problems };
      throw err;
    }
  }
  return r;
}

/** The policy file `config` names, compiled; a ConfigError with every problem otherwise. */
export async function loadPolicy(config: Config): Promise<CompiledPolicy> {
  const r = await checkPolicyFile(config.policy.file);
  if (!r.ok) throw new ConfigError(r.problems);
  return r.policy;
}

async function checkPolicyFile(file: string): Promise<PolicyCheck> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { ok: false, problems: [{ file, line: 0, column: 0, key: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }] };
  }
  return checkPolicyText(text, file);
}

/**
 * postern.yaml and the policy file it names, as `postern check` and a reload check them: both
 * valid, or every problem of the first that is not (the policy is only read from a valid config).
 */
export async function checkConfigAndPolicy(file: string): Promise<{ ok: true; config: Config; policy: CompiledPolicy } | { ok: false; problems: ConfigProblem[] }> {
  const result = await checkConfig(file);
  if (!result.ok) return result;
  const policy = await checkPolicyFile(result.config.policy.file);
  return policy.ok ? { ok: true, config: result.config, policy: policy.policy } : policy;
}
