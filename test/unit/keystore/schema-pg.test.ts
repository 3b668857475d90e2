/**
 * The keystore's PostgreSQL schema (schema-pg.ts) is SQLite's after the same migrations
 * (schema.ts): the same tables, columns, nullability, primary keys and indexes, so the store's SQL
 * means the same on both and `postern store migrate` can copy table by table. The differences
 * schema-pg.ts documents are the only ones: PostgreSQL's explicit `rowid` of the address tables,
 * no legacy reply_tokens; its version is SQLite's; and the migration is safe to run twice.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KEYSTORE_PG_MIGRATIONS } from '../../../src/keystore/schema-pg.js';
import { SCHEMA_VERSION } from '../../../src/keystore/schema.js';
import { PostgresSql } from '../../../src/keystore/sql/postgres.js';
import { migratePostgres } from '../../../src/keystore/sql/migrate-pg.js';
import { openSqliteKeystore } from '../../../src/keystore/store-base.js';
import { tempDir } from '../../helpers/config.js';
import { sharedPostgres, stopSharedPostgres } from '../../helpers/store-backends.js';

type Shape = Record<string, { columns: string[]; primaryKey: string[]; indexes: string[] }>;

/** SQLite-only, by design (schema-pg.ts says why). */
const SQLITE_ONLY_TABLES = new Set(['reply_tokens']);
const PG_ONLY_COLUMNS: Record<string, string[]> = { certificate_addresses: ['rowid'], pgp_key_addresses: ['rowid'] };

