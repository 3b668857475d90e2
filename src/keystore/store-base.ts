/**
 * The SQLite keystore, part 1: the database, sealed secrets, the audit trail, KEK rotation and meta
 * values. The SQL of the embedded backend lives in store-base.ts, store-certs.ts and store.ts
 * (certificates and OpenPGP keys build on this class). Secrets are sealed (kek/) before they
 * reach the database and unsealed only on request, with an audit entry for every key operation.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { rewrap, seal, unseal, type SealedSecret } from './kek/index.js';
import type { Kek } from './kek/types.js';
import { createPrivateDatabaseFile } from './db-file.js';
import { migrate } from './schema.js';
import { auditEntryOf, auditQuery, auditValues, INSERT_AUDIT } from './audit-log.js';
import type { AuditEntry, AuditFilter } from './types.js';

export type Row = Record<string, unknown>;

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Look-up key of an address: its canonical comparison key (core/address.ts; see schema.ts). */
export { addressKey } from '../core/address.js';
/** AAD of a sealed secret: its row, so ciphertexts cannot be moved between rows. */
const aadOf = (id: number | bigint, kind: string) => Buffer.from(`postern:sealed_secrets:${id}:${kind}`);

export class KeyStoreBase {
  protected readonly db: Database.Database;
  /** Statements by SQL text: preparing costs more than running most of these queries (profiled: 0.3 ms a message). */
  private readonly statements = new Map<string, Database.Statement>();
  /** Writes that seal (async) run one at a time, so their BEGIN…COMMIT never interleave. */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(
    file: string,
    protected kek: Kek,
    opts: { readonly?: boolean } = {},
  ) {
    if (!opts.readonly) createPrivateDatabaseFile(file);
    this.db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    // WAL: readers (workers) never wait for a writer (the CLI importing keys).
    if (!opts.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
    }
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    if (!opts.readonly) migrate(this.db);
  }

  /** A prepared statement, prepared once per store. */
  protected sql(text: string): Database.Statement {
    let s = this.statements.get(text);
    if (!s) this.statements.set(text, (s = this.db.prepare(text)));
    return s;
  }

  get kekId(): string {
    return this.kek.id;
  }

  /** Close the database and the KEK (which the store owns). */
  async close(): Promise<void> {
    this.db.close();
    await this.kek.close();
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writing.then(fn, fn);
    this.writing = run.catch(() => undefined);
    return run;
  }

  // ---- audit -------------------------------------------------------------------------------------

  /** Append a record to the audit trail (never a secret in it). Inside a transaction, it is part of it. */
  audit(e: Omit<AuditEntry, 'at' | 'id'>): void {
    this.sql(INSERT_AUDIT).run(...auditValues(e, Date.now()));
  }

  /** The records of one object (a string), or those `filter` asks for; oldest first unless asked otherwise. */
  async auditLog(filter: string | AuditFilter = {}): Promise<AuditEntry[]> {
    const q = auditQuery(typeof filter === 'string' ? { object: filter } : filter);
    return (this.sql(q.sql).all(...q.args) as Row[]).map(auditEntryOf);
  }

  /** Every record `filter` asks for, a page at a time (an export of a long trail never holds it all). */
  async *auditRecords(filter: Omit<AuditFilter, 'afterId' | 'beforeId' | 'limit'> = {}, page = 1000): AsyncGenerator<AuditEntry> {
    let cursor: number | undefined;
    for (;;) {
      const at = cursor === undefined ? {} : filter.order === 'newest' ? { beforeId: cursor } : { afterId: cursor };
      const rows = await this.auditLog({ ...filter, ...at, limit: page });
      yield* rows;
      if (rows.length < page) return;
      cursor = rows[rows.length - 1]!.id;
    }
  }

  // ---- sealed secrets ----------------------------------------------------------------------------

  /** Insert a secret sealed under the KEK with its own row id as AAD; call inside a transaction. */
  protected async insertSecret(kind: 'x509-key' | 'pgp-secret' | 'pdf-password' | 'admin-totp', secret: Buffer): Promise<number> {
    const placeholder = Buffer.alloc(0);
    const id = Number(
      this
        .sql('INSERT INTO sealed_secrets (kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(kind, this.kek.id, this.kek.algorithm, placeholder, placeholder, placeholder, Date.now()).lastInsertRowid,
    );
    const s = await seal(this.kek, secret, aadOf(id, kind));
    this.sql('UPDATE sealed_secrets SET kek_id = ?, kek_alg = ?, wrapped_key = ?, iv = ?, ciphertext = ? WHERE id = ?').run(s.kekId, s.kekAlg, s.wrappedKey, s.iv, s.ciphertext, id);
    return id;
  }

  protected async readSecret(id: number): Promise<Buffer> {
    const r = this.sql('SELECT * FROM sealed_secrets WHERE id = ?').get(id) as Row | undefined;
    if (!r) throw new Error(`sealed secret ${id} is missing`);
    return unseal(this.kek, sealedOf(r), aadOf(id, r.kind as string));
  }

  /** BEGIN IMMEDIATE … COMMIT around an async body (which may seal). */
  protected transaction<T>(body: () => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const out = await body();
        this.db.exec('COMMIT');
        return out;
      } catch (err) {
        this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  /**
   * Re-wrap every data key under `to` in one transaction: afterwards the old KEK is not needed.
   * Rows already under `to` are skipped, so an interrupted rotation can simply be run again.
   */
  async rotateKek(to: Kek, actor: string): Promise<number> {
    const from = this.kek;
    const n = await this.transaction(async () => {
      const rows = this.sql('SELECT * FROM sealed_secrets WHERE kek_id != ?').all(to.id) as Row[];
      const update = this.sql('UPDATE sealed_secrets SET kek_id = ?, kek_alg = ?, wrapped_key = ? WHERE id = ?');
      for (const r of rows) {
        const s = await rewrap(from, to, sealedOf(r), aadOf(r.id as number, r.kind as string));
        update.run(s.kekId, s.kekAlg, s.wrappedKey, r.id);
      }
      this.audit({ actor, action: 'kek-rotate', object: 'kek', detail: `${from.id} -> ${to.id}, ${rows.length} keys` });
      return rows.length;
    });
    this.kek = to;
    if (from !== to) await from.close();
    return n;
  }

  /** KEK ids still referenced by sealed secrets (a rotation is complete when only one is left). */
  async kekIdsInUse(): Promise<string[]> {
    return (this.sql('SELECT DISTINCT kek_id FROM sealed_secrets').all() as Row[]).map((r) => r.kek_id as string);
  }

  /**
   * Unseal one sealed secret and forget it: proof that the KEK in hand is the one the keys need,
   * where the id alone is no proof (a PKCS#11 KEK's id is its token and label, which another key
   * can have). Throws KekError when it cannot; false when there is no secret to try.
   */
  async canUnseal(): Promise<boolean> {
    const r = this.sql('SELECT id FROM sealed_secrets ORDER BY id LIMIT 1').get() as Row | undefined;
    if (!r) return false;
    (await this.readSecret(r.id as number)).fill(0);
    return true;
  }

  // ---- meta --------------------------------------------------------------------------------------

  async getMeta(key: string): Promise<string | undefined> {
    return (this.sql('SELECT value FROM meta WHERE key = ?').get(key) as Row | undefined)?.value as string | undefined;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.sql('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

}

function sealedOf(r: Row): SealedSecret {
  return {
    kekId: r.kek_id as string,
    kekAlg: r.kek_alg as string,
    wrappedKey: r.wrapped_key as Buffer,
    iv: r.iv as Buffer,
    ciphertext: r.ciphertext as Buffer,
  };
}
