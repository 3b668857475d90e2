/**
 * supervisor: process management for `postern start` (roles as child processes, restart with
 * back-off, reload, orderly stop) and the file modes of data_dir. Untrusted input: none. Secrets:
 * none (roles load their own).
 */
export { Supervisor, type RoleCommand, type SupervisorOptions } from './supervisor.js';
export { EXIT_FATAL, ROLE_PRIVILEGES, type RoleName, type RoleMessage, type RolePrivileges, type SupervisorMessage, type TlsMaterial, type SupervisorRequest, type RoleProcessStatus, type CollectedFrom, type Collectable } from './protocol.js';
export { heartbeatInterval } from './watchdog.js';
export { securePaths, type PrivatePaths } from './file-modes.js';
export { roleEnvironment, secretVariables } from './environment.js';
export { AccountError, lookupAccount, unprivilegedAccount, type Account } from './account.js';
