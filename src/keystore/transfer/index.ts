/**
 * transfer: a whole store moved between backends (`postern store migrate`), SQLite ⇄ PostgreSQL.
 * Reads the source as a snapshot, writes the target in one transaction per store; secrets stay
 * sealed (no KEK is opened); a PostgreSQL password never appears in a message or the audit trail.
 */
export { migrateStore, StoreMigrateError, type MigrateStoreOptions, type MigrateStoreResult, type StoreEnds, type StoreMigrateErrorCode, type TableCount } from './copy.js';
export { describeLocation, parseStoreLocation, StoreLocationError, type StoreLocation, type StorePart } from './endpoints.js';
export { catalogueDifferences, readCatalogue, type TableInfo, type TableReader } from './catalogue.js';
