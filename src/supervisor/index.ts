/**
 * supervisor: process management for `postern start` (roles as child processes, restart with
 * back-off, reload, orderly stop). Untrusted input: none. Secrets: none (roles load their own).
 */
export { Supervisor, EXIT_FATAL } from './supervisor.js';
export type { RoleName, RoleMessage, SupervisorMessage, SupervisorOptions } from './supervisor.js';
