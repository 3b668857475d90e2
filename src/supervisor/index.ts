/**
 * supervisor: process management for `postern start` (roles as child processes, restart with
 * back-off, reload, orderly stop) and the file modes of data_dir. Untrusted input: none. Secrets:
 * none (roles load their own).
 */
export { Supervisor, EXIT_FATAL } from './supervisor.js';
export type { RoleName, RoleMessage, SupervisorMessage, SupervisorOptions } from './supervisor.js';
export { securePaths, type PrivatePaths } from './file-modes.js';
