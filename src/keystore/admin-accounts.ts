/**
 * What an admin account is (issue 18), apart from where it is stored (store-admin.ts): the rules
 * for its name, password and roles, its scrypt cost, and its password hash as a PHC string.
 *
 * Untrusted input: names, passwords and role names from the command line, stdin and the admin
 * API's log-in form (bounded before any work: a megabyte of password costs nothing). Secrets:
 * passwords and their hashes — never logged, audited or put in an error message.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ADMIN_ROLES, isAdminRole, type AdminRole } from '../core/admin-roles.js';
import { b64, parsePhc, phcHead, runScrypt, SALT_BYTES, type ScryptCost } from './scrypt.js';

/** An admin account as the store hands it out: never the password hash nor the TOTP secret. */
export interface AdminAccount {
  /** As it was created; compared case-insensitively. */
  name: string;
  roles: AdminRole[];
  disabled: boolean;
  /** A second factor (TOTP) is asked at log-in. */
  totp: boolean;
  created: Date;
  passwordChanged: Date;
  lastLogin: Date | null;
}

/** An account as `postern admin list --json` and the admin API show it. */
export function adminAccountJson(a: AdminAccount): { name: string; roles: AdminRole[]; disabled: boolean; totp: boolean; created: string; passwordChanged: string; lastLogin: string | null } {
  return {
    name: a.name, roles: a.roles, disabled: a.disabled, totp: a.totp,
    created: a.created.toISOString(), passwordChanged: a.passwordChanged.toISOString(), lastLogin: a.lastLogin?.toISOString() ?? null,
  };
}

export type AdminLoginResult = { ok: true; account: AdminAccount } | { ok: false; reason: 'invalid' | 'totp_required' | 'disabled' };

/**
 * invalid: a name, password or role that breaks the rules (400); exists: the name is taken (409);
 * unknown: no such account (404); conflict: the change would leave no enabled Administrator (409).
 */
export type AdminAccountErrorCode = 'invalid' | 'exists' | 'unknown' | 'conflict';

export class AdminAccountError extends Error {
  override readonly name = 'AdminAccountError';
  constructor(
    readonly code: AdminAccountErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A stored hash that cannot be read, or scrypt failing: the gateway's fault, not the caller's. */
export class AdminPasswordHashError extends Error {
  override readonly name = 'AdminPasswordHashError';
}

/** As the portal's webmail passwords (WEBMAIL_SCRYPT): N=2^15, r=8, 32 MiB, ~0.1 s a log-in. */
export const ADMIN_SCRYPT: Readonly<ScryptCost> = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

export const MIN_ADMIN_PASSWORD_LENGTH = 12;
/** Longer passwords are refused, not hashed. */
export const MAX_ADMIN_PASSWORD_BYTES = 1024;

const NAME = /^[A-Za-z0-9._@-]{1,64}$/;

/** A name for a message: printable ASCII, quoted, clipped (it may be hostile). */
export const shownName = (s: unknown) =>
  JSON.stringify(String(s).slice(0, 64)).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** The comparison key of an account name (ASCII only, so lower case is simple). */
export function adminNameKey(name: string): string {
  return name.toLowerCase();
}

export function isAdminName(name: unknown): name is string {
  return typeof name === 'string' && NAME.test(name);
}

export function checkAdminName(name: unknown): string {
  if (!isAdminName(name)) throw new AdminAccountError('invalid', `the account name ${shownName(name)} is not allowed: 1 to 64 of the characters A-Z a-z 0-9 . _ @ -`);
  return name;
}

export function checkAdminPassword(password: unknown): string {
  if (typeof password !== 'string' || [...password].length < MIN_ADMIN_PASSWORD_LENGTH) {
    throw new AdminAccountError('invalid', `an admin password must have at least ${MIN_ADMIN_PASSWORD_LENGTH} characters`);
  }
  if (Buffer.byteLength(password, 'utf8') > MAX_ADMIN_PASSWORD_BYTES) throw new AdminAccountError('invalid', `an admin password may have at most ${MAX_ADMIN_PASSWORD_BYTES} bytes`);
  // A line ending or tab piped in by mistake would be part of it and never typed again.
  if (/\p{Cc}/u.test(password)) throw new AdminAccountError('invalid', 'an admin password may not contain control characters (line endings, tabs)');
  return password;
}

/** The roles, each once, in the order of ADMIN_ROLES; at least one. */
export function checkAdminRoles(roles: unknown): AdminRole[] {
  if (!Array.isArray(roles) || roles.length === 0) throw new AdminAccountError('invalid', `an admin account needs at least one role: ${ADMIN_ROLES.join(', ')}`);
  const bad = roles.filter((r) => typeof r !== 'string' || !isAdminRole(r));
  if (bad.length) throw new AdminAccountError('invalid', `unknown role ${shownName(bad[0])}; the roles are ${ADMIN_ROLES.join(', ')}`);
  return ADMIN_ROLES.filter((r) => roles.includes(r));
}

/** `$scrypt$ln=..,r=..,p=..$salt$hash` of a new password. */
export async function hashAdminPassword(password: string, cost: ScryptCost): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await runScrypt(password, salt, cost, AdminPasswordHashError);
  return `${phcHead(cost, salt)}$${b64(hash)}`;
}

/** Does `password` match the stored PHC string? Compared in constant time. */
export async function verifyAdminPassword(phc: string, password: string): Promise<boolean> {
  const stored = parsePhc(phc, 'admin password hash', AdminPasswordHashError);
  if (!stored.hash) throw new AdminPasswordHashError('the stored admin password hash is damaged (no hash)');
  const derived = await runScrypt(password, stored.salt, stored, AdminPasswordHashError);
  try {
    return derived.length === stored.hash.length && timingSafeEqual(derived, stored.hash);
  } finally {
    derived.fill(0);
  }
}
