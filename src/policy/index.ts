/**
 * policy: the admin's YAML rules compiled once (compile.ts, with line-accurate problems) and
 * evaluated per recipient (evaluate.ts, pure) into plans the worker executes; the directory facts
 * behind an interface (directory.ts); a readable rendering for logs and `policy explain`.
 *
 * Untrusted input: message headers and envelope addresses reach the conditions as plain strings
 * (matched by patterns the admin wrote, never interpreted). Secrets: none.
 */
export { compilePolicy, DEFAULT_COMMANDS, DEFAULT_COMMAND_ACTIONS, type CompileResult } from './compile.js';
export { evaluate, directionOf, encryptionOutcome, DEFAULT_RULE, PolicyRuntimeError } from './evaluate.js';
export { loadStaticDirectory, emptyDirectory, type Directory } from './directory.js';
export { describeAction, describePlan } from './describe.js';
export { checkPolicyText, loadPolicy, type PolicyCheck } from './load.js';
export type * from './types.js';
