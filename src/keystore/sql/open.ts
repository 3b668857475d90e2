/**
 * Opening the PostgreSQL backend from the config: the password from its environment variable or
 * file (read when opening, so a rotated password needs no restart of the config), the schema
 * migrated (unless `migrate: false`, for a role that must not change the schema).
 */
import { readFileSync } from 'node:fs';
import type { PostgresLogin } from '../../config/types.js';
import { migratePostgres } from './migrate-pg.js';
import { PostgresSql } from './postgres.js';

export class StoreConfigError extends Error {
  override readonly name = 'StoreConfigError';
}

/** The login's password, or undefined when it names none (a trust or certificate login). */
export function postgresPassword(login: PostgresLogin): string | undefined {
  if (login.password_env) {
    const v = process.env[login.password_env];
    if (v === undefined || v === '') throw new StoreConfigError(`keystore.postgres: the environment variable ${login.password_env} (password_env) is not set`);
    return v;
  }
  if (login.password_file) {
    let text: string;
    try {
      text = readFileSync(login.password_file, 'utf8');
    } catch (err) {
      throw new StoreConfigError(`keystore.postgres: cannot read the password file ${login.password_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    // The first line, as .pgpass-style files and `echo secret > file` leave it.
    const pw = text.split(/\r?\n/)[0]!;
    if (!pw) throw new StoreConfigError(`keystore.postgres: the password file ${login.password_file} is empty`);
    return pw;
  }
  return undefined;
}

export interface OpenPostgresOptions {
  schema: 'keystore' | 'portal';
  pool: number;
  /** This node and role, shown in pg_stat_activity. */
  applicationName: string;
  /** The schema's migrations (schema-pg.ts); omitted: the schema is used as it is. */
  migrations?: readonly string[];
  onIdleError?: (err: Error) => void;
}

export async function openPostgres(login: PostgresLogin, opts: OpenPostgresOptions): Promise<PostgresSql> {
  const password = postgresPassword(login);
  const sql = new PostgresSql({
    url: login.url,
    ...(password !== undefined ? { password } : {}),
    pool: opts.pool,
    schema: opts.schema,
    applicationName: opts.applicationName,
    ...(opts.onIdleError ? { onIdleError: opts.onIdleError } : {}),
  });
  if (opts.migrations) {
    try {
      await migratePostgres(sql, opts.migrations, opts.schema);
    } catch (err) {
      await sql.close();
      throw err;
    }
  }
  return sql;
}
