/**
 * What a store's database holds, read from the engine's own catalogue (SQLite's sqlite_master and
 * pragmas, PostgreSQL's information_schema and pg_catalog) rather than from a list kept by hand:
 * `store migrate` copies whatever tables the migrations made, so a table added by a later
 * migration is carried without anyone remembering to add it here.
 *
 * This is the one place where the SQL differs by dialect on purpose: each engine describes its
 * tables in its own way.
 */
import type { Row, SqlDialect, SqlValue } from '../sql/types.js';

/** What the copy needs of a database: read queries (a store's Sql, or a read-only snapshot). */
export interface TableReader {
  readonly dialect: SqlDialect;
  readonly where: string;
  all<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
}

/** The kind of value a column holds, as both engines agree on it. */
export type ValueClass = 'integer' | 'text' | 'blob' | 'real' | 'other';

export interface ColumnInfo {
  name: string;
  /** The declared type, as the engine names it (for messages). */
  type: string;
  valueClass: ValueClass;
  /** PostgreSQL: an identity column GENERATED ALWAYS takes a given value only when told to. */
  generatedAlways: boolean;
}

export interface TableInfo {
  name: string;
  columns: ColumnInfo[];
  /** The primary key's columns in key order (the order rows are read in). */
  primaryKey: string[];
  /** Tables this one's foreign keys point at. */
  references: string[];
  /** SQLite AUTOINCREMENT: an id is never given twice, tracked in sqlite_sequence. */
  autoincrement: boolean;
  /**
   * SQLite's implicit rowid, not aliased by a declared column: the order rows were written in,
   * which the store reads some tables by (PostgreSQL declares it as a column `rowid`).
   */
  implicitRowid: boolean;
}

/** Whether a table has a rowid to carry: SQLite's implicit one or a declared column of that name. */
export const hasRowid = (t: TableInfo) => t.implicitRowid || t.columns.some((c) => c.name === 'rowid');

/** Tables that belong to the engine or to the migration runner, not to the store's data. */
function isBookkeeping(dialect: SqlDialect, name: string): boolean {
  return dialect === 'sqlite' ? name.startsWith('sqlite_') : name === 'schema_version';
}

/** SQLite's type affinity rules (https://sqlite.org/datatype3.html §3.1), reduced to our classes. */
function sqliteClass(declared: string): ValueClass {
  const t = declared.toUpperCase();
  if (t.includes('INT')) return 'integer';
  if (/CHAR|CLOB|TEXT/.test(t)) return 'text';
  if (t === '' || t.includes('BLOB')) return 'blob';
  if (/REAL|FLOA|DOUB/.test(t)) return 'real';
  return 'other';
}

function postgresClass(dataType: string): ValueClass {
  if (['smallint', 'integer', 'bigint'].includes(dataType)) return 'integer';
  if (['text', 'character varying', 'character'].includes(dataType)) return 'text';
  if (dataType === 'bytea') return 'blob';
  if (['real', 'double precision'].includes(dataType)) return 'real';
  return 'other';
}

async function sqliteTables(db: TableReader): Promise<TableInfo[]> {
  const tables = await db.all<{ name: string; sql: string | null }>("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name");
  const out: TableInfo[] = [];
  for (const t of tables) {
    if (isBookkeeping('sqlite', t.name)) continue;
    const cols = await db.all<{ name: string; type: string; pk: number }>('SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid', [t.name]);
    const fks = await db.all<{ ref: string }>('SELECT DISTINCT "table" AS ref FROM pragma_foreign_key_list(?)', [t.name]);
    const keyCols = cols.filter((c) => Number(c.pk) > 0);
    // An INTEGER PRIMARY KEY column is the rowid under its own name (https://sqlite.org/lang_createtable.html#rowid).
    const aliased = keyCols.length === 1 && keyCols[0]!.type.toUpperCase() === 'INTEGER';
    out.push({
      name: t.name,
      columns: cols.map((c) => ({ name: c.name, type: c.type, valueClass: sqliteClass(c.type), generatedAlways: false })),
      primaryKey: cols.filter((c) => Number(c.pk) > 0).sort((a, b) => Number(a.pk) - Number(b.pk)).map((c) => c.name),
      references: fks.map((f) => f.ref),
      autoincrement: /\bAUTOINCREMENT\b/i.test(t.sql ?? ''),
      implicitRowid: !/\bWITHOUT\s+ROWID\b/i.test(t.sql ?? '') && !aliased && !cols.some((c) => c.name.toLowerCase() === 'rowid'),
    });
  }
  return out;
}

