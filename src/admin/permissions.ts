/**
 * Who may do what: the one table of the admin role's permissions (issue 18), checked in one place
 * (app.ts guards every API route by the permission the route declares; pages show a control only
 * when the caller's roles hold its permission). The README prints this table (`permissionTable`).
 *
 * Reading is split from changing, and what reveals a secret (a private key, a PDF password) is a
 * permission of its own, so the Auditor can see every page and change or reveal nothing. Trust in
 * a CA is the CA Operator's, not the User Operator's: whoever imports users' certificates must not
 * also decide which issuers are believed.
 */
import { ADMIN_ROLES, ADMIN_ROLE_TITLES, type AdminRole } from '../core/admin-roles.js';

export const PERMISSIONS = {
  'status.read': 'see the roles, the queue sizes and the dashboard',
  'queue.read': 'list and show queued messages (envelopes, states; never bodies)',
  'queue.change': 'hold, release, flush and delete queued messages',
  'keys.read': 'list, show and export public certificates and OpenPGP keys',
  'keys.change': 'import and delete certificates, private keys and OpenPGP keys',
  'keys.trust': 'trust or distrust a CA certificate as an anchor',
  'keys.export_private': 'export a private key (PKCS#12 or armored secret key, under a password)',
  'ca.read': 'see the internal CA and its CRL',
  'ca.change': 'issue and revoke certificates of the internal CA, publish its CRL',
  'pdf.read': 'list the pairs that have a PDF password',
  'pdf.change': 'reset, set or delete PDF passwords',
  'pdf.reveal': 'show a PDF password',
  'webmail.read': 'list webmail mailboxes',
  'webmail.change': 'reset or delete webmail mailboxes',
  'policy.read': 'show, validate and explain the policy and its earlier versions',
  'policy.change': 'activate a new policy',
  'config.read': 'show the configuration (secrets redacted)',
  'system.change': 'reload the running gateway',
  'logs.read': 'read recent log events',
  'audit.read': 'read and export the audit trail',
  'metrics.read': 'read the Prometheus metrics',
  'accounts.read': 'list the admin accounts and their roles',
} as const;

export type Permission = keyof typeof PERMISSIONS;

const ALL = Object.keys(PERMISSIONS) as Permission[];
const READS = ALL.filter((p) => p.endsWith('.read'));

/** The matrix: what each role grants. An account holding several roles may do what any of them may. */
export const ROLE_PERMISSIONS: Readonly<Record<AdminRole, readonly Permission[]>> = {
  administrator: ALL,
  // Sees everything, changes and reveals nothing.
  auditor: READS,
  // Delivery to the next hops: works the queue (hold, release, flush, delete) when a route fails.
  network_operator: ['status.read', 'queue.read', 'queue.change', 'config.read', 'logs.read', 'metrics.read'],
  // The running gateway: reloads it after a change to its files, watches processes, queue, logs
  // and metrics; no keys, no policy, no audit, and it leaves the mail in the queue alone.
  system_operator: ['status.read', 'queue.read', 'config.read', 'logs.read', 'metrics.read', 'system.change'],
  // Users' certificates and keys, their PDF passwords and webmail mailboxes; explains the policy to them.
  user_operator: ['status.read', 'keys.read', 'keys.change', 'keys.export_private', 'pdf.read', 'pdf.change', 'pdf.reveal', 'webmail.read', 'webmail.change', 'policy.read'],
  // The internal CA and which CAs are trusted.
  ca_operator: ['status.read', 'keys.read', 'keys.trust', 'ca.read', 'ca.change'],
  // The rules: edit, validate, explain, activate; sees keys and config to write them.
  policy_operator: ['status.read', 'policy.read', 'policy.change', 'keys.read', 'config.read', 'system.change'],
};

/** Does any of `roles` grant `permission`? */
export function allowed(roles: readonly AdminRole[], permission: Permission): boolean {
  return roles.some((r) => ROLE_PERMISSIONS[r]?.includes(permission));
}

/** The roles that grant `permission`, for the reason of a refusal ("needs Administrator or …"). */
export function rolesGranting(permission: Permission): AdminRole[] {
  return ADMIN_ROLES.filter((r) => ROLE_PERMISSIONS[r].includes(permission));
}

/** A permission that changes something (audited when refused, too) rather than reads. */
export const isChange = (p: Permission) => !p.endsWith('.read');

/** The matrix as a Markdown table (README: "The admin console"). */
export function permissionTable(): string {
  const head = `| permission | ${ADMIN_ROLES.map((r) => ADMIN_ROLE_TITLES[r]).join(' | ')} |`;
  const rule = `|---|${ADMIN_ROLES.map(() => ':-:').join('|')}|`;
  const rows = ALL.map((p) => `| \`${p}\`: ${PERMISSIONS[p]} | ${ADMIN_ROLES.map((r) => (ROLE_PERMISSIONS[r].includes(p) ? '✓' : '')).join(' | ')} |`);
  return [head, rule, ...rows].join('\n');
}
