/**
 * portal.db's PostgreSQL form (issue 19): the schema `portal` in the cluster's database, numbered
 * as portal-schema.ts's SQLite migrations (entry 1 creates the schema as SQLite has it after
 * migration 2; entry 2 is empty).
 */
export const PORTAL_PG_MIGRATIONS: readonly string[] = [
  // TODO(portal helper): the whole schema as of SQLite migration 2
];
