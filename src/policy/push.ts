/**
 * Activating a policy in a cluster (issue 19): checked on this node as the gateway checks its file,
 * then kept as the cluster's newest version — refused when the newest is no longer the version the
 * text was edited from, in the same transaction, so two admins on two nodes cannot both win. Every
 * node's follower (follow.ts) then writes it to its policy file; the caller may do so at once for
 * its own node (`followClusterPolicy`) to reload without waiting.
 */
import { readPolicyFile, type ActivateRequest, type ActivateResult } from './activate.js';
import { DbPolicyVersions } from './db-versions.js';
import { checkPolicyText } from './load.js';
import type { PolicyVersionStore } from './versions.js';

export async function pushPolicy(file: string, versions: DbPolicyVersions, req: ActivateRequest): Promise<ActivateResult> {
  const check = await checkPolicyText(req.text, file, { groupsBesideFile: req.groupsBesideFile ?? false });
  if (!check.ok) return { outcome: 'invalid', problems: check.problems };
  // A cluster without versions yet starts from this node's file, as activation keeps the text
  // it replaces; `base` is then compared with it.
  if (!(await versions.newestHash())) {
    const current = await readPolicyFile(file);
    await versions.keepIf(current.text, null, { base: null, onlyIfEmpty: true, time: current.modified });
  }
  const r = await versions.keepIf(req.text, req.by, { base: req.base });
  switch (r.outcome) {
    case 'stale':
      return { outcome: 'stale', current: r.current };
    case 'unchanged':
      return { outcome: 'unchanged', policy: check.policy, version: r.version };
    case 'kept':
      return { outcome: 'activated', policy: check.policy, version: r.version, before: r.before?.text ?? '' };
  }
}

/** A cluster's versions store pushes; a single gateway's activates its file (activate.ts). */
export const isClusterStore = (versions: PolicyVersionStore): versions is DbPolicyVersions => versions instanceof DbPolicyVersions;
