/**
 * `postern store migrate`: a gateway's whole store (keystore, and the portal's tables) copied
 * from one backend to the other — SQLite → PostgreSQL to form a cluster, back to leave one.
 *
 * Row for row with ids kept (a sealed secret's AAD is its row id, reply links and sessions name
 * ids), blobs byte for byte, the audit trail as it is (its triggers refuse UPDATE and DELETE, not
 * INSERT), then PostgreSQL's sequences (or SQLite's AUTOINCREMENT counters) set past every id
 * given, so no id is given twice. Sealed secrets move sealed: no KEK is needed or opened.
 *
 * Refused before anything is written: a source whose schema is not this Postern's (a gateway
 * migrates its store at start), a target that already holds data, two ends whose tables or
 * columns differ. The rows go in one transaction per store, under the target's write lock.
 */
import { auditValues, INSERT_AUDIT } from '../audit-log.js';
import { PORTAL_PG_MIGRATIONS } from '../portal-schema-pg.js';
import { PORTAL_SCHEMA_VERSION } from '../portal-schema.js';
import { KEYSTORE_PG_MIGRATIONS } from '../schema-pg.js';
import { SCHEMA_VERSION } from '../schema.js';
import type { Sql, SqlValue } from '../sql/types.js';
import { catalogueDifferences, hasRowid, quoteName, readCatalogue, type TableInfo, type TableReader } from './catalogue.js';
import { describeLocation, openSnapshot, openWritable, tableRows, type OpenedStore, type StoreLocation, type StorePart, type WritableStore } from './endpoints.js';
import { rowKey, seedRows } from './seeds.js';

export interface StoreEnds {
  keystore: StoreLocation;
  /** The portal's tables; null: none (a source gateway without portal.db). */
  portal: StoreLocation | null;
}

export interface MigrateStoreOptions {
  from: StoreEnds;
  to: StoreEnds;
  /** false: check both ends and count the rows, write nothing. */
  write: boolean;
  /** Who, for the target's audit trail ("cli:<login>"). */
  actor: string;
  /** The PostgreSQL schemas' migrations (tests give others); default this Postern's. */
  migrations?: { keystore: readonly string[]; portal: readonly string[] };
}

export interface TableCount {
  part: StorePart;
  table: string;
  rows: number;
}

export interface MigrateStoreResult {
  tables: TableCount[];
  written: boolean;
  /** Whether the portal's tables were part of it (a source may have none). */
  portal: boolean;
  from: string;
  to: string;
}

export type StoreMigrateErrorCode = 'no-source' | 'no-target' | 'same-store' | 'source-version' | 'target-version' | 'not-empty' | 'schemas-differ';

