/**
 * The keystore, part 1: the connection, sealed secrets, the audit trail, KEK rotation, meta values
 * and the change counters. The store's SQL lives in store-base.ts, store-revocation.ts,
 * store-certs.ts, store-pdf.ts, store-admin.ts and store.ts, each class building on the one
 * before; it is written once for both backends (sql/types.ts says in which subset of SQL).
 * Secrets are sealed (kek/) before they reach the database and unsealed only on request, with an
 * audit entry for every key operation.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { rewrap, seal, unseal, type SealedSecret } from './kek/index.js';
import { KekError, type Kek } from './kek/types.js';
import { createPrivateDatabaseFile } from './db-file.js';
import { migrate } from './schema.js';
import { auditEntryOf, auditQuery, auditValues, INSERT_AUDIT } from './audit-log.js';
import type { AuditEntry, AuditFilter } from './types.js';
import { SqliteSql, sqliteError } from './sql/sqlite.js';
import type { Row, Sql } from './sql/types.js';

export type { Row } from './sql/types.js';

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Look-up key of an address: its canonical comparison key (core/address.ts; see schema.ts). */
export { addressKey } from '../core/address.js';
/** AAD of a sealed secret: its row, so ciphertexts cannot be moved between rows. */
const aadOf = (id: number | bigint, kind: string) => Buffer.from(`postern:sealed_secrets:${id}:${kind}`);

/**
 * What a change touched, for the caches of other processes and nodes (changes.ts): a counter per
 * topic in store_changes, bumped in the change's own transaction, and on PostgreSQL a NOTIFY on
 * CHANGES_CHANNEL with the topic, delivered when the transaction commits.
 */
export type ChangeTopic = 'certificates' | 'pgp' | 'pdf' | 'admin' | 'kek' | 'revocation' | 'policy';
export const CHANGES_CHANNEL = 'postern_store_changes';

/** Open (and create, migrate) the SQLite keystore file; `readonly` opens an existing one as it is. */
export function openSqliteKeystore(file: string, opts: { readonly?: boolean } = {}): SqliteSql {
  if (!opts.readonly) createPrivateDatabaseFile(file);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  } catch (err) {
    throw sqliteError(err, file);
  }
  try {
    // WAL: readers (workers) never wait for a writer (the CLI importing keys).
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
    }
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    if (!opts.readonly) migrate(db);
  } catch (err) {
    db.close();
    throw sqliteError(err, file);
  }
  return new SqliteSql(db, file);
}

export class KeyStoreBase {
  constructor(
    /** The database (either backend); the store owns it and closes it. */
    protected readonly db: Sql,
    protected kek: Kek,
  ) {}

  get kekId(): string {
    return this.kek.id;
  }

  /** Which backend, and where (for messages). */
  get backend(): { dialect: Sql['dialect']; where: string } {
    return { dialect: this.db.dialect, where: this.db.where };
  }

  /** Close the database and the KEK (which the store owns). */
  async close(): Promise<void> {
    await this.db.close();
    await this.kek.close();
    for (const k of this.retiredKeks.splice(0)) await k.close();
  }

