/**
 * The contract between the admin role's HTTP layer (app.ts) and the API's route groups (api/*.ts):
 * a route declares its method, URL, JSON schemas, the one permission it needs and a handler that
 * gets the request already authenticated and permitted. app.ts turns the declarations into Fastify
 * routes (schemas validated by Fastify, described by the OpenAPI document at /api/openapi.json),
 * checks the permission before the handler runs (and audits a refused change), and renders errors.
 * Console pages call the same handlers through the API, so a page can never do what the API refuses.
 */
import type { AdminRole } from '../core/admin-roles.js';
import type { Config } from '../config/types.js';
import type { KeyStore, PortalDb } from '../keystore/index.js';
import type { Logger, LogQuery, LogRecord } from '../log/index.js';
import type { Spool } from '../spool/index.js';
import type { PolicyVersionStore } from '../policy/index.js';
import type { HourlyTable } from './hourly.js';
import type { Permission } from './permissions.js';

/** Who is calling: a signed-in account (console, API with the session cookie) and from where. */
export interface AdminCaller {
  account: string;
  roles: readonly AdminRole[];
  /** The client's IP address. */
  client: string;
  via: 'api' | 'console';
}

/** What the supervisor tells the admin role (status, other processes' log lines) and does for it (reload). */
export interface SupervisorLink {
  /** Each role process the supervisor runs. */
  status(): Promise<RoleStatus[]>;
  /** Reload the whole gateway as SIGHUP does; false when the new config did not validate (kept the old). */
  reload(): Promise<boolean>;
  /**
   * The recent log lines (log/recent.ts) that match, of the supervisor and each other role
   * process that answered in time: one list per process, newest first. Not this process's own.
   * Absent where there is no supervisor to ask (the admin app run alone, tests).
   */
  logs?(query: LogQuery): Promise<LogRecord[][]>;
}

export interface RoleStatus {
  role: string;
  index: number;
  pid: number | null;
  running: boolean;
  /** ISO time the process was started. */
  since: string | null;
  restarts: number;
}

/** One change as the audit trail keeps it (keystore audit_log). */
export interface AuditChange {
  action: string;
  /** What changed: "cert:<fp>", "pgp:<fp>", "queue:<id>", "policy", "admin:<name>" … */
  object: string;
  detail?: string;
  /** Before and after, for policy and trust (text or JSON), never secrets. */
  before?: string;
  after?: string;
}

export interface AdminContext {
  /** The config in force (replaced on reload). */
  config(): Config;
  /** Absolute path of postern.yaml. */
  configFile: string;
  /** The keystore, opened with the KEK (the admin role may unseal, like the worker). */
  store: KeyStore;
  portal: PortalDb;
  spool: Spool;
  log: Logger;
  supervisor: SupervisorLink;
  /** A cluster's policy versions (issue 19: the keystore database); absent: data_dir's files. */
  policyVersions?: PolicyVersionStore;
  /** Recipients' copies per hour and method over the last day, as the admin role counted them (absent: not counted). */
  messagesPerHour?(): HourlyTable;
  /** Append a change to the audit trail with the caller's account, client address and channel. */
  audit(caller: AdminCaller, change: AuditChange): Promise<void>;
}

/** JSON Schema (draft-07, as Fastify's validator and @fastify/swagger read it). */
export type JsonSchema = Record<string, unknown>;

export interface ApiRequest {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
  caller: AdminCaller;
}

/** A handler's answer: JSON (status 200 unless given), or a file to download. */
export type ApiResult =
  | { status?: number; json: unknown }
  | { status?: number; file: { type: string; name: string; bytes: Buffer } };

export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Below /api, Fastify syntax: '/queue/:id'. */
  url: string;
  permission: Permission;
  /** One line for the OpenAPI document and the console. */
  summary: string;
  /** Group in the OpenAPI document: queue, keys, ca, pdf, webmail, policy, system, audit. */
  tag: string;
  schema?: { params?: JsonSchema; querystring?: JsonSchema; body?: JsonSchema };
  /** The largest request body this route reads, in bytes (Fastify's bodyLimit; its default, 1 MiB, otherwise). */
  bodyLimit?: number;
  handler(req: ApiRequest, ctx: AdminContext): Promise<ApiResult>;
  /**
   * A well-formed request (the permission-matrix test sends it as every role and as nobody; an
   * allowed caller must get past the guard: any status but 401/403).
   */
  example: { params?: Record<string, string>; query?: Record<string, string>; body?: unknown };
}

/**
 * A refusal or failure a handler reports to the caller: an HTTP status and a one-line reason that
 * is safe to show (no secrets, no stack).
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    /** Extra JSON for the caller, e.g. the problems of a policy that does not validate. */
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const ok = (json: unknown, status = 200): ApiResult => ({ status, json });
