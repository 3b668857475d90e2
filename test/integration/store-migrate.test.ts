/**
 * `postern store migrate` against a real PostgreSQL server: a gateway's SQLite store, filled by
 * the `postern` commands (internal CA, issued and revoked certificates with private keys, an
 * OpenPGP key pair, a PDF password, an admin account, the audit trail) and the portal's API
 * (webmail accounts and mail, reply links, log-in failures), moved to PostgreSQL and back, and
 * compared row for row with the original; the secrets still unseal with the same KEK afterwards.
 * Refusals (a target holding data, a source of another schema version) change nothing.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/index.js';
import { openPortalDb } from '../../src/keystore/portal-db.js';
import { migrate } from '../../src/keystore/schema.js';
import { withPassword } from '../../src/keystore/sql/postgres.js';
import { migrateStore, parseStoreLocation, StoreMigrateError, type StoreEnds } from '../../src/keystore/transfer/index.js';
import { tempDir } from '../helpers/config.js';
import { derivedPgMigrations, pgMigrationsFor } from '../helpers/pg-schema-derived.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

type Dump = Record<string, string[]>;

/** Every table's rows as comparable text (blobs as hex), in primary-key order. */
function dumpRows(rows: Record<string, unknown>[]): string[] {
  return rows
    .map((r) => JSON.stringify(Object.keys(r).sort().map((k) => [k, Buffer.isBuffer(r[k]) ? `hex:${(r[k] as Buffer).toString('hex')}` : r[k] === null ? null : typeof r[k] === 'bigint' ? Number(r[k]) : r[k]])))
    .sort();
}

function dumpSqlite(file: string): Dump {
  const db = new Database(file, { readonly: true });
  try {
    const out: Dump = {};
    for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").all() as { name: string }[]) {
      // The address tables' rowid is a column on PostgreSQL (their order of writing): compared too.
      const rowid = name.endsWith('_addresses') ? 'rowid AS rowid, ' : '';
      out[name] = dumpRows(db.prepare(`SELECT ${rowid}* FROM "${name}"`).all() as Record<string, unknown>[]);
    }
    return out;
  } finally {
    db.close();
  }
}

async function dumpPostgres(server: Postgres, database: string, schema: string): Promise<Dump> {
  const c = new pg.Client({ connectionString: withPassword(server.url(database), server.password) });
  c.setTypeParser(20, (v: string) => Number(v));
  await c.connect();
  try {
    const out: Dump = {};
    const tables = await c.query("SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name <> 'schema_version'", [schema]);
    for (const { table_name } of tables.rows as { table_name: string }[]) out[table_name] = dumpRows((await c.query(`SELECT * FROM "${schema}"."${table_name}"`)).rows);
    return out;
  } finally {
    await c.end();
  }
}

/** The tables with rows: a store may keep an empty legacy table the other never had (reply_tokens). */
const filled = (d: Dump): Dump => Object.fromEntries(Object.entries(d).filter(([, rows]) => rows.length));
const withoutMigrateAudit = (d: Dump) => filled({ ...d, audit_log: d.audit_log!.filter((r) => !r.includes('"store-migrate"')) });

