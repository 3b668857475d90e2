/**
 * policy: the admin's YAML rules compiled once (compile.ts, with line-accurate problems) and
 * evaluated per recipient (evaluate.ts, pure) into plans the worker executes; the directory facts
 * behind an interface (directory.ts); a readable rendering for logs and `policy explain`; the
 * policy file checked as a whole (load.ts), activated atomically (activate.ts) with the earlier
 * versions kept (versions.ts); in a cluster, the versions in the keystore database (db-versions.ts),
 * pushed there (push.ts) and followed by every node's policy file (follow.ts).
 *
 * Untrusted input: message headers and envelope addresses reach the conditions as plain strings
 * (matched by patterns the admin wrote, never interpreted); policy drafts from the admin API
 * (checked like the file, never run before they validate). Secrets: none.
 */
export { compilePolicy, DEFAULT_COMMANDS, DEFAULT_COMMAND_ACTIONS, type CompileResult } from './compile.js';
export { evaluate, directionOf, encryptionOutcome, DEFAULT_RULE, PolicyRuntimeError } from './evaluate.js';
export { loadStaticDirectory, emptyDirectory, type Directory } from './directory.js';
export { describeAction, describePlan } from './describe.js';
export { checkConfigAndPolicy, checkPolicyText, loadPolicy, type PolicyCheck } from './load.js';
export { PolicyLockedError } from './file-lock.js';
export { activatePolicy, readPolicyFile, type ActivateRequest, type ActivateResult, type PolicyFileState } from './activate.js';
export { FilePolicyVersions, policyHash, policyVersionsDir, POLICY_VERSION_ID, DEFAULT_KEPT_VERSIONS, type PolicyVersion, type PolicyVersionStore } from './versions.js';
export { DbPolicyVersions, type KeepIfResult } from './db-versions.js';
export { pushPolicy, isClusterStore } from './push.js';
export { followClusterPolicy, PolicyFollower, type FollowOutcome, type FollowerLog, type PolicyFollowerOptions } from './follow.js';
export type * from './types.js';
