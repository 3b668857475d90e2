/**
 * Activating a policy text: checked as the gateway will check it, refused when the file changed
 * since the editor read it, the text in force kept as a version, the new one written atomically
 * and kept too. Making the running gateway load it (a reload) is the caller's: the admin role asks
 * its supervisor; a running gateway also reloads by itself when the file changes.
 */
import { readFile, stat } from 'node:fs/promises';
import type { ConfigProblem } from '../core/index.js';
import { writeFileDurably } from './durable-file.js';
import { withFileLock } from './file-lock.js';
import { checkPolicyText } from './load.js';
import type { CompiledPolicy } from './types.js';
import { policyHash, type PolicyVersion, type PolicyVersionStore } from './versions.js';

/** The policy file as it is now. */
export interface PolicyFileState {
  file: string;
  text: string;
  /** policyHash of the text: what an edit of it starts from. */
  hash: string;
  modified: Date;
}

export async function readPolicyFile(file: string): Promise<PolicyFileState> {
  const [bytes, st] = await Promise.all([readFile(file), stat(file)]);
  return { file, text: bytes.toString('utf8'), hash: policyHash(bytes), modified: st.mtime };
}

export interface ActivateRequest {
  text: string;
  /**
   * The hash of the file's content the text was edited from; null to replace whatever is there
   * (a rollback the admin chose, or the CLI given a file).
   */
  base: string | null;
  /** Who activates it (kept with the version). */
  by: string;
  /** Refuse a groups file outside the policy file's folder (drafts from the admin API). */
  groupsBesideFile?: boolean;
}

export type ActivateResult =
  | { outcome: 'invalid'; problems: ConfigProblem[] }
  /** The file changed since `base`: someone else activated or edited it. */
  | { outcome: 'stale'; current: string }
  | { outcome: 'unchanged'; policy: CompiledPolicy; version: PolicyVersion }
  | { outcome: 'activated'; policy: CompiledPolicy; version: PolicyVersion; before: string };

// One activation at a time per file: queued in this process, locked against other processes (the
// CLI beside the admin role), so the check of `base` and the rename are one step.
const queues = new Map<string, Promise<unknown>>();

export function activatePolicy(file: string, versions: PolicyVersionStore, req: ActivateRequest): Promise<ActivateResult> {
  const prev = queues.get(file) ?? Promise.resolve();
  const run = prev.catch(() => undefined).then(() => withFileLock(file, () => activateNow(file, versions, req)));
  queues.set(file, run);
  void run.finally(() => {
    if (queues.get(file) === run) queues.delete(file);
  }).catch(() => undefined);
  return run;
}

async function activateNow(file: string, versions: PolicyVersionStore, req: ActivateRequest): Promise<ActivateResult> {
  const check = await checkPolicyText(req.text, file, { groupsBesideFile: req.groupsBesideFile ?? false });
  if (!check.ok) return { outcome: 'invalid', problems: check.problems };
  const current = await readPolicyFile(file);
  if (req.base !== null && req.base !== current.hash) return { outcome: 'stale', current: current.hash };
  // The text in force is kept before it is replaced; one edited outside Postern has no author here.
  const kept = await versions.keep(current.text, null, current.modified);
  if (current.text === req.text) return { outcome: 'unchanged', policy: check.policy, version: kept };
  await writeFileDurably(file, Buffer.from(req.text, 'utf8'));
  const version = await versions.keep(req.text, req.by);
  return { outcome: 'activated', policy: check.policy, version, before: current.text };
}
