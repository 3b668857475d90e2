/**
 * The config together with its compiled policy: what `check` validates, what `start` refuses to
 * run without, and what a reload (SIGHUP, or the policy file changing) must pass before the
 * running gateway swaps to it.
 */
import { readFile } from 'node:fs/promises';
import { loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { ConfigError } from '../core/index.js';
import { compilePolicy, loadStaticDirectory, type CompiledPolicy } from '../policy/index.js';

export async function loadPolicy(config: Config): Promise<CompiledPolicy> {
  const file = config.policy.file;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, line: 0, column: 0, key: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  const r = compilePolicy(text, file);
  if (!r.ok) throw new ConfigError(r.problems);
  // The groups file is part of the policy: a broken one is refused with it.
  if (r.policy.groupsFile) await loadStaticDirectory(r.policy.groupsFile);
  return r.policy;
}

/** Config and policy, both valid, or a ConfigError listing every problem of either. */
export async function loadConfigAndPolicy(file: string): Promise<{ config: Config; policy: CompiledPolicy }> {
  const config = await loadConfig(file);
  return { config, policy: await loadPolicy(config) };
}
