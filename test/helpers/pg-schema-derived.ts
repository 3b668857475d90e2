/**
 * PostgreSQL migrations for the tools' tests while schema-pg.ts / portal-schema-pg.ts are still
 * being written on other branches: the SQLite schema of this Postern translated table by table
 * (INTEGER → BIGINT, BLOB → BYTEA, an INTEGER PRIMARY KEY → an identity column GENERATED ALWAYS,
 * the same keys, foreign keys and seed rows; the audit trail append-only by a plpgsql trigger).
 * `pgMigrationsFor(part)` gives the real migrations as soon as they exist, these until then.
 */
import Database from 'better-sqlite3';
import { migratePortal, PORTAL_SCHEMA_VERSION } from '../../src/keystore/portal-schema.js';
import { PORTAL_PG_MIGRATIONS } from '../../src/keystore/portal-schema-pg.js';
import { migrate, SCHEMA_VERSION } from '../../src/keystore/schema.js';
import { KEYSTORE_PG_MIGRATIONS } from '../../src/keystore/schema-pg.js';

type Part = 'keystore' | 'portal';

export function pgMigrationsFor(part: Part): readonly string[] {
  const real = part === 'keystore' ? KEYSTORE_PG_MIGRATIONS : PORTAL_PG_MIGRATIONS;
  return real.length ? real : derivedPgMigrations(part);
}

/** Whether the tests run on the real PostgreSQL schemas (false: derived ones, see above). */
export const realPgSchemas = KEYSTORE_PG_MIGRATIONS.length > 0 && PORTAL_PG_MIGRATIONS.length > 0;

const q = (n: string) => `"${n}"`;
const pgType = (t: string) => (/INT/i.test(t) ? 'BIGINT' : /BLOB/i.test(t) ? 'BYTEA' : 'TEXT');

export function derivedPgMigrations(part: Part): string[] {
  const db = new Database(':memory:');
  try {
    if (part === 'keystore') migrate(db);
    else migratePortal(db);
    const ddl: string[] = [];
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").all() as { name: string }[];
    for (const { name } of tables) {
      const cols = db.prepare('SELECT name, type, "notnull" AS nn, dflt_value AS dflt, pk FROM pragma_table_info(?) ORDER BY cid').all(name) as { name: string; type: string; nn: number; dflt: string | null; pk: number }[];
      const pk = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
      const identity = pk.length === 1 && /^INTEGER$/i.test(pk[0]!.type);
      const defs = cols.map((c) => {
        if (identity && c.pk) return `${q(c.name)} BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY`;
        return `${q(c.name)} ${pgType(c.type)}${c.nn ? ' NOT NULL' : ''}${c.dflt !== null ? ` DEFAULT ${c.dflt}` : ''}`;
      });
      // As schema-pg.ts does: the address tables' order of writing, SQLite's implicit rowid, as a column.
      if (name.endsWith('_addresses')) defs.push('"rowid" BIGINT GENERATED ALWAYS AS IDENTITY');
      if (pk.length && !identity) defs.push(`PRIMARY KEY (${pk.map((c) => q(c.name)).join(', ')})`);
      const fks = db.prepare('SELECT "table" AS ref, "from" AS col, "to" AS target, on_delete FROM pragma_foreign_key_list(?)').all(name) as { ref: string; col: string; target: string; on_delete: string }[];
      for (const f of fks) defs.push(`FOREIGN KEY (${q(f.col)}) REFERENCES ${q(f.ref)} (${q(f.target)})${f.on_delete === 'CASCADE' ? ' ON DELETE CASCADE' : ''}`);
      ddl.push(`CREATE TABLE ${q(name)} (\n  ${defs.join(',\n  ')}\n);`);
    }
    // Tables in foreign-key order: a CREATE may only name a table already made.
    const ordered = orderByReferences(ddl);
    for (const { name } of tables) {
      for (const row of db.prepare(`SELECT * FROM ${q(name)}`).all() as Record<string, unknown>[]) {
        const cols = Object.keys(row);
        ordered.push(`INSERT INTO ${q(name)} (${cols.map(q).join(', ')}) VALUES (${cols.map((c) => (typeof row[c] === 'number' ? String(row[c]) : `'${String(row[c]).replace(/'/g, "''")}'`)).join(', ')});`);
      }
    }
    if (part === 'keystore') {
      ordered.push(`CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();`);
    }
    const version = part === 'keystore' ? SCHEMA_VERSION : PORTAL_SCHEMA_VERSION;
    return [ordered.join('\n'), ...Array<string>(version - 1).fill('')];
  } finally {
    db.close();
  }
}

function orderByReferences(creates: string[]): string[] {
  const nameOf = (s: string) => /^CREATE TABLE "([^"]+)"/.exec(s)![1]!;
  const refsOf = (s: string) => [...s.matchAll(/REFERENCES "([^"]+)"/g)].map((m) => m[1]!).filter((r) => r !== nameOf(s));
  const out: string[] = [];
  const done = new Set<string>();
  while (out.length < creates.length) {
    for (const c of creates) if (!done.has(nameOf(c)) && refsOf(c).every((r) => done.has(r))) (done.add(nameOf(c)), out.push(c));
  }
  return out;
}
