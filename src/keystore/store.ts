/**
 * The SQLite keystore, part 3: OpenPGP keys, public and (sealed) secret, by fingerprint and by
 * user-id address. `KeyStoreSqlite` is the whole store.
 */
import { mergePgpKey, type ParsedPgpKey, type PgpKeyInfo } from '../openpgp/index.js';
import { addressKey, type Row } from './store-base.js';
import { AdminStore } from './store-admin.js';
import type { ImportStatus, PgpSource, StoredPgpKey } from './types.js';

export class KeyStoreSqlite extends AdminStore {
  // ---- OpenPGP -----------------------------------------------------------------------------------

  importPgpKey(key: ParsedPgpKey, opts: { source: PgpSource; actor: string }): Promise<{ status: ImportStatus; key: StoredPgpKey }> {
    return this.transaction(async () => {
      const i = key.info;
      const existing = this.sql('SELECT id, secret_id, public_key FROM pgp_keys WHERE fingerprint = ?').get(i.fingerprint) as Row | undefined;
      if (existing) {
        // The same key again may bring what we lacked: its secret part, or new self-signatures
        // (a revocation, a new expiry, new user ids). Merged into what we hold, never replacing
        // it: a copy without the revocation (stripped, or older) must not un-revoke the key.
        const addSecret = key.secretKey && existing.secret_id == null;
        const had = (this.sql('SELECT address FROM pgp_key_addresses WHERE pgp_key_id = ?').all(existing.id) as Row[]).map((a) => a.address as string);
        const updated = this.updatePgpPublic(existing.id as number, await mergePgpKey(existing.public_key as Buffer, had, key));
        if (addSecret) this.sql('UPDATE pgp_keys SET secret_id = ? WHERE id = ?').run(await this.insertSecret('pgp-secret', key.secretKey!), existing.id);
        const changed = addSecret || updated;
        if (changed) this.audit({ actor: opts.actor, action: 'import', object: `pgp:${i.fingerprint}`, detail: addSecret ? 'secret key added' : 'updated' });
        return { status: changed ? ('updated' as const) : ('duplicate' as const), key: this.pgpRow(i.fingerprint)! };
      }
      const secretId = key.secretKey ? await this.insertSecret('pgp-secret', key.secretKey) : null;
      const id = Number(
        this
          .sql(
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
    const before = this.sql('SELECT public_key FROM pgp_keys WHERE id = ?').get(id) as Row;
    if ((before.public_key as Buffer).equals(key.publicKey)) return false;
    const i = key.info;
    this
      .sql('UPDATE pgp_keys SET public_key = ?, user_ids = ?, expires = ?, revoked = ?, can_encrypt = ?, can_sign = ?, encrypt_problem = ? WHERE id = ?')
      .run(key.publicKey, JSON.stringify(i.userIds), i.expires ? i.expires.getTime() : null, i.revoked ? 1 : 0, i.canEncrypt ? 1 : 0, i.canSign ? 1 : 0, i.encryptProblem ?? null, id);
    this.sql('DELETE FROM pgp_key_addresses WHERE pgp_key_id = ?').run(id);
    this.setPgpAddresses(id, i);
    return true;
  }

  private setPgpAddresses(id: number, i: PgpKeyInfo): void {
    const addr = this.sql('INSERT OR IGNORE INTO pgp_key_addresses (pgp_key_id, address, address_key) VALUES (?, ?, ?)');
    for (const a of i.addresses) addr.run(id, a, addressKey(a));
  }

  private pgpRow(fingerprint: string): StoredPgpKey | undefined {
    const r = this.sql('SELECT * FROM pgp_keys WHERE fingerprint = ?').get(fingerprint) as Row | undefined;
    return r ? this.toPgp(r) : undefined;
  }

  private toPgp(r: Row): StoredPgpKey {
    const addresses = (this.sql('SELECT address FROM pgp_key_addresses WHERE pgp_key_id = ? ORDER BY rowid').all(r.id) as Row[]).map((a) => a.address as string);
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
    const rows = this
      .sql('SELECT k.* FROM pgp_keys k JOIN pgp_key_addresses a ON a.pgp_key_id = k.id WHERE a.address_key = ? ORDER BY k.created DESC')
      .all(addressKey(address)) as Row[];
    return rows.map((r) => this.toPgp(r));
  }

  async listPgpKeys(filter: { address?: string } = {}): Promise<StoredPgpKey[]> {
    if (filter.address) return this.pgpKeysFor(filter.address);
    return (this.sql('SELECT * FROM pgp_keys ORDER BY id').all() as Row[]).map((r) => this.toPgp(r));
  }

  /** By fingerprint, or key id / fingerprint suffix of at least 8 hex digits (as gpg accepts). */
  async findPgpKey(selector: string): Promise<StoredPgpKey[]> {
    const s = selector.toUpperCase().replace(/^0X/, '').replace(/\s/g, '');
    if (!/^[0-9A-F]{8,64}$/.test(s)) return [];
    return (this.sql('SELECT * FROM pgp_keys WHERE fingerprint LIKE ? ORDER BY id').all(`%${s}`) as Row[]).map((r) => this.toPgp(r));
  }

  async pgpSecretKey(key: StoredPgpKey, purpose: 'sign' | 'decrypt' | 'export', actor: string): Promise<Buffer | undefined> {
    const r = this.sql('SELECT secret_id FROM pgp_keys WHERE id = ?').get(key.id) as Row | undefined;
    if (r?.secret_id == null) return undefined;
    const secret = await this.readSecret(r.secret_id as number);
    this.audit({ actor, action: purpose === 'export' ? 'export' : purpose === 'sign' ? 'use-sign' : 'use-decrypt', object: `pgp:${key.info.fingerprint}` });
    return secret;
  }

  deletePgpKey(key: StoredPgpKey, actor: string): Promise<void> {
    return this.transaction(async () => {
      const r = this.sql('SELECT secret_id FROM pgp_keys WHERE id = ?').get(key.id) as Row | undefined;
      this.sql('DELETE FROM pgp_keys WHERE id = ?').run(key.id);
      if (r?.secret_id != null) this.sql('DELETE FROM sealed_secrets WHERE id = ?').run(r.secret_id);
      this.audit({ actor, action: 'delete', object: `pgp:${key.info.fingerprint}`, detail: r?.secret_id != null ? 'with secret key' : undefined });
    });
  }
}
