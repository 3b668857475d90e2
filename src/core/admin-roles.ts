/**
 * The seven duties of the people who run the gateway (issue 18), as the admin console, its API and
 * `postern admin` name them. The names live in core/ because the keystore stores them with each
 * admin account and the admin role grants by them; what each may do is admin/permissions.ts.
 */
export const ADMIN_ROLES = [
  'administrator',
  'network_operator',
  'user_operator',
  'ca_operator',
  'policy_operator',
  'system_operator',
  'auditor',
] as const;

export type AdminRole = (typeof ADMIN_ROLES)[number];

export const isAdminRole = (s: string): s is AdminRole => (ADMIN_ROLES as readonly string[]).includes(s);

/** How each role is called on pages and in the README. */
export const ADMIN_ROLE_TITLES: Readonly<Record<AdminRole, string>> = {
  administrator: 'Administrator',
  network_operator: 'Network Operator',
  user_operator: 'User Operator',
  ca_operator: 'CA Operator',
  policy_operator: 'Policy Operator',
  system_operator: 'System Operator',
  auditor: 'Auditor',
};
