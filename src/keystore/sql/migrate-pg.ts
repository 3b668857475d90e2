/**
 * PostgreSQL schema migrations, numbered as SQLite's (schema.ts, portal-schema.ts): entry N of a
 * backend's list is migration N. The PostgreSQL lists began at SQLite's version 7 (keystore) and 2
 * (portal): their first entry creates that whole schema and the entries up to then are empty.
 * A new migration is added to both lists under the same number.
 *
 * Several nodes may start at once: the first takes a session advisory lock, migrates and records
 * the version in `<schema>.schema_version`; the others wait for the lock, then find nothing to do.
 */
import type { PostgresSql } from './postgres.js';
import { postgresError } from './postgres.js';

export async function migratePostgres(sql: PostgresSql, migrations: readonly string[], what: string): Promise<void> {
  const schema = sql.options.schema;
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad schema name ${schema}`);
  let client;
  try {
    client = await sql.pool.connect();
  } catch (err) {
    throw postgresError(err, sql.where);
  }
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`postern-migrate:${schema}`]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.schema_version (version INTEGER NOT NULL)`);
      const r = await client.query(`SELECT version FROM ${schema}.schema_version`);
      let current = r.rows.length ? Number(r.rows[0].version) : 0;
      if (!r.rows.length) await client.query(`INSERT INTO ${schema}.schema_version (version) VALUES (0)`);
      if (current > migrations.length) {
        throw new Error(`the ${what} database at ${sql.where} has schema version ${current}, newer than this Postern (${migrations.length}): upgrade Postern`);
      }
      for (; current < migrations.length; current++) {
        await client.query('BEGIN');
        try {
          await client.query(`SET LOCAL search_path = ${schema}`);
          const m = migrations[current]!;
          if (m.trim()) await client.query(m);
          await client.query(`UPDATE ${schema}.schema_version SET version = $1`, [current + 1]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`postern-migrate:${schema}`]).catch(() => undefined);
    }
  } catch (err) {
    throw postgresError(err, sql.where);
  } finally {
    client.release();
  }
}
