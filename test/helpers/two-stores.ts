/**
 * Two keystores on one database, as two cluster nodes (PostgreSQL) or two processes of one
 * machine (SQLite) see it: each with its own connection(s) and its own KEK object, for the tests
 * of change propagation (keystore/changes.ts) and KEK rotation followed by another node.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openFileKek } from '../../src/keystore/kek/index.js';
import { PostgresSql } from '../../src/keystore/sql/postgres.js';
import type { Sql } from '../../src/keystore/sql/types.js';
import { openSqliteKeystore } from '../../src/keystore/store-base.js';
import { SqlKeyStore } from '../../src/keystore/store.js';
import { parseImport, type ImportBundle } from '../../src/pki/index.js';
import type { StoreBackend } from './store-backends.js';

const run = promisify(execFile);

/** A second connection to the database of `backend`'s last keystoreSql(). */
export function secondSql(backend: StoreBackend): Sql {
  if (backend.name === 'sqlite') return openSqliteKeystore(backend.lastWhere());
  const login = backend.lastLogin()!;
  return new PostgresSql({ url: login.url, password: login.password, pool: 2, schema: 'keystore', applicationName: 'postern-test-b' });
}

/** Stores A and B on one fresh database, both under the file KEK at `kekFile` (opened twice, as two nodes would). */
export async function twoStores(backend: StoreBackend, kekFile: string): Promise<{ a: SqlKeyStore; b: SqlKeyStore; close(): Promise<void> }> {
  const kekA = await openFileKek(kekFile, { create: true });
  const kekB = await openFileKek(kekFile, { create: false });
  const a = new SqlKeyStore(await backend.keystoreSql(), kekA);
  const b = new SqlKeyStore(secondSql(backend), kekB);
  return {
    a,
    b,
    async close() {
      await b.close();
      await a.close();
    },
  };
}

/** An RSA mailbox certificate with its key, made by openssl in `dir`. */
export async function mailbox(dir: string, address: string): Promise<ImportBundle> {
  const key = join(dir, `${address}.key`);
  const cert = join(dir, `${address}.pem`);
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${address}`, '-addext', `subjectAltName=email:${address}`,
    '-addext', 'keyUsage=digitalSignature,keyEncipherment', '-addext', 'extendedKeyUsage=emailProtection', '-days', '30', '-keyout', key, '-out', cert,
  ]);
  return parseImport(Buffer.concat([await readFile(cert), await readFile(key)]));
}

/** Wait until `ok()` holds, asking every 20 ms, at most `ms` (then the test's own assertion fails). */
export async function until(ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