export class StoreMigrateError extends Error {
  override readonly name = 'StoreMigrateError';
  constructor(
    readonly code: StoreMigrateErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const VERSIONS: Record<StorePart, number> = { keystore: SCHEMA_VERSION, portal: PORTAL_SCHEMA_VERSION };
/** Bound parameters per INSERT: under SQLite's and PostgreSQL's limits, whatever the build. */
const MAX_PARAMS = 900;

export async function migrateStore(o: MigrateStoreOptions): Promise<MigrateStoreResult> {
  const migrations = o.migrations ?? { keystore: KEYSTORE_PG_MIGRATIONS, portal: PORTAL_PG_MIGRATIONS };
  const from = describeLocation(o.from.keystore, 'keystore');
  const to = describeLocation(o.to.keystore, 'keystore');
  for (const part of ['keystore', 'portal'] as const) {
    const a = o.from[part];
    const b = o.to[part];
    if (a && b && describeLocation(a, part) === describeLocation(b, part)) throw new StoreMigrateError('same-store', `the source and the target are the same store (${describeLocation(a, part)})`);
  }
  const sources: Partial<Record<StorePart, OpenedStore>> = {};
  const targets: Partial<Record<StorePart, WritableStore>> = {};
  let done = false;
  try {
    const ks = await openSnapshot(o.from.keystore, 'keystore');
    if (!ks || ks.version === null) {
      await ks?.close();
      throw new StoreMigrateError('no-source', `there is no Postern keystore at ${from}`);
    }
    sources.keystore = ks;
    if (o.from.portal) {
      const ps = await openSnapshot(o.from.portal, 'portal');
      if (ps && ps.version !== null) sources.portal = ps;
      else await ps?.close();
    }
    const parts = (['keystore', 'portal'] as const).filter((p) => sources[p]);
    const catalogues: Partial<Record<StorePart, TableInfo[]>> = {};
    for (const part of parts) {
      checkSourceVersion(part, sources[part]!.version!, describeLocation(o.from[part]!, part));
      catalogues[part] = await readCatalogue(sources[part]!.reader);
    }
    if (parts.includes('portal') && !o.to.portal) throw new StoreMigrateError('no-target', 'the source has portal tables but no target was given for them');
    // Refusals first, reading only: a refused migration leaves both ends as they were.
    for (const part of parts) await inspectTarget(o.to[part]!, part);
    if (!o.write) {
      const tables: TableCount[] = [];
      for (const part of parts) for (const t of catalogues[part]!) tables.push({ part, table: t.name, rows: await countRows(sources[part]!.reader, t.name) });
      return { tables, written: false, portal: parts.includes('portal'), from, to };
    }
    const targetTables: Partial<Record<StorePart, Map<string, TableInfo>>> = {};
    for (const part of parts) {
      targets[part] = await openWritable(o.to[part]!, part, migrations[part]);
      const theirs = await readCatalogue(targets[part]!.sql);
      const d = catalogueDifferences(catalogues[part]!, theirs);
      // A table the target lacks may be left behind only when it holds nothing.
      const problems = [...d.columns];
      for (const name of d.missingInTarget) {
        const n = await countRows(sources[part]!.reader, name);
        if (n) problems.push(`table ${name} (${n} rows) is missing in the target`);
      }
      if (problems.length) throw new StoreMigrateError('schemas-differ', `the ${part} schemas of ${describeLocation(o.from[part]!, part)} and ${describeLocation(o.to[part]!, part)} differ: ${problems.join('; ')}`);
      catalogues[part] = catalogues[part]!.filter((t) => !d.missingInTarget.includes(t.name));
      targetTables[part] = new Map(theirs.map((t) => [t.name, t]));
    }
    const copy = (part: StorePart) => copyPart(sources[part]!.reader, targets[part]!.sql, catalogues[part]!, targetTables[part]!, part, describeLocation(o.to[part]!, part));
    const tables = await targets.keystore!.sql.transaction(async () => {
      const counts = await copy('keystore');
      const portalRows = parts.includes('portal') ? ` and the portal's tables` : '';
      const total = counts.reduce((n, c) => n + c.rows, 0);
      await targets.keystore!.sql.run(INSERT_AUDIT, auditValues({ actor: o.actor, action: 'store-migrate', object: 'keystore', detail: `from ${from} to ${to}: ${total} rows in ${counts.length} tables${portalRows}` }, Date.now()));
      // The portal's transaction commits just before the keystore's: the one moment a failure
      // could leave them apart (a retry then finds the portal's tables not empty, and says so).
      if (parts.includes('portal')) counts.push(...(await targets.portal!.sql.transaction(() => copy('portal'))));
      return counts;
    });
    done = true;
    return { tables, written: true, portal: parts.includes('portal'), from, to };
  } finally {
    for (const s of Object.values(sources)) await s.close().catch(() => undefined);
    for (const t of Object.values(targets)) {
      await t.close().catch(() => undefined);
      if (!done) t.discard();
    }
  }
}

function checkSourceVersion(part: StorePart, version: number, where: string): void {
  const ours = VERSIONS[part];
  if (version < ours) throw new StoreMigrateError('source-version', `the ${part} at ${where} has schema version ${version}, this Postern's is ${ours}: start the gateway once on it (it migrates its store at start), then migrate it`);
  if (version > ours) throw new StoreMigrateError('source-version', `the ${part} at ${where} has schema version ${version}, newer than this Postern (${ours}): use the Postern that wrote it, or upgrade this one`);
}

/** Refuses a target newer than this Postern or holding data; writes nothing (a missing SQLite file is fine). */
async function inspectTarget(loc: StoreLocation, part: StorePart): Promise<void> {
  const t = await openSnapshot(loc, part);
  if (!t) return;
  try {
    const where = describeLocation(loc, part);
    if (t.version === null) return;
    if (t.version > VERSIONS[part]) throw new StoreMigrateError('target-version', `the ${part} at ${where} has schema version ${t.version}, newer than this Postern (${VERSIONS[part]}): upgrade Postern`);
    const full = await tablesWithData(t.reader, await readCatalogue(t.reader), part);
    if (full.length) throw notEmpty(part, where, loc, full);
  } finally {
    await t.close();
  }
}

function notEmpty(part: StorePart, where: string, loc: StoreLocation, tables: string[]): StoreMigrateError {
  const how = loc.kind === 'sqlite' ? `move the file (and its -wal and -shm files) away` : `empty it with DROP SCHEMA ${part} CASCADE (as the database owner; no gateway may use it then)`;
  return new StoreMigrateError('not-empty', `the target ${where} already holds data (${tables.join(', ')}): store migrate copies into an empty store only; to replace it, ${how}`);
}

/** Tables holding rows other than those the migrations write themselves. */
async function tablesWithData(db: TableReader, tables: TableInfo[], part: StorePart): Promise<string[]> {
  const seeds = seedRows(part);
  const out: string[] = [];
  for (const t of tables) {
    const seed = seeds.get(t.name) ?? new Set<string>();
    const rows = await db.all(`SELECT * FROM ${quoteName(t.name)} LIMIT ?`, [seed.size + 1]);
    if (rows.length > seed.size || rows.some((r) => !seed.has(rowKey(r)))) out.push(t.name);
  }
  return out;
}

async function countRows(db: TableReader, table: string): Promise<number> {
  const [r] = await db.all<{ n: number }>(`SELECT count(*) AS n FROM ${quoteName(table)}`);
  return Number(r?.n ?? 0);
}

/** One store's tables copied into `dst`; call inside dst's transaction. */
async function copyPart(src: TableReader, dst: Sql, tables: TableInfo[], theirs: Map<string, TableInfo>, part: StorePart, where: string): Promise<TableCount[]> {
  // Checked again under the write lock: a node may have started on the target meanwhile.
  const full = await tablesWithData(dst, [...theirs.values()], part);
  if (full.length) throw new StoreMigrateError('not-empty', `the target ${where} took data while being checked (${full.join(', ')}); nothing was copied`);
  const seeded = [...theirs.keys()].filter((name) => seedRows(part).has(name));
  for (const name of seeded) await dst.run(`DELETE FROM ${quoteName(name)}`);
  const counts: TableCount[] = [];
  for (const t of tables) {
    const target = theirs.get(t.name)!;
    const cols = t.columns.map((c) => c.name);
    // The order rows were written in, where both ends keep one (SQLite's rowid, PostgreSQL's column).
    if (!cols.includes('rowid') && hasRowid(t) && hasRowid(target)) cols.push('rowid');
    const overriding = target.columns.some((c) => c.generatedAlways) ? ' OVERRIDING SYSTEM VALUE' : '';
    const head = `INSERT INTO ${quoteName(t.name)} (${cols.map(quoteName).join(', ')})${overriding} VALUES `;
    const tuple = `(${cols.map(() => '?').join(', ')})`;
    const perInsert = Math.max(1, Math.floor(MAX_PARAMS / cols.length));
    let batch: SqlValue[] = [];
    let inBatch = 0;
    let rows = 0;
    const flush = async () => {
      if (!inBatch) return;
      await dst.run(head + Array(inBatch).fill(tuple).join(', '), batch);
      batch = [];
      inBatch = 0;
    };
    for await (const row of tableRows(src, t.name, cols, t.primaryKey)) {
      for (const c of cols) batch.push(row[c] as SqlValue);
      rows++;
      if (++inBatch === perInsert) await flush();
    }
    await flush();
    await carryIdCounter(src, dst, t, target);
    counts.push({ part, table: t.name, rows });
  }
  return counts;
}

/**
 * Id counters carried: PostgreSQL's sequences (the key's, and a declared rowid's) set past every
 * value copied, the key's also past the source's own counter (AUTOINCREMENT never gives a deleted
 * account's id again); SQLite's AUTOINCREMENT counter set from the source's sequence likewise.
 */
async function carryIdCounter(src: TableReader, dst: Sql, t: TableInfo, target: TableInfo): Promise<void> {
  const key = t.primaryKey.length === 1 && t.columns.find((c) => c.name === t.primaryKey[0])?.valueClass === 'integer' ? t.primaryKey[0]! : null;
  const high = key ? await idCounter(src, t.name, key) : 0;
  if (dst.dialect === 'postgres') {
    for (const c of target.columns) {
      if (c.valueClass !== 'integer') continue;
      const seq = await serialSequence(dst, t.name, c.name);
      if (!seq) continue;
      const [m] = await dst.all<{ m: number | null }>(`SELECT max(${quoteName(c.name)}) AS m FROM ${quoteName(t.name)}`);
      const value = Math.max(Number(m?.m ?? 0), c.name === key ? high : 0);
      if (value > 0) await dst.get('SELECT setval(CAST(? AS regclass), ?)', [seq, value]);
    }
    return;
  }
  if (!target.autoincrement || high <= 0) return;
  if (!(await dst.run('UPDATE sqlite_sequence SET seq = ? WHERE name = ? AND seq < ?', [high, t.name, high]))) {
    const [row] = await dst.all('SELECT seq FROM sqlite_sequence WHERE name = ?', [t.name]);
    if (!row) await dst.run('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)', [t.name, high]);
  }
}

async function serialSequence(db: TableReader, table: string, key: string): Promise<string | null> {
  const [r] = await db.all<{ seq: string | null }>('SELECT pg_get_serial_sequence(?, ?) AS seq', [quoteName(table), key]);
  return r?.seq ?? null;
}

/** The last id the source's counter gave (0 when it keeps none for the table). */
async function idCounter(src: TableReader, table: string, key: string): Promise<number> {
  if (src.dialect === 'sqlite') {
    if (!(await src.all("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'")).length) return 0;
    const [r] = await src.all<{ seq: number }>('SELECT seq FROM sqlite_sequence WHERE name = ?', [table]);
    return Number(r?.seq ?? 0);
  }
  const seq = await serialSequence(src, table, key);
  if (!seq) return 0;
  // The name comes from the catalogue (pg_get_serial_sequence quotes it), not from a caller.
  const [r] = await src.all<{ last_value: number; is_called: boolean }>(`SELECT last_value, is_called FROM ${seq}`);
  return r?.is_called ? Number(r.last_value) : 0;
}
