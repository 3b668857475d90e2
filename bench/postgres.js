/**
 * The keystore in PostgreSQL for the bench (issue 19): a server of its own, configured as in
 * production (fsync, synchronous commit; scripts/postgres-server.js, the tests' server too), with
 * pg_stat_statements so the bench can say how many statements a message costs — the figure the
 * workers' caches (worker/store-lookups.ts) exist to bring near zero.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startPostgres } from '../scripts/postgres-server.js';

/** Start the server, make the gateway's database; the config lines that name it (password in a 0600 file, never in the config). */
export async function benchPostgres(work) {
  const pg = await startPostgres({ durable: true, settings: { shared_preload_libraries: 'pg_stat_statements' } });
  try {
    const url = await pg.createDatabase('postern');
    await pg.query('CREATE EXTENSION pg_stat_statements', [], 'postern');
    const passwordFile = join(work, 'pg-password');
    await writeFile(passwordFile, `${pg.password}\n`, { mode: 0o600 });
    return {
      pg,
      yaml: `keystore:\n  postgres: { url: "${url}", password_file: ${JSON.stringify(passwordFile)}, pool: 4 }\n`,
      /** Statements the server has run in the gateway's database so far (all clients, our own count included). */
      statements: async () => Number((await pg.query('SELECT coalesce(sum(calls), 0) AS n FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1', ['postern'], 'postern')).rows[0].n),
    };
  } catch (err) {
    await pg.stop();
    throw err;
  }
}
