/**
 * Rows the migrations themselves write (store_changes' counters at 0): a target holding only these
 * is as empty as a fresh store. Found by migrating a throw-away in-memory SQLite database, so a
 * later migration's seed rows are known without a list kept by hand.
 */
import Database from 'better-sqlite3';
import { migratePortal } from '../portal-schema.js';
import { migrate } from '../schema.js';
import type { Row } from '../sql/types.js';
import type { StorePart } from './endpoints.js';

/** A row as comparable text: columns by name, blobs as hex, integers as numbers on both engines. */
export function rowKey(row: Row): string {
  const keys = Object.keys(row).sort();
  return JSON.stringify(keys.map((k) => {
    const v = row[k];
    if (Buffer.isBuffer(v)) return ['hex', v.toString('hex')];
    if (typeof v === 'bigint') return Number(v);
    return v ?? null;
  }));
}

const cache = new Map<StorePart, Map<string, Set<string>>>();

/** Per table, the rows a freshly migrated store of `part` holds (tables without any left out). */
export function seedRows(part: StorePart): Map<string, Set<string>> {
  let seeds = cache.get(part);
  if (seeds) return seeds;
  const db = new Database(':memory:');
  try {
    if (part === 'keystore') migrate(db);
    else migratePortal(db);
    seeds = new Map();
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").all() as { name: string }[];
    for (const { name } of tables) {
      const rows = db.prepare(`SELECT * FROM "${name}"`).all() as Row[];
      if (rows.length) seeds.set(name, new Set(rows.map(rowKey)));
    }
  } finally {
    db.close();
  }
  cache.set(part, seeds);
  return seeds;
}
