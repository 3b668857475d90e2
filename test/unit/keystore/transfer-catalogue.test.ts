/**
 * The catalogue `store migrate` reads instead of a hand-kept table list: every table of the
 * SQLite schema, parents before the tables whose foreign keys point at them, integer, text and
 * blob columns told apart; differences between two ends named column by column.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migratePortal } from '../../../src/keystore/portal-schema.js';
import { migrate } from '../../../src/keystore/schema.js';
import { SqliteSql } from '../../../src/keystore/sql/sqlite.js';
import { catalogueDifferences, dependencyOrder, readCatalogue, type TableInfo } from '../../../src/keystore/transfer/catalogue.js';

function migrated(part: 'keystore' | 'portal'): SqliteSql {
  const db = new Database(':memory:');
  if (part === 'keystore') migrate(db);
  else migratePortal(db);
  return new SqliteSql(db, ':memory:');
}

const table = (name: string, references: string[] = []): TableInfo => ({ name, columns: [], primaryKey: [], references, autoincrement: false, implicitRowid: false });

describe('store catalogue', () => {
  it('lists every table of the keystore, each after the tables its foreign keys name', async () => {
    const sql = migrated('keystore');
    const tables = await readCatalogue(sql);
    const names = tables.map((t) => t.name);
    for (const t of ['certificates', 'certificate_addresses', 'private_keys', 'sealed_secrets', 'pgp_keys', 'pdf_passwords', 'admin_accounts', 'audit_log', 'store_changes', 'policy_versions', 'cluster_nodes']) expect(names).toContain(t);
    expect(names.some((n) => n.startsWith('sqlite_'))).toBe(false);
    for (const t of tables) for (const r of t.references) expect(names.indexOf(r), `${r} before ${t.name}`).toBeLessThan(names.indexOf(t.name));
    const certs = tables.find((t) => t.name === 'certificates')!;
    expect(certs.primaryKey).toEqual(['id']);
    expect(certs.columns.find((c) => c.name === 'der')!.valueClass).toBe('blob');
    expect(certs.columns.find((c) => c.name === 'not_after')!.valueClass).toBe('integer');
    expect(certs.columns.find((c) => c.name === 'subject')!.valueClass).toBe('text');
    expect(tables.find((t) => t.name === 'certificate_addresses')).toMatchObject({ primaryKey: ['certificate_id', 'address_key'], implicitRowid: true });
    expect(certs.implicitRowid).toBe(false); // its id is the rowid
    await sql.close();
  });

  it('knows the portal\'s AUTOINCREMENT tables (their ids are never given twice)', async () => {
    const sql = migrated('portal');
    const tables = await readCatalogue(sql);
    expect(tables.filter((t) => t.autoincrement).map((t) => t.name).sort()).toEqual(['webmail_accounts', 'webmail_messages']);
    await sql.close();
  });

  it('refuses foreign keys that go round in a cycle, naming the tables', () => {
    expect(() => dependencyOrder([table('a', ['b']), table('b', ['a']), table('c')], 'db')).toThrow(/db: the foreign keys of a, b form a cycle/);
    expect(dependencyOrder([table('child', ['parent', 'child']), table('parent')], 'db').map((t) => t.name)).toEqual(['parent', 'child']);
  });

  it('takes SQLite\'s implicit rowid and a declared rowid column for one another', () => {
    const col = (name: string) => ({ name, type: 'BIGINT', valueClass: 'integer' as const, generatedAlways: false });
    const sqlite: TableInfo = { ...table('a'), columns: [col('k')], implicitRowid: true };
    const postgres: TableInfo = { ...table('a'), columns: [col('k'), col('rowid')] };
    expect(catalogueDifferences([sqlite], [postgres]).columns).toEqual([]);
    expect(catalogueDifferences([postgres], [sqlite]).columns).toEqual([]);
    expect(catalogueDifferences([{ ...sqlite, implicitRowid: false }], [postgres]).columns).toEqual(['column a.rowid is missing in the source']);
  });

  it('names the columns two ends disagree on, and the tables only one has', () => {
    const col = (name: string, valueClass: 'integer' | 'text') => ({ name, type: valueClass.toUpperCase(), valueClass, generatedAlways: false });
    const from: TableInfo[] = [{ ...table('t'), columns: [col('id', 'integer'), col('flag', 'integer'), col('gone', 'text')] }, table('legacy')];
    const to: TableInfo[] = [{ ...table('t'), columns: [col('id', 'integer'), col('flag', 'text'), col('added', 'text')] }, table('new')];
    expect(catalogueDifferences(from, to)).toEqual({
      missingInTarget: ['legacy'],
      missingInSource: ['new'],
      columns: ['column t.flag holds integer values (INTEGER) in the source but text (TEXT) in the target', 'column t.gone is missing in the target', 'column t.added is missing in the source'],
    });
  });
});