  /**
   * A write transaction (sql/types.ts: serialised against every other writer, on every node).
   * When it ends, this process's own caches hear of what it changed (onOwnChange), without waiting
   * for the NOTIFY to come back.
   */
  protected async transaction<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await this.db.transaction(body);
    } finally {
      this.tellOwnChanges();
    }
  }

  /** Bump `topic`'s change counter and tell the other nodes; call inside the change's transaction (this.transaction). */
  protected async changed(topic: ChangeTopic): Promise<void> {
    await this.db.run('UPDATE store_changes SET generation = generation + 1 WHERE topic = ?', [topic]);
    await this.db.notify(CHANGES_CHANNEL, topic);
    this.ownChanges.add(topic);
  }

  private readonly ownChanges = new Set<ChangeTopic>();
  private readonly ownChangeWatchers = new Set<(topic: ChangeTopic) => void>();

  /**
   * Call `watcher(topic)` for each change this process makes, as its transaction ends (changes.ts
   * bumps its generation: a process sees its own writes at once). Returns the function that stops it.
   */
  onOwnChange(watcher: (topic: ChangeTopic) => void): () => void {
    this.ownChangeWatchers.add(watcher);
    return () => this.ownChangeWatchers.delete(watcher);
  }

  private tellOwnChanges(): void {
    if (!this.ownChanges.size) return;
    const topics = [...this.ownChanges];
    this.ownChanges.clear();
    for (const t of topics) for (const w of this.ownChangeWatchers) w(t);
  }

  /** Every topic's change counter (changes.ts compares them with what it saw last). */
  async changeCounters(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const r of await this.db.all('SELECT topic, generation FROM store_changes')) out[r.topic as string] = Number(r.generation);
    return out;
  }

  /** Call `onChange(topic)` for every change another process or node commits (PostgreSQL; SQLite: never). */
  listenForChanges(onChange: (topic: string) => void, onReconnect?: () => void): Promise<() => Promise<void>> {
    return this.db.listen(CHANGES_CHANNEL, onChange, onReconnect);
  }

  // ---- audit -------------------------------------------------------------------------------------

  /** Append a record to the audit trail (never a secret in it). Inside a transaction, it is part of it. */
  async audit(e: Omit<AuditEntry, 'at' | 'id'>): Promise<void> {
    await this.db.run(INSERT_AUDIT, auditValues(e, Date.now()));
  }

  /** The records of one object (a string), or those `filter` asks for; oldest first unless asked otherwise. */
  async auditLog(filter: string | AuditFilter = {}): Promise<AuditEntry[]> {
    const q = auditQuery(typeof filter === 'string' ? { object: filter } : filter);
    return (await this.db.all(q.sql, q.args)).map(auditEntryOf);
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
    await this.checkKekCurrent();
    const placeholder = Buffer.alloc(0);
    const r = await this.db.get(
      'INSERT INTO sealed_secrets (kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id',
      [kind, this.kek.id, this.kek.algorithm, placeholder, placeholder, placeholder, Date.now()],
    );
    const id = Number(r!.id);
    const s = await seal(this.kek, secret, aadOf(id, kind));
    await this.db.run('UPDATE sealed_secrets SET kek_id = ?, kek_alg = ?, wrapped_key = ?, iv = ?, ciphertext = ? WHERE id = ?', [s.kekId, s.kekAlg, s.wrappedKey, s.iv, s.ciphertext, id]);
    return id;
  }

  protected async readSecret(id: number): Promise<Buffer> {
    const r = await this.db.get('SELECT * FROM sealed_secrets WHERE id = ?', [id]);
    if (!r) throw new Error(`sealed secret ${id} is missing`);
    return unseal(this.kek, sealedOf(r), aadOf(id, r.kind as string));
  }

  /**
   * Re-wrap every data key under `to` in one transaction: afterwards the old KEK is not needed.
   * Rows already under `to` are skipped, so an interrupted rotation can simply be run again.
   */
  async rotateKek(to: Kek, actor: string): Promise<number> {
    const from = this.kek;
    const n = await this.transaction(async () => {
      const rows = await this.db.all('SELECT * FROM sealed_secrets WHERE kek_id != ? ORDER BY id', [to.id]);
      for (const r of rows) {
        const s = await rewrap(from, to, sealedOf(r), aadOf(r.id as number, r.kind as string));
        await this.db.run('UPDATE sealed_secrets SET kek_id = ?, kek_alg = ?, wrapped_key = ? WHERE id = ?', [s.kekId, s.kekAlg, s.wrappedKey, r.id as number]);
      }
      await this.changed('kek');
      await this.audit({ actor, action: 'kek-rotate', object: 'kek', detail: `${from.id} -> ${to.id}, ${rows.length} keys` });
      return rows.length;
    });
    this.kek = to;
    if (from !== to) await from.close();
    return n;
  }

  /**
   * Take `next` as the KEK after another node rotated to it (kek-follow.ts), when a secret sealed
   * under it unseals with it. The old KEK stays open until close(): a seal or unseal in flight may
   * still hold it.
   */
  async adoptKek(next: Kek): Promise<void> {
    const r = await this.db.get('SELECT * FROM sealed_secrets WHERE kek_id = ? ORDER BY id LIMIT 1', [next.id]);
    if (r) (await unseal(next, sealedOf(r), aadOf(r.id as number, r.kind as string))).fill(0);
    if (next === this.kek) return;
    this.retiredKeks.push(this.kek);
    this.kek = next;
  }

  private readonly retiredKeks: Kek[] = [];
  /** The 'kek' change counter when this process last found every secret under its KEK. */
  private kekCounter: number | undefined;

  /**
   * Another node may have rotated the KEK since this process took its own (kek-follow.ts): a
   * secret sealed under the old one would be readable by no node that follows. Called inside the
   * write lock, so no rotation commits between this check and the insert; the rows are looked at
   * only when the 'kek' counter moved.
   */
  private async checkKekCurrent(): Promise<void> {
    const g = Number((await this.db.get('SELECT generation FROM store_changes WHERE topic = ?', ['kek']))?.generation ?? 0);
    if (g === this.kekCounter) return;
    const other = await this.db.get('SELECT kek_id FROM sealed_secrets WHERE kek_id <> ? LIMIT 1', [this.kek.id]);
    if (other) throw new KekError(`the keys are wrapped by the KEK ${other.kek_id as string} (rotated on another node), this process holds ${this.kek.id}: nothing is sealed until it follows (put the new KEK in its config)`);
    this.kekCounter = g;
  }

  /** KEK ids still referenced by sealed secrets (a rotation is complete when only one is left). */
  async kekIdsInUse(): Promise<string[]> {
    return (await this.db.all('SELECT DISTINCT kek_id FROM sealed_secrets')).map((r) => r.kek_id as string);
  }

  /**
   * Unseal one sealed secret and forget it: proof that the KEK in hand is the one the keys need,
   * where the id alone is no proof (a PKCS#11 KEK's id is its token and label, which another key
   * can have). Throws KekError when it cannot; false when there is no secret to try.
   */
  async canUnseal(): Promise<boolean> {
    const r = await this.db.get('SELECT id FROM sealed_secrets ORDER BY id LIMIT 1');
    if (!r) return false;
    (await this.readSecret(r.id as number)).fill(0);
    return true;
  }

  // ---- meta --------------------------------------------------------------------------------------

  async getMeta(key: string): Promise<string | undefined> {
    return (await this.db.get('SELECT value FROM meta WHERE key = ?', [key]))?.value as string | undefined;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.db.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
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