describe('postern store migrate', () => {
  let server: Postgres;
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: string;
  const migrations = { keystore: pgMigrationsFor('keystore'), portal: pgMigrationsFor('portal') };
  const postgresEnds = (url: string): StoreEnds => ({ keystore: parseStoreLocation(url, server.password), portal: parseStoreLocation(url, server.password) });
  const sqliteEnds = (d: string): StoreEnds => ({ keystore: { kind: 'sqlite', path: join(d, 'postern.db') }, portal: { kind: 'sqlite', path: join(d, 'portal.db') } });

  const cli = async (args: string[], env: Record<string, string> = {}) => {
    const out: string[] = [];
    const err: string[] = [];
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      const code = await runCli(args, 'postern', { out: (l) => out.push(l), err: (l) => err.push(l) });
      return { code, out: out.join('\n'), err: err.join('\n') };
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  const ok = async (args: string[], env: Record<string, string> = {}) => {
    const r = await cli([...args, '-c', config], env);
    if (r.code !== 0) throw new Error(`postern ${args.join(' ')} → ${r.code}\n${r.err}${r.out}`);
    return r.out;
  };

  /** A gateway's config over `data`, its KEK file copied from the source gateway. */
  async function gatewayAt(data: string): Promise<string> {
    await mkdir(data, { recursive: true });
    await writeFile(join(data, 'policy.yaml'), 'rules: []\n');
    await copyFile(join(dir, 'kek.key'), join(data, 'kek.key'));
    const file = join(data, 'postern.yaml');
    await writeFile(file, 'hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\n');
    return file;
  }

  beforeAll(async () => {
    server = await startPostgres();
    ({ dir, cleanup } = await tempDir('postern-store-migrate-'));
    config = join(dir, 'postern.yaml');
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
    await writeFile(config, 'hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\n');
    await ok(['ca', 'init', '--name', 'Migrate Test CA']);
    await ok(['ca', 'issue', 'alice@example.com']);
    await ok(['ca', 'issue', 'dave@example.com']);
    await ok(['ca', 'revoke', 'dave@example.com', '--reason', 'superseded']);
    await ok(['pgp', 'generate', 'bob@example.com', '--type', 'ecc']);
    await ok(['pdf', 'password', 'set', '--from', 'alice@example.com', '--to', 'carol@outside.example'], { POSTERN_PDF_PASSWORD: 'Carol-pdf-password-1' });
    await ok(['admin', 'add', 'ops', '--role', 'administrator'], { POSTERN_ADMIN_PASSWORD: 'a long admin password 1' });
    const portal = await openPortalDb(join(dir, 'portal.db'));
    try {
      const wrapped = (n: number) => ({ kdf: `$scrypt$ln=14,r=8,p=1$salt${n}`, iv: Buffer.alloc(12, n), ciphertext: Buffer.alloc(48, 0x80 + n) });
      const erin = await portal.createAccount({ address: 'erin@outside.example', addressKey: 'erin@outside.example', publicKey: Buffer.alloc(32, 1), wrapped: wrapped(1) });
      await portal.createAccount({ address: 'gone@outside.example', addressKey: 'gone@outside.example', publicKey: Buffer.alloc(32, 2), wrapped: wrapped(2) });
      // A deleted newest account: AUTOINCREMENT never gives its id again, on either backend.
      await portal.deleteAccount('gone@outside.example');
      await portal.putMessage({ accountId: erin.id, generation: erin.generation, deliveryKey: 'Q1:erin', received: new Date(), size: 1234, summary: Buffer.from([0, 1, 2, 255]), body: Buffer.alloc(70_000, 0xfe) });
      await portal.putReplyLink({
        tokenHash: 'a'.repeat(64), senderKey: 'alice@example.com', recipientKey: 'carol@outside.example', sender: 'alice@example.com', recipient: 'carol@outside.example',
        verifier: '$scrypt$v', contentKdf: '$scrypt$c', sealed: { salt: Buffer.alloc(16, 3), iv: Buffer.alloc(12, 4), ciphertext: Buffer.from('sealed\0bytes') }, created: new Date(), expires: new Date(Date.now() + 86_400_000),
      });
      await portal.recordLoginFailure('client', '192.0.2.7');
      await portal.audit({ action: 'webmail-login', actor: 'erin@outside.example', client: '192.0.2.7' });
    } finally {
      await portal.close();
    }
  });
  afterAll(async () => {
    await server?.stop();
    await cleanup?.();
  });

  it('moves the store to PostgreSQL and back row for row, ids and counters kept, and the secrets still open', async () => {
    const original = { keystore: dumpSqlite(join(dir, 'postern.db')), portal: dumpSqlite(join(dir, 'portal.db')) };
    // The data is what the test says it is: every kind of row the issue names is there.
    for (const t of ['certificates', 'private_keys', 'sealed_secrets', 'pgp_keys', 'pdf_passwords', 'admin_accounts', 'audit_log', 'ca_revocations', 'meta', 'store_changes']) expect(original.keystore[t]!.length, t).toBeGreaterThan(0);
    for (const t of ['webmail_accounts', 'webmail_messages', 'reply_links', 'login_failures', 'audit_log']) expect(original.portal[t]!.length, t).toBeGreaterThan(0);

    const url = await server.createDatabase();
    const there = await migrateStore({ from: sqliteEnds(dir), to: postgresEnds(url), write: true, actor: 'cli:test', migrations });
    expect(there.written).toBe(true);
    expect(there.tables.find((t) => t.part === 'keystore' && t.table === 'certificates')!.rows).toBe(original.keystore.certificates!.length);
    expect(there.tables.find((t) => t.part === 'portal' && t.table === 'webmail_messages')!.rows).toBe(1);
    const inPg = { keystore: await dumpPostgres(server, url.split('/').pop()!, 'keystore'), portal: await dumpPostgres(server, url.split('/').pop()!, 'portal') };
    expect(withoutMigrateAudit(inPg.keystore)).toEqual(filled(original.keystore));
    expect(filled(inPg.portal)).toEqual(filled(original.portal));
    const [record] = (await server.query("SELECT actor, via, detail FROM keystore.audit_log WHERE action = 'store-migrate'", [], url.split('/').pop())).rows;
    expect(record).toMatchObject({ actor: 'cli:test', via: 'cli' });
    expect(record.detail).toContain(`from sqlite:${join(dir, 'postern.db')} to ${url} (schema keystore)`);
    expect(record.detail).not.toContain(server.password);
    // The sequences are past every id given: the next account is not the deleted one's id.
    const db = url.split('/').pop()!;
    const maxAccount = Math.max(...original.portal.webmail_accounts!.map((r) => (JSON.parse(r) as [string, unknown][]).find(([k]) => k === 'id')![1] as number));
    const next = await server.query("INSERT INTO portal.webmail_accounts (address, address_key, public_key, key_kdf, key_iv, key_ciphertext, generation, must_change_password, created, password_changed) VALUES ('x@y.example', 'x@y.example', '\\x00', 'k', '\\x00', '\\x00', 1, 0, 1, 1) RETURNING id", [], db);
    expect(Number(next.rows[0].id)).toBeGreaterThan(maxAccount + 1);
    await server.query("DELETE FROM portal.webmail_accounts WHERE address_key = 'x@y.example'", [], db);
    const rowidSeq = await server.query("SELECT nextval(pg_get_serial_sequence('keystore.certificate_addresses', 'rowid')) AS next, (SELECT max(rowid) FROM keystore.certificate_addresses) AS max", [], db);
    expect(Number(rowidSeq.rows[0].next)).toBeGreaterThan(Number(rowidSeq.rows[0].max));

    const back = join(dir, 'back');
    const backConfig = await gatewayAt(back);
    const home = await migrateStore({ from: postgresEnds(url), to: sqliteEnds(back), write: true, actor: 'cli:test', migrations });
    expect(home.written).toBe(true);
    const returned = { keystore: dumpSqlite(join(back, 'postern.db')), portal: dumpSqlite(join(back, 'portal.db')) };
    expect(withoutMigrateAudit(returned.keystore)).toEqual(filled(original.keystore));
    expect(returned.keystore.audit_log!.filter((r) => r.includes('"store-migrate"'))).toHaveLength(2);
    expect(filled(returned.portal)).toEqual(filled(original.portal));
    // The order addresses were written in (the store reads them back by rowid) came along too.
    const rowids = (file: string) => {
      const d = new Database(file, { readonly: true });
      try {
        return d.prepare('SELECT rowid, certificate_id, address_key FROM certificate_addresses ORDER BY rowid').all();
      } finally {
        d.close();
      }
    };
    expect(rowids(join(back, 'postern.db'))).toEqual(rowids(join(dir, 'postern.db')));
    const seq = new Database(join(back, 'portal.db'), { readonly: true });
    expect((seq.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'webmail_accounts'").get() as { seq: number }).seq).toBeGreaterThan(maxAccount);
    seq.close();

    // Sealed under the same KEK with their row ids as AAD: they open on the gateway moved back.
    const shown = await cli(['pdf', 'password', 'show', '--from', 'alice@example.com', '--to', 'carol@outside.example', '-c', backConfig]);
    expect(shown.code, shown.err).toBe(0);
    expect(shown.out).toContain('Carol-pdf-password-1');
    const secret = await cli(['pgp', 'export', (/([0-9A-F]{40})/i.exec(await ok(['pgp', 'list'])) ?? [])[1]!, '--secret', '--passphrase-env', 'PGP_PASS', '-c', backConfig], { PGP_PASS: 'export passphrase 1' });
    expect(secret.code, secret.err).toBe(0);
    expect(secret.out).toContain('BEGIN PGP PRIVATE KEY BLOCK');
  });

  it('checks and counts without --yes, writing nothing to the target', async () => {
    const url = await server.createDatabase();
    const r = await migrateStore({ from: sqliteEnds(dir), to: postgresEnds(url), write: false, actor: 'cli:test', migrations });
    expect(r.written).toBe(false);
    expect(r.tables.find((t) => t.table === 'pgp_keys')!.rows).toBeGreaterThan(0);
    expect((await server.query("SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ('keystore', 'portal')", [], url.split('/').pop())).rows).toEqual([]);
  });

  it('refuses a target that holds data, and changes nothing there', async () => {
    const url = await server.createDatabase();
    const db = url.split('/').pop()!;
    await migrateStore({ from: sqliteEnds(dir), to: postgresEnds(url), write: true, actor: 'cli:test', migrations });
    const before = await dumpPostgres(server, db, 'keystore');
    const again = migrateStore({ from: sqliteEnds(dir), to: postgresEnds(url), write: true, actor: 'cli:test', migrations });
    await expect(again).rejects.toThrow(StoreMigrateError);
    await expect(again).rejects.toThrow(/already holds data \(.*certificates.*\).*DROP SCHEMA keystore CASCADE/);
    expect(await dumpPostgres(server, db, 'keystore')).toEqual(before);

    // The same through the command line, onto a SQLite file that has data: exit 1, file untouched.
    const target = join(dir, 'postern.db');
    const untouched = dumpSqlite(target);
    const r = await cli(['store', 'migrate', '--from', `postgres://postern@127.0.0.1:${server.port}/${db}`, '--to', `sqlite:${target}`, '--password-env', 'PG_PW', '--yes'], { PG_PW: server.password });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/refused: the target sqlite:.*postern\.db already holds data/);
    expect(r.err + r.out).not.toContain(server.password);
    expect(dumpSqlite(target)).toEqual(untouched);
  });

  it('refuses a source of another schema version before touching the target', async () => {
    const old = join(dir, 'old');
    await mkdir(old);
    const file = new Database(join(old, 'postern.db'));
    migrate(file, 5);
    file.close();
    const url = await server.createDatabase();
    await expect(migrateStore({ from: sqliteEnds(old), to: postgresEnds(url), write: true, actor: 'cli:test', migrations })).rejects.toThrow(/schema version 5, this Postern's is \d+: start the gateway once on it/);
    expect((await server.query("SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ('keystore', 'portal')", [], url.split('/').pop())).rows).toEqual([]);
  });

  it('refuses ends whose columns differ, before a row is copied', async () => {
    const url = await server.createDatabase();
    const [ddl, ...rest] = derivedPgMigrations('keystore');
    const skewed = { ...migrations, keystore: [ddl!.replace('"is_ca" BIGINT NOT NULL', '"is_ca" TEXT NOT NULL'), ...rest] };
    await expect(migrateStore({ from: sqliteEnds(dir), to: postgresEnds(url), write: true, actor: 'cli:test', migrations: skewed })).rejects.toThrow(
      /the keystore schemas .* differ: column certificates\.is_ca holds integer values \(INTEGER\) in the source but text \(text\) in the target/,
    );
    const db = url.split('/').pop()!;
    expect((await server.query('SELECT count(*) AS n FROM keystore.certificates', [], db)).rows[0].n).toBe('0');
  });

  it('copies SQLite to SQLite through the command line, and takes no password on the command line', async () => {
    const to = join(dir, 'cli-copy');
    await mkdir(to);
    const dry = await cli(['store', 'migrate', '--from', `sqlite:${join(dir, 'postern.db')}`, '--to', `sqlite:${join(to, 'postern.db')}`]);
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toMatch(/^keystore\.certificates\s+\d+$/m);
    expect(dry.out).toMatch(/nothing written — run again with --yes/);
    expect(existsSync(join(to, 'postern.db'))).toBe(false);
    const copied = await cli(['store', 'migrate', '--from', `sqlite:${join(dir, 'postern.db')}`, '--to', `sqlite:${join(to, 'postern.db')}`, '--yes']);
    expect(copied.code, copied.err).toBe(0);
    expect(copied.out).toMatch(/^copied \d+ rows in \d+ tables from sqlite:.* to sqlite:.*; recorded in the target's audit trail$/m);
    expect(withoutMigrateAudit(dumpSqlite(join(to, 'postern.db')))).toEqual(withoutMigrateAudit(dumpSqlite(join(dir, 'postern.db'))));
    expect(filled(dumpSqlite(join(to, 'portal.db')))).toEqual(filled(dumpSqlite(join(dir, 'portal.db'))));

    const inUrl = await cli(['store', 'migrate', '--from', `sqlite:${join(dir, 'postern.db')}`, '--to', `postgres://postern:${server.password}@127.0.0.1:${server.port}/postgres`]);
    expect(inUrl.code).toBe(2);
    expect(inUrl.err).toMatch(/never in the URL/);
    expect(inUrl.err).not.toContain(server.password);
  });
});