async function sqliteShape(): Promise<Shape> {
  const { dir, cleanup } = await tempDir('postern-schema-');
  const sql = openSqliteKeystore(join(dir, 'postern.db'));
  try {
    const db = sql.db;
    const out: Shape = {};
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
    for (const { name } of tables) {
      if (SQLITE_ONLY_TABLES.has(name)) continue;
      const cols = db.prepare(`PRAGMA table_info(${name})`).all() as { name: string; notnull: number; pk: number }[];
      out[name] = {
        // An INTEGER PRIMARY KEY is NOT NULL in effect; a primary key column of PostgreSQL always is.
        columns: cols.map((c) => `${c.name}${c.notnull || c.pk ? ' not null' : ''}`).sort(),
        primaryKey: cols.filter((c) => c.pk).sort((a, b) => a.pk - b.pk).map((c) => c.name),
        indexes: (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`).all(name) as { name: string }[]).map((i) => i.name),
      };
    }
    return out;
  } finally {
    await sql.close();
    await cleanup();
  }
}

async function postgresShape(sql: PostgresSql): Promise<Shape> {
  const out: Shape = {};
  const tables = await sql.all("SELECT table_name FROM information_schema.tables WHERE table_schema = 'keystore' AND table_name <> 'schema_version' ORDER BY table_name");
  for (const { table_name: name } of tables as { table_name: string }[]) {
    const cols = (await sql.all("SELECT column_name, is_nullable FROM information_schema.columns WHERE table_schema = 'keystore' AND table_name = ?", [name])) as { column_name: string; is_nullable: string }[];
    const skip = new Set(PG_ONLY_COLUMNS[name] ?? []);
    const pk = await sql.all(
      `SELECT k.column_name FROM information_schema.table_constraints t JOIN information_schema.key_column_usage k
         ON k.constraint_name = t.constraint_name AND k.table_schema = t.table_schema
       WHERE t.table_schema = 'keystore' AND t.table_name = ? AND t.constraint_type = 'PRIMARY KEY' ORDER BY k.ordinal_position`,
      [name],
    );
    // Indexes made by CREATE INDEX (SQLite lists those alone with their SQL; constraints' own are left out on both).
    const indexes = await sql.all(
      `SELECT i.indexname FROM pg_indexes i WHERE i.schemaname = 'keystore' AND i.tablename = ?
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) ORDER BY i.indexname`,
      [name],
    );
    out[name] = {
      columns: cols.filter((c) => !skip.has(c.column_name)).map((c) => `${c.column_name}${c.is_nullable === 'NO' ? ' not null' : ''}`).sort(),
      primaryKey: pk.map((r) => r.column_name as string),
      indexes: indexes.map((r) => r.indexname as string),
    };
  }
  return out;
}

describe('the keystore schema on PostgreSQL', () => {
  afterAll(stopSharedPostgres);

  it('is SQLite\'s after the same migrations: tables, columns, nullability, primary keys, indexes', async () => {
    expect(KEYSTORE_PG_MIGRATIONS).toHaveLength(SCHEMA_VERSION);
    const pg = await sharedPostgres();
    const sql = new PostgresSql({ url: await pg.createDatabase(), password: pg.password, pool: 2, schema: 'keystore' });
    try {
      await migratePostgres(sql, KEYSTORE_PG_MIGRATIONS, 'keystore');
      // Nodes starting together each run it: the second finds nothing to do.
      await migratePostgres(sql, KEYSTORE_PG_MIGRATIONS, 'keystore');
      expect((await sql.get('SELECT version FROM schema_version'))!.version).toBe(SCHEMA_VERSION);
      expect(await postgresShape(sql)).toEqual(await sqliteShape());
      // The change counters start where SQLite's do.
      expect(await sql.all('SELECT topic, generation FROM store_changes ORDER BY topic')).toEqual(
        ['admin', 'certificates', 'kek', 'pdf', 'pgp', 'policy', 'revocation'].map((topic) => ({ topic, generation: 0 })),
      );
    } finally {
      await sql.close();
    }
  });

  it('refuses what SQLite refuses: an unknown kind of sealed secret, an unknown source, a reference to nothing', async () => {
    const pg = await sharedPostgres();
    const sql = new PostgresSql({ url: await pg.createDatabase(), password: pg.password, pool: 2, schema: 'keystore' });
    try {
      await migratePostgres(sql, KEYSTORE_PG_MIGRATIONS, 'keystore');
      const empty = Buffer.alloc(0);
      await expect(sql.run("INSERT INTO sealed_secrets (kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created) VALUES ('plain', 'k', 'a', ?, ?, ?, 1)", [empty, empty, empty])).rejects.toMatchObject({ kind: 'constraint' });
      await expect(sql.run("INSERT INTO private_keys (spki_sha256, key_algorithm, secret_id, created) VALUES ('ab', 'rsa', 99, 1)")).rejects.toMatchObject({ kind: 'constraint' });
      await expect(sql.run("INSERT INTO admin_login_failures (kind, key, count, last) VALUES ('robot', 'x', 1, 1)")).rejects.toMatchObject({ kind: 'constraint' });
      const id = (await sql.get("INSERT INTO sealed_secrets (kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created) VALUES ('x509-key', 'k', 'a', ?, ?, ?, 1) RETURNING id", [empty, empty, empty]))!.id;
      await sql.run("INSERT INTO private_keys (spki_sha256, key_algorithm, secret_id, created) VALUES ('ab', 'rsa', ?, 1)", [id as number]);
      await expect(sql.run("INSERT INTO private_keys (spki_sha256, key_algorithm, secret_id, created) VALUES ('ab', 'rsa', ?, 2)", [id as number])).rejects.toMatchObject({ kind: 'unique' });
      await expect(sql.run('DELETE FROM sealed_secrets WHERE id = ?', [id as number])).rejects.toMatchObject({ kind: 'constraint' });
      // A millisecond time of the year 9999 fits (BIGINT).
      await sql.run("INSERT INTO ca_revocations (issuer_fingerprint, serial, not_after, revoked_at) VALUES ('f', '01', ?, 1)", [253402300799000]);
      expect((await sql.get('SELECT not_after FROM ca_revocations'))!.not_after).toBe(253402300799000);
    } finally {
      await sql.close();
    }
  });
});