async function postgresTables(db: TableReader): Promise<TableInfo[]> {
  const tables = await db.all<{ name: string }>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
  );
  const out: TableInfo[] = [];
  for (const t of tables) {
    if (isBookkeeping('postgres', t.name)) continue;
    const cols = await db.all<{ name: string; type: string; generation: string | null }>(
      'SELECT column_name AS name, data_type AS type, identity_generation AS generation FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position',
      [t.name],
    );
    const pk = await db.all<{ name: string }>(
      `SELECT k.column_name AS name FROM information_schema.table_constraints c
         JOIN information_schema.key_column_usage k ON k.constraint_schema = c.constraint_schema AND k.constraint_name = c.constraint_name AND k.table_name = c.table_name
        WHERE c.table_schema = current_schema() AND c.table_name = ? AND c.constraint_type = 'PRIMARY KEY' ORDER BY k.ordinal_position`,
      [t.name],
    );
    const fks = await db.all<{ ref: string }>(
      `SELECT DISTINCT r.relname AS ref FROM pg_constraint c
         JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE c.contype = 'f' AND n.nspname = current_schema() AND t.relname = ?`,
      [t.name],
    );
    out.push({
      name: t.name,
      columns: cols.map((c) => ({ name: c.name, type: c.type, valueClass: postgresClass(c.type), generatedAlways: c.generation === 'ALWAYS' })),
      primaryKey: pk.map((k) => k.name),
      references: fks.map((f) => f.ref),
      autoincrement: false,
      implicitRowid: false,
    });
  }
  return out;
}

/**
 * The store's tables in an order where every table comes after the tables its foreign keys
 * point at (so rows can be inserted with the keys enforced), ties by name.
 */
export async function readCatalogue(db: TableReader): Promise<TableInfo[]> {
  const tables = db.dialect === 'sqlite' ? await sqliteTables(db) : await postgresTables(db);
  return dependencyOrder(tables, db.where);
}

export function dependencyOrder(tables: TableInfo[], where: string): TableInfo[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const done = new Set<string>();
  const out: TableInfo[] = [];
  while (out.length < tables.length) {
    const ready = tables.filter((t) => !done.has(t.name) && t.references.every((r) => r === t.name || done.has(r) || !byName.has(r)));
    if (!ready.length) {
      const left = tables.filter((t) => !done.has(t.name)).map((t) => t.name);
      throw new Error(`${where}: the foreign keys of ${left.join(', ')} form a cycle; no order to copy them in`);
    }
    for (const t of ready) {
      done.add(t.name);
      out.push(t);
    }
  }
  return out;
}

export interface CatalogueDifferences {
  /** Tables only the source has, only the target has. */
  missingInTarget: string[];
  missingInSource: string[];
  /** Columns of tables both have that are missing on one side or hold another kind of value. */
  columns: string[];
}

/**
 * Where two catalogues differ in what a copy relies on: the same columns holding the same kind
 * of value in each table both have. Tables only one side has are listed apart: harmless when
 * empty (SQLite drops postern.db's legacy reply_tokens once its links moved to portal.db).
 */
export function catalogueDifferences(from: TableInfo[], to: TableInfo[]): CatalogueDifferences {
  const target = new Map(to.map((t) => [t.name, t]));
  const source = new Set(from.map((t) => t.name));
  const out: CatalogueDifferences = { missingInTarget: [], missingInSource: to.filter((t) => !source.has(t.name)).map((t) => t.name), columns: [] };
  for (const t of from) {
    const o = target.get(t.name);
    if (!o) {
      out.missingInTarget.push(t.name);
      continue;
    }
    const cols = new Map(o.columns.map((c) => [c.name, c]));
    for (const c of t.columns) {
      const d = cols.get(c.name);
      if (!d && c.name === 'rowid' && o.implicitRowid) continue;
      if (!d) out.columns.push(`column ${t.name}.${c.name} is missing in the target`);
      else if (c.valueClass !== d.valueClass) out.columns.push(`column ${t.name}.${c.name} holds ${c.valueClass} values (${c.type}) in the source but ${d.valueClass} (${d.type}) in the target`);
    }
    const names = new Set(t.columns.map((c) => c.name));
    for (const c of o.columns) if (!names.has(c.name) && !(c.name === 'rowid' && t.implicitRowid)) out.columns.push(`column ${t.name}.${c.name} is missing in the source`);
  }
  return out;
}

/** A table or column name quoted for SQL (both engines take double quotes). */
export function quoteName(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
