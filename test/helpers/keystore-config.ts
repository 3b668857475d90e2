/**
 * A test Config whose keystore is on the backend under test (store-backends.ts): the SQLite file
 * in the data dir, or a fresh PostgreSQL database of the file's server, named as an admin's
 * config names it (keystore.postgres with password_env), so openKeyStore's own choice of backend
 * is exercised. Other files of the data dir (the KEK, the salt, portal.db) stay in it either way.
 */
import type { Config } from '../../src/config/types.js';
import { testConfig } from './config.js';
import type { StoreBackend } from './store-backends.js';

export const TEST_PG_PASSWORD_ENV = 'POSTERN_TEST_PG_PASSWORD';

export async function backendConfig(backend: StoreBackend, dataDir: string, over: Parameters<typeof testConfig>[1] = {}): Promise<Config> {
  const config = testConfig(dataDir, over);
  if (backend.name === 'sqlite') return config;
  const pg = await backend.postgres();
  process.env[TEST_PG_PASSWORD_ENV] = pg.password;
  const url = await pg.createDatabase();
  return { ...config, keystore: { ...config.keystore, postgres: { url, password_env: TEST_PG_PASSWORD_ENV, pool: 4 } } };
}

/** The database name of a keystore.postgres URL (for the server's `query`). */
export function databaseOf(config: Config): string {
  const url = config.keystore.postgres?.url;
  if (!url) throw new Error('not a PostgreSQL keystore');
  return decodeURIComponent(new URL(url).pathname.slice(1));
}
