/**
 * What the supervisor and its roles say to each other over the IPC channel, and what each role is
 * allowed: the table the supervisor starts roles by (DESIGN §1, "never" is enforced by the OS).
 * Kept apart from supervisor.ts so a role's entry point can import it without the process code.
 */
import type { Config } from '../config/types.js';
import type { LogQuery } from '../log/index.js';

/**
 * portal: HTTP(S) for outside recipients, run only when `portal.listen` is set; admin: the console
 * and API for the people who run the gateway, run only when `admin.listen` is set.
 */
export type RoleName = 'smtpd' | 'worker' | 'relay' | 'portal' | 'admin';

export interface RolePrivileges {
  /** Gets the KEK's passphrase or PIN variable (and the PKCS#11 module's), and LDAP passwords. */
  unseals: boolean;
  /**
   * Runs as the unprivileged `user:` when the supervisor is root. The relay stays root: it writes
   * into maildirs anywhere the admin routes to and never faces a client.
   */
  unprivileged: boolean;
}

/**
 * The admin role faces only the inside and manages keys, so it unseals and stays privileged like
 * the worker (it writes the keystore and the policy file, both root's).
 */
export const ROLE_PRIVILEGES: Readonly<Record<RoleName, RolePrivileges>> = {
  smtpd: { unseals: false, unprivileged: true },
  portal: { unseals: false, unprivileged: true },
  worker: { unseals: true, unprivileged: false },
  relay: { unseals: false, unprivileged: false },
  admin: { unseals: true, unprivileged: false },
};

/**
 * What the admin role may ask the supervisor (answered with a 'reply' of the same id). 'metrics'
 * and 'logs' are gathered from every other live role ('collect'); the reply's data is a list with
 * one answer per process that answered in time (CollectedFrom).
 */
/** 'etrn': smtpd asks for deferred mail to be tried now (RFC 1985); it may not touch deferred/ itself. */
export type SupervisorRequest = 'status' | 'reload' | 'metrics' | 'logs' | 'etrn';

/** What a role is asked for by 'collect': its registry's snapshot, or its recent log lines. */
export type Collectable = 'metrics' | 'logs';

/** One process's answer to a 'collect', as the supervisor passes it on to the admin role. */
export interface CollectedFrom {
  role: RoleName | 'supervisor';
  index: number;
  pid: number;
  /** metrics: log/metrics.ts MetricsSnapshot; logs: log/recent.ts LogRecord[]. */
  data: unknown;
}

/** One role process as the supervisor sees it (the admin console's status). */
export interface RoleProcessStatus {
  role: RoleName;
  index: number;
  pid: number | null;
  running: boolean;
  /** ISO time of the current process's start; null while it waits to be restarted. */
  since: string | null;
  /** Restarts since the last run that lasted. */
  restarts: number;
}

/** Exit code of a role that must not be restarted (bad config, port in use): EX_CONFIG. */
export const EXIT_FATAL = 78;

/** Messages a role sends its supervisor over the IPC channel. */
export type RoleMessage =
  | { type: 'ready'; role: RoleName; addresses?: { host: string; port: number }[] }
  | { type: 'fatal'; role: RoleName; message: string }
  /** smtpd: these messages are durable in incoming/. */
  | { type: 'queued'; ids: string[] }
  /** worker: these entries are durable in outgoing/ and the worker is done with them. */
  | { type: 'outgoing'; names: string[] }
  /** worker: its event loop is turning (the supervisor's watchdog, watchdog.ts). */
  | { type: 'alive' }
  /** admin (smtpd for 'etrn', with its domain pattern): a question for the supervisor; answered by a 'reply' with the same id. */
  | { type: 'request'; id: number; what: SupervisorRequest; query?: LogQuery; pattern?: string }
  /** any role: its answer to a 'collect' with the same id. */
  | { type: 'collected'; id: number; data?: unknown; error?: string };

/** A listener's certificate and key, read by the supervisor: an unprivileged smtpd or portal cannot read a root-only key. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/**
 * Messages the supervisor sends a role. 'incoming' and 'outgoing' pass the announcements on (like
 * Postfix's trigger to qmgr), so a role learns of new work without listing a directory per message;
 * a lost announcement only delays the entry until the role's next scan. 'reload' carries the config
 * the supervisor validated (a role that dropped root may not be able to read the files again).
 */
export type SupervisorMessage =
  | { type: 'reload'; config?: Config; tls?: TlsMaterial }
  | { type: 'shutdown' }
  | { type: 'incoming'; ids: string[] }
  | { type: 'outgoing'; names: string[] }
  | { type: 'reply'; id: number; ok: boolean; data?: unknown; error?: string }
  /** Answer with a 'collected' of the same id: this process's metrics or recent log lines. */
  | { type: 'collect'; id: number; what: Collectable; query?: LogQuery };
