/**
 * The SQLite keystore: every SQL statement of the embedded backend lives in this file. Secrets
 * are sealed (kek/) before they reach the database and unsealed only on request, with an audit
 * entry for every key operation.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import type { ParsedPgpKey, PgpKeyInfo } from '../openpgp/index.js';
import type { CertInfo, PrivateKeyInfo } from '../pki/index.js';
import { rewrap, seal, unseal, type SealedSecret } from './kek/index.js';
import type { Kek } from './kek/types.js';
import { migrate } from './schema.js';
import type { AuditEntry, CertSource, ImportStatus, PgpSource, StoredCertificate, StoredPgpKey } from './types.js';

type Row = Record<string, unknown>;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Look-up key of an address: case-insensitive (see schema.ts). */
export const addressKey = (a: string) => a.trim().toLowerCase();
/** AAD of a sealed secret: its row, so ciphertexts cannot be moved between rows. */
const aadOf = (id: number | bigint, kind: string) => Buffer.from(`postern:sealed_secrets:${id}:${kind}`);

export class KeyStoreSqlite {
  private readonly db: Database.Database;
  /** Writes that seal (async) run one at a time, so their BEGIN…COMMIT never interleave. */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(
    file: string,
    private kek: Kek,
    opts: { readonly?: boolean } = {},
  ) {
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

  audit(e: Omit<AuditEntry, 'at'>): void {
    this.db
      .prepare('INSERT INTO audit_log (at, actor, action, object, detail) VALUES (?, ?, ?, ?, ?)')
      .run(Date.now(), e.actor, e.action, e.object, e.detail ?? null);
  }

  async auditLog(object?: string): Promise<AuditEntry[]> {
    const rows = (object
      ? this.db.prepare('SELECT * FROM audit_log WHERE object = ? ORDER BY id').all(object)
      : this.db.prepare('SELECT * FROM audit_log ORDER BY id').all()) as Row[];
    return rows.map((r) => ({
      at: new Date(r.at as number),
      actor: r.actor as string,
      action: r.action as AuditEntry['action'],
      object: r.object as string,
      ...(r.detail ? { detail: r.detail as string } : {}),
    }));
  }

  // ---- sealed secrets ----------------------------------------------------------------------------

  /** Insert a secret sealed under the KEK with its own row id as AAD; call inside a transaction. */
  private async insertSecret(kind: 'x509-key' | 'pgp-secret', secret: Buffer): Promise<number> {
    const placeholder = Buffer.alloc(0);
    const id = Number(
      this.db
        .prepare('INSERT INTO sealed_secrets (kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(kind, this.kek.id, this.kek.algorithm, placeholder, placeholder, placeholder, Date.now()).lastInsertRowid,
    );
    const s = await seal(this.kek, secret, aadOf(id, kind));
    this.db.prepare('UPDATE sealed_secrets SET kek_id = ?, kek_alg = ?, wrapped_key = ?, iv = ?, ciphertext = ? WHERE id = ?').run(s.kekId, s.kekAlg, s.wrappedKey, s.iv, s.ciphertext, id);
    return id;
  }

  private async readSecret(id: number): Promise<Buffer> {
    const r = this.db.prepare('SELECT * FROM sealed_secrets WHERE id = ?').get(id) as Row | undefined;
    if (!r) throw new Error(`sealed secret ${id} is missing`);
    return unseal(this.kek, sealedOf(r), aadOf(id, r.kind as string));
  }

  /** BEGIN IMMEDIATE … COMMIT around an async body (which may seal). */
  private transaction<T>(body: () => Promise<T>): Promise<T> {
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
      const rows = this.db.prepare('SELECT * FROM sealed_secrets WHERE kek_id != ?').all(to.id) as Row[];
      const update = this.db.prepare('UPDATE sealed_secrets SET kek_id = ?, kek_alg = ?, wrapped_key = ? WHERE id = ?');
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
    return (this.db.prepare('SELECT DISTINCT kek_id FROM sealed_secrets').all() as Row[]).map((r) => r.kek_id as string);
  }

  // ---- certificates ------------------------------------------------------------------------------

  importCertificate(cert: CertInfo, opts: { source: CertSource; trusted?: boolean; actor: string }): Promise<{ status: ImportStatus; certificate: StoredCertificate }> {
    return this.transaction(async () => {
      const existing = this.certificateRow(cert.fingerprint);
      if (existing) {
        // Re-importing a CA with --trust makes it an anchor; nothing else changes on a duplicate.
        if (opts.trusted && !existing.trusted) {
          this.db.prepare('UPDATE certificates SET trusted = 1 WHERE id = ?').run(existing.id);
          this.audit({ actor: opts.actor, action: 'import', object: `cert:${cert.fingerprint}`, detail: 'now trusted' });
          return { status: 'updated' as const, certificate: this.certificateRow(cert.fingerprint)! };
        }
        return { status: 'duplicate' as const, certificate: existing };
      }
      const id = Number(
        this.db
          .prepare(
            `INSERT INTO certificates (fingerprint, der, subject, issuer, serial, not_before, not_after, key_usage, ext_key_usage,
               is_ca, trusted, key_algorithm, key_bits, key_curve, spki_sha256, subject_key_id, source, first_seen)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            cert.fingerprint,
            cert.der,
            cert.subject,
            cert.issuer,
            cert.serial,
            cert.notBefore.getTime(),
            cert.notAfter.getTime(),
            cert.keyUsage ? JSON.stringify(cert.keyUsage) : null,
            cert.extKeyUsage ? JSON.stringify(cert.extKeyUsage) : null,
            cert.isCA ? 1 : 0,
            opts.trusted ? 1 : 0,
            cert.key.algorithm,
            cert.key.bits ?? null,
            cert.key.curve ?? null,
            sha256(cert.spki),
            cert.subjectKeyId ?? null,
            opts.source,
            Date.now(),
          ).lastInsertRowid,
      );
      const addr = this.db.prepare('INSERT OR IGNORE INTO certificate_addresses (certificate_id, address, address_key) VALUES (?, ?, ?)');
      for (const e of cert.emails) addr.run(id, e, addressKey(e));
      this.audit({ actor: opts.actor, action: 'import', object: `cert:${cert.fingerprint}`, detail: `source ${opts.source}${opts.trusted ? ', trusted' : ''}` });
      return { status: 'added' as const, certificate: this.certificateRow(cert.fingerprint)! };
    });
  }

  importPrivateKey(key: PrivateKeyInfo, opts: { actor: string }): Promise<ImportStatus> {
    const spki = sha256(key.spki);
    return this.transaction(async () => {
      if (this.db.prepare('SELECT 1 FROM private_keys WHERE spki_sha256 = ?').get(spki)) return 'duplicate' as const;
      const secretId = await this.insertSecret('x509-key', key.pkcs8);
      this.db.prepare('INSERT INTO private_keys (spki_sha256, key_algorithm, secret_id, created) VALUES (?, ?, ?, ?)').run(spki, key.key.algorithm, secretId, Date.now());
      this.audit({ actor: opts.actor, action: 'import', object: `key:${spki}` });
      return 'added' as const;
    });
  }

  /** The unencrypted PKCS#8 private key of a certificate, or undefined; audited as a use. */
  async privateKeyFor(cert: Pick<StoredCertificate, 'spkiSha256' | 'fingerprint'>, purpose: 'sign' | 'decrypt' | 'export', actor: string): Promise<Buffer | undefined> {
    const r = this.db.prepare('SELECT secret_id FROM private_keys WHERE spki_sha256 = ?').get(cert.spkiSha256) as Row | undefined;
    if (!r) return undefined;
    const key = await this.readSecret(r.secret_id as number);
    this.audit({ actor, action: purpose === 'export' ? 'export' : purpose === 'sign' ? 'use-sign' : 'use-decrypt', object: `cert:${cert.fingerprint}` });
    return key;
  }

  private certificateRow(fingerprint: string): StoredCertificate | undefined {
    const r = this.db.prepare(`${CERT_SELECT} WHERE c.fingerprint = ?`).get(fingerprint) as Row | undefined;
    return r ? this.toCertificate(r) : undefined;
  }

  private toCertificate(r: Row): StoredCertificate {
    const emails = (this.db.prepare('SELECT address FROM certificate_addresses WHERE certificate_id = ? ORDER BY rowid').all(r.id) as Row[]).map((a) => a.address as string);
    return {
      id: r.id as number,
      fingerprint: r.fingerprint as string,
      der: r.der as Buffer,
      subject: r.subject as string,
      issuer: r.issuer as string,
      serial: r.serial as string,
      emails,
      notBefore: new Date(r.not_before as number),
      notAfter: new Date(r.not_after as number),
      keyUsage: r.key_usage ? (JSON.parse(r.key_usage as string) as string[]) : null,
      extKeyUsage: r.ext_key_usage ? (JSON.parse(r.ext_key_usage as string) as string[]) : null,
      isCA: r.is_ca === 1,
      trusted: r.trusted === 1,
      keyAlgorithm: r.key_algorithm as string,
      ...(r.key_bits != null ? { keyBits: r.key_bits as number } : {}),
      ...(r.key_curve != null ? { keyCurve: r.key_curve as string } : {}),
      spkiSha256: r.spki_sha256 as string,
      ...(r.subject_key_id ? { subjectKeyId: r.subject_key_id as string } : {}),
      source: r.source as CertSource,
      firstSeen: new Date(r.first_seen as number),
      hasPrivateKey: r.has_key === 1,
    };
  }

  /** Certificates for an address (case-insensitive), newest first. */
  async certificatesFor(address: string): Promise<StoredCertificate[]> {
    const rows = this.db
      .prepare(`${CERT_SELECT} JOIN certificate_addresses a ON a.certificate_id = c.id WHERE a.address_key = ? ORDER BY c.not_before DESC`)
      .all(addressKey(address)) as Row[];
    return rows.map((r) => this.toCertificate(r));
  }

  async listCertificates(filter: { address?: string } = {}): Promise<StoredCertificate[]> {
    if (filter.address) return this.certificatesFor(filter.address);
    return (this.db.prepare(`${CERT_SELECT} ORDER BY c.id`).all() as Row[]).map((r) => this.toCertificate(r));
  }

  /** By full fingerprint or an unambiguous prefix (at least 8 hex digits). */
  async findCertificate(fingerprintPrefix: string): Promise<StoredCertificate[]> {
    const p = fingerprintPrefix.toLowerCase().replace(/:/g, '');
    if (!/^[0-9a-f]{8,64}$/.test(p)) return [];
    return (this.db.prepare(`${CERT_SELECT} WHERE c.fingerprint LIKE ? ORDER BY c.id`).all(`${p}%`) as Row[]).map((r) => this.toCertificate(r));
  }

  async trustAnchors(): Promise<StoredCertificate[]> {
    return (this.db.prepare(`${CERT_SELECT} WHERE c.trusted = 1 ORDER BY c.id`).all() as Row[]).map((r) => this.toCertificate(r));
  }

  /** Delete a certificate; its private key too when no other certificate shares it and `withKey`. */
  deleteCertificate(cert: StoredCertificate, opts: { withKey: boolean; actor: string }): Promise<{ keyDeleted: boolean }> {
    return this.transaction(async () => {
      this.db.prepare('DELETE FROM certificates WHERE id = ?').run(cert.id);
      let keyDeleted = false;
      const shared = this.db.prepare('SELECT 1 FROM certificates WHERE spki_sha256 = ?').get(cert.spkiSha256);
      if (opts.withKey && !shared) keyDeleted = this.deletePrivateKey(cert.spkiSha256);
      this.audit({ actor: opts.actor, action: 'delete', object: `cert:${cert.fingerprint}`, detail: keyDeleted ? 'with private key' : undefined });
      return { keyDeleted };
    });
  }

  private deletePrivateKey(spki: string): boolean {
    const r = this.db.prepare('SELECT id, secret_id FROM private_keys WHERE spki_sha256 = ?').get(spki) as Row | undefined;
    if (!r) return false;
    this.db.prepare('DELETE FROM private_keys WHERE id = ?').run(r.id);
    this.db.prepare('DELETE FROM sealed_secrets WHERE id = ?').run(r.secret_id);
    return true;
  }

  // ---- meta --------------------------------------------------------------------------------------

  async getMeta(key: string): Promise<string | undefined> {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as Row | undefined)?.value as string | undefined;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  // ---- OpenPGP -----------------------------------------------------------------------------------

  importPgpKey(key: ParsedPgpKey, opts: { source: PgpSource; actor: string }): Promise<{ status: ImportStatus; key: StoredPgpKey }> {
    return this.transaction(async () => {
      const i = key.info;
      const existing = this.db.prepare('SELECT id, secret_id FROM pgp_keys WHERE fingerprint = ?').get(i.fingerprint) as Row | undefined;
      if (existing) {
        // The same key again may bring what we lacked: its secret part, or new self-signatures
        // (a revocation, a new expiry, new user ids). Take the newer public data and the secret.
        const addSecret = key.secretKey && existing.secret_id == null;
        const updated = this.updatePgpPublic(existing.id as number, key);
        if (addSecret) this.db.prepare('UPDATE pgp_keys SET secret_id = ? WHERE id = ?').run(await this.insertSecret('pgp-secret', key.secretKey!), existing.id);
        const changed = addSecret || updated;
        if (changed) this.audit({ actor: opts.actor, action: 'import', object: `pgp:${i.fingerprint}`, detail: addSecret ? 'secret key added' : 'updated' });
        return { status: changed ? ('updated' as const) : ('duplicate' as const), key: this.pgpRow(i.fingerprint)! };
      }
      const secretId = key.secretKey ? await this.insertSecret('pgp-secret', key.secretKey) : null;
      const id = Number(
        this.db
          .prepare(
            `INSERT INTO pgp_keys (fingerprint, key_id, version, public_key, user_ids, algorithm, created, expires, revoked,
               can_encrypt, can_sign, encrypt_problem, source, first_seen, secret_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            i.fingerprint,
            i.keyId,
            i.version,
            key.publicKey,
            JSON.stringify(i.userIds),
            i.algorithm,
            i.created.getTime(),
            i.expires ? i.expires.getTime() : null,
            i.revoked ? 1 : 0,
            i.canEncrypt ? 1 : 0,
            i.canSign ? 1 : 0,
            i.encryptProblem ?? null,
            opts.source,
            Date.now(),
            secretId,
          ).lastInsertRowid,
      );
      this.setPgpAddresses(id, i);
      this.audit({ actor: opts.actor, action: opts.source === 'generated' ? 'generate' : 'import', object: `pgp:${i.fingerprint}`, detail: `source ${opts.source}${secretId ? ', with secret key' : ''}` });
      return { status: 'added' as const, key: this.pgpRow(i.fingerprint)! };
    });
  }

  /** Take newer public data of a key already stored; false when nothing changed. */
  private updatePgpPublic(id: number, key: ParsedPgpKey): boolean {
    const before = this.db.prepare('SELECT public_key FROM pgp_keys WHERE id = ?').get(id) as Row;
    if ((before.public_key as Buffer).equals(key.publicKey)) return false;
    const i = key.info;
    this.db
      .prepare('UPDATE pgp_keys SET public_key = ?, user_ids = ?, expires = ?, revoked = ?, can_encrypt = ?, can_sign = ?, encrypt_problem = ? WHERE id = ?')
      .run(key.publicKey, JSON.stringify(i.userIds), i.expires ? i.expires.getTime() : null, i.revoked ? 1 : 0, i.canEncrypt ? 1 : 0, i.canSign ? 1 : 0, i.encryptProblem ?? null, id);
    this.db.prepare('DELETE FROM pgp_key_addresses WHERE pgp_key_id = ?').run(id);
    this.setPgpAddresses(id, i);
    return true;
  }

  private setPgpAddresses(id: number, i: PgpKeyInfo): void {
    const addr = this.db.prepare('INSERT OR IGNORE INTO pgp_key_addresses (pgp_key_id, address, address_key) VALUES (?, ?, ?)');
    for (const a of i.addresses) addr.run(id, a, addressKey(a));
  }

  private pgpRow(fingerprint: string): StoredPgpKey | undefined {
    const r = this.db.prepare('SELECT * FROM pgp_keys WHERE fingerprint = ?').get(fingerprint) as Row | undefined;
    return r ? this.toPgp(r) : undefined;
  }

  private toPgp(r: Row): StoredPgpKey {
    const addresses = (this.db.prepare('SELECT address FROM pgp_key_addresses WHERE pgp_key_id = ? ORDER BY rowid').all(r.id) as Row[]).map((a) => a.address as string);
    return {
      id: r.id as number,
      info: {
        fingerprint: r.fingerprint as string,
        keyId: r.key_id as string,
        version: r.version as PgpKeyInfo['version'],
        userIds: JSON.parse(r.user_ids as string) as string[],
        addresses,
        algorithm: r.algorithm as string,
        created: new Date(r.created as number),
        expires: r.expires != null ? new Date(r.expires as number) : null,
        revoked: r.revoked === 1,
        canEncrypt: r.can_encrypt === 1,
        canSign: r.can_sign === 1,
        ...(r.encrypt_problem ? { encryptProblem: r.encrypt_problem as string } : {}),
        subkeys: [],
        hasSecret: r.secret_id != null,
      },
      publicKey: r.public_key as Buffer,
      source: r.source as PgpSource,
      firstSeen: new Date(r.first_seen as number),
      hasSecret: r.secret_id != null,
    };
  }

  async pgpKeysFor(address: string): Promise<StoredPgpKey[]> {
    const rows = this.db
      .prepare('SELECT k.* FROM pgp_keys k JOIN pgp_key_addresses a ON a.pgp_key_id = k.id WHERE a.address_key = ? ORDER BY k.created DESC')
      .all(addressKey(address)) as Row[];
    return rows.map((r) => this.toPgp(r));
  }

  async listPgpKeys(filter: { address?: string } = {}): Promise<StoredPgpKey[]> {
    if (filter.address) return this.pgpKeysFor(filter.address);
    return (this.db.prepare('SELECT * FROM pgp_keys ORDER BY id').all() as Row[]).map((r) => this.toPgp(r));
  }

  /** By fingerprint, or key id / fingerprint suffix of at least 8 hex digits (as gpg accepts). */
  async findPgpKey(selector: string): Promise<StoredPgpKey[]> {
    const s = selector.toUpperCase().replace(/^0X/, '').replace(/\s/g, '');
    if (!/^[0-9A-F]{8,64}$/.test(s)) return [];
    return (this.db.prepare('SELECT * FROM pgp_keys WHERE fingerprint LIKE ? ORDER BY id').all(`%${s}`) as Row[]).map((r) => this.toPgp(r));
  }

  async pgpSecretKey(key: StoredPgpKey, purpose: 'sign' | 'decrypt' | 'export', actor: string): Promise<Buffer | undefined> {
    const r = this.db.prepare('SELECT secret_id FROM pgp_keys WHERE id = ?').get(key.id) as Row | undefined;
    if (r?.secret_id == null) return undefined;
    const secret = await this.readSecret(r.secret_id as number);
    this.audit({ actor, action: purpose === 'export' ? 'export' : purpose === 'sign' ? 'use-sign' : 'use-decrypt', object: `pgp:${key.info.fingerprint}` });
    return secret;
  }

  deletePgpKey(key: StoredPgpKey, actor: string): Promise<void> {
    return this.transaction(async () => {
      const r = this.db.prepare('SELECT secret_id FROM pgp_keys WHERE id = ?').get(key.id) as Row | undefined;
      this.db.prepare('DELETE FROM pgp_keys WHERE id = ?').run(key.id);
      if (r?.secret_id != null) this.db.prepare('DELETE FROM sealed_secrets WHERE id = ?').run(r.secret_id);
      this.audit({ actor, action: 'delete', object: `pgp:${key.info.fingerprint}`, detail: r?.secret_id != null ? 'with secret key' : undefined });
    });
  }
}

const CERT_SELECT = `SELECT c.*, EXISTS (SELECT 1 FROM private_keys k WHERE k.spki_sha256 = c.spki_sha256) AS has_key FROM certificates c`;

function sealedOf(r: Row): SealedSecret {
  return {
    kekId: r.kek_id as string,
    kekAlg: r.kek_alg as string,
    wrappedKey: r.wrapped_key as Buffer,
    iv: r.iv as Buffer,
    ciphertext: r.ciphertext as Buffer,
  };
}
