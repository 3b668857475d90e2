/**
 * The keystore, part 3: OpenPGP keys, public and (sealed) secret, by fingerprint and by user-id
 * address. `SqlKeyStore` is the whole store, on either backend (sql/types.ts); the rest of
 * Postern knows it as `KeyStore`.
 */
import { mergePgpKey, type ParsedPgpKey, type PgpKeyInfo } from '../openpgp/index.js';
import { addressKey, type Row } from './store-base.js';
import { AdminStore } from './store-admin.js';
import type { ImportStatus, PgpSource, StoredPgpKey } from './types.js';

export class SqlKeyStore extends AdminStore {
  // ---- OpenPGP -----------------------------------------------------------------------------------

  importPgpKey(key: ParsedPgpKey, opts: { source: PgpSource; actor: string }): Promise<{ status: ImportStatus; key: StoredPgpKey }> {
    return this.transaction(async () => {
      const i = key.info;
      const existing = await this.db.get('SELECT id, secret_id, public_key FROM pgp_keys WHERE fingerprint = ?', [i.fingerprint]);
      if (existing) {
        // The same key again may bring what we lacked: its secret part, or new self-signatures
        // (a revocation, a new expiry, new user ids). Merged into what we hold, never replacing
        // it: a copy without the revocation (stripped, or older) must not un-revoke the key.
        const id = existing.id as number;
        const addSecret = key.secretKey && existing.secret_id == null;
        const had = (await this.db.all('SELECT address FROM pgp_key_addresses WHERE pgp_key_id = ? ORDER BY rowid', [id])).map((a) => a.address as string);
        const updated = await this.updatePgpPublic(id, existing.public_key as Buffer, await mergePgpKey(existing.public_key as Buffer, had, key));
        if (addSecret) await this.db.run('UPDATE pgp_keys SET secret_id = ? WHERE id = ?', [await this.insertSecret('pgp-secret', key.secretKey!), id]);
        const changed = addSecret || updated;
        if (changed) {
          await this.changed('pgp');
          await this.audit({ actor: opts.actor, action: 'import', object: `pgp:${i.fingerprint}`, detail: addSecret ? 'secret key added' : 'updated' });
        }
        return { status: changed ? ('updated' as const) : ('duplicate' as const), key: (await this.pgpRow(i.fingerprint))! };
      }
      const secretId = key.secretKey ? await this.insertSecret('pgp-secret', key.secretKey) : null;
      const row = await this.db.get(
        `INSERT INTO pgp_keys (fingerprint, key_id, version, public_key, user_ids, algorithm, created, expires, revoked,
           can_encrypt, can_sign, encrypt_problem, source, first_seen, secret_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
        [
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
        ],
      );
      await this.setPgpAddresses(Number(row!.id), i);
      await this.changed('pgp');
      await this.audit({ actor: opts.actor, action: opts.source === 'generated' ? 'generate' : 'import', object: `pgp:${i.fingerprint}`, detail: `source ${opts.source}${secretId ? ', with secret key' : ''}` });
      return { status: 'added' as const, key: (await this.pgpRow(i.fingerprint))! };
    });
  }

  /** Take newer public data of a key already stored; false when nothing changed. */
  private async updatePgpPublic(id: number, before: Buffer, key: ParsedPgpKey): Promise<boolean> {
    if (before.equals(key.publicKey)) return false;
    const i = key.info;
    await this.db.run(
      'UPDATE pgp_keys SET public_key = ?, user_ids = ?, expires = ?, revoked = ?, can_encrypt = ?, can_sign = ?, encrypt_problem = ? WHERE id = ?',
      [key.publicKey, JSON.stringify(i.userIds), i.expires ? i.expires.getTime() : null, i.revoked ? 1 : 0, i.canEncrypt ? 1 : 0, i.canSign ? 1 : 0, i.encryptProblem ?? null, id],
    );
    await this.db.run('DELETE FROM pgp_key_addresses WHERE pgp_key_id = ?', [id]);
    await this.setPgpAddresses(id, i);
    return true;
  }

  /** In the key's order (the rows' insertion order is how they are read back). */
  private async setPgpAddresses(id: number, i: PgpKeyInfo): Promise<void> {
    for (const a of i.addresses) {
      await this.db.run('INSERT INTO pgp_key_addresses (pgp_key_id, address, address_key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [id, a, addressKey(a)]);
    }
  }

  private async pgpRow(fingerprint: string): Promise<StoredPgpKey | undefined> {
    return (await this.pgpKeys('WHERE k.fingerprint = ?', [fingerprint]))[0];
  }

  /**
   * Keys with their user-id addresses in one query (not a round trip per key: on the mail path,
   * PostgreSQL pays for each): a row per key and address, folded here. `where` and `order` name
   * the key as `k`; `join` may add tables to filter by.
   */
  private async pgpKeys(where: string, params: string[], order = 'k.id', join = ''): Promise<StoredPgpKey[]> {
    const rows = await this.db.all(`${PGP_SELECT} ${join} ${where} ORDER BY ${order}, k.id, e.rowid`, params);
    const byId = new Map<number, StoredPgpKey>();
    for (const r of rows) {
      const id = r.id as number;
      let k = byId.get(id);
      if (!k) byId.set(id, (k = toPgp(r)));
      if (r.uid_address != null) k.info.addresses.push(r.uid_address as string);
    }
    return [...byId.values()];
  }

  async pgpKeysFor(address: string): Promise<StoredPgpKey[]> {
    return this.pgpKeys('WHERE a.address_key = ?', [addressKey(address)], 'k.created DESC', 'JOIN pgp_key_addresses a ON a.pgp_key_id = k.id');
  }

  async listPgpKeys(filter: { address?: string } = {}): Promise<StoredPgpKey[]> {
    if (filter.address) return this.pgpKeysFor(filter.address);
    return this.pgpKeys('', []);
  }

  /** By fingerprint, or key id / fingerprint suffix of at least 8 hex digits (as gpg accepts). */
  async findPgpKey(selector: string): Promise<StoredPgpKey[]> {
    const s = selector.toUpperCase().replace(/^0X/, '').replace(/\s/g, '');
    if (!/^[0-9A-F]{8,64}$/.test(s)) return [];
    // Fingerprints are stored in upper case and `s` is hex only: LIKE matches alike on both backends.
    return this.pgpKeys('WHERE k.fingerprint LIKE ?', [`%${s}`]);
  }

  async pgpSecretKey(key: StoredPgpKey, purpose: 'sign' | 'decrypt' | 'export', actor: string): Promise<Buffer | undefined> {
    const r = await this.db.get('SELECT secret_id FROM pgp_keys WHERE id = ?', [key.id]);
    if (r?.secret_id == null) return undefined;
    const secret = await this.readSecret(r.secret_id as number);
    await this.audit({ actor, action: purpose === 'export' ? 'export' : purpose === 'sign' ? 'use-sign' : 'use-decrypt', object: `pgp:${key.info.fingerprint}` });
    return secret;
  }

  deletePgpKey(key: StoredPgpKey, actor: string): Promise<void> {
    return this.transaction(async () => {
      const r = await this.db.get('SELECT secret_id FROM pgp_keys WHERE id = ?', [key.id]);
      await this.db.run('DELETE FROM pgp_keys WHERE id = ?', [key.id]);
      if (r?.secret_id != null) await this.db.run('DELETE FROM sealed_secrets WHERE id = ?', [r.secret_id as number]);
      await this.changed('pgp');
      await this.audit({ actor, action: 'delete', object: `pgp:${key.info.fingerprint}`, detail: r?.secret_id != null ? 'with secret key' : undefined });
    });
  }
}

/** One row per key and address (none: one row, uid_address null); `e.rowid` orders them as imported (schema-pg.ts gives PostgreSQL that column). */
const PGP_SELECT = 'SELECT k.*, e.address AS uid_address FROM pgp_keys k LEFT JOIN pgp_key_addresses e ON e.pgp_key_id = k.id';

/** A key row without its addresses (pgpKeys() adds them). */
function toPgp(r: Row): StoredPgpKey {
  return {
    id: r.id as number,
    info: {
      fingerprint: r.fingerprint as string,
      keyId: r.key_id as string,
      version: r.version as PgpKeyInfo['version'],
      userIds: JSON.parse(r.user_ids as string) as string[],
      addresses: [],
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
