/**
 * The keystore's PostgreSQL schema (issue 19), numbered as schema.ts's SQLite migrations
 * (sql/migrate-pg.ts): entry 1 creates the schema as SQLite has it after migration 7; entries
 * 2–7 are empty (folded into 1). A later migration goes into both lists under the same number.
 */
export const KEYSTORE_PG_MIGRATIONS: readonly string[] = [
  // TODO(store-core helper): the whole schema as of SQLite migration 7
];
