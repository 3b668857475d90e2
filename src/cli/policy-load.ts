/**
 * The config together with its compiled policy: what `check` validates, what `start` refuses to
 * run without, and what a reload (SIGHUP, or the policy file changing) must pass before the
 * running gateway swaps to it. The policy's own checking is policy/load.ts.
 */
import { loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { loadPolicy, type CompiledPolicy } from '../policy/index.js';

export { loadPolicy };

/** Config and policy, both valid, or a ConfigError listing every problem of either. */
export async function loadConfigAndPolicy(file: string): Promise<{ config: Config; policy: CompiledPolicy }> {
  const config = await loadConfig(file);
  return { config, policy: await loadPolicy(config) };
}
