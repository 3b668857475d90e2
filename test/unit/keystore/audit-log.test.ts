/**
 * The keystore's audit trail (issue 18): who, when, through what and from where, with before and
 * after; append-only in the database itself; filtered and paged for the admin API and `postern
 * audit`; and the migration that brings an older postern.db there keeping its records. Every
 * test of the trail runs on both backends.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openKeyStore, type KeyStore } from '../../../src/keystore/index.js';
import { migrate, SCHEMA_VERSION } from '../../../src/keystore/schema.js';
import type { Config } from '../../../src/config/types.js';
import { tempDir } from '../../helpers/config.js';
import { backendConfig, databaseOf } from '../../helpers/keystore-config.js';
import { STORE_BACKENDS, useStoreBackend } from '../../helpers/store-backends.js';

describe.each(STORE_BACKENDS)('the audit trail (%s)', (name) => {
  const backend = useStoreBackend(name);
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: Config;
  let store: KeyStore;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-audit-'));
    config = await backendConfig(backend, dir);
    store = await openKeyStore(config);
  });
  afterEach(async () => {
    vi.useRealTimers();
    await store.close();
    await cleanup();
  });

  /** Records written at the given times (ms). */
  const write = async (entries: [number, Parameters<KeyStore['audit']>[0]][]) => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      for (const [at, e] of entries) {
        vi.setSystemTime(at);
        await store.audit(e);
      }
    } finally {
      vi.useRealTimers();
    }
  };

  it('keeps client, channel, before and after, and says "cli" for the command line\'s actors', async () => {
    await store.audit({ actor: 'alice', via: 'api', client: '192.0.2.7', action: 'policy-activate', object: 'policy', before: 'rules: []\n', after: 'rules:\n  - encrypt: always\n' });
    await store.audit({ actor: 'cli:root', action: 'import', object: 'cert:ab' });
    await store.audit({ actor: 'worker', action: 'use-sign', object: 'key:cd' });
    const [a, b, c] = await store.auditLog();
    expect(a).toMatchObject({ actor: 'alice', via: 'api', client: '192.0.2.7', action: 'policy-activate', object: 'policy', before: 'rules: []\n', after: 'rules:\n  - encrypt: always\n' });
    expect(b).toMatchObject({ actor: 'cli:root', via: 'cli', action: 'import', object: 'cert:ab' });
    expect(b!.client).toBeUndefined();
    expect(c!.via).toBeUndefined();
    expect(a!.id! < b!.id! && b!.id! < c!.id!).toBe(true);
  });

  it('bounds what one record holds', async () => {
    await store.audit({ actor: 'x'.repeat(5000), action: 'policy-activate', object: 'policy', after: 'y'.repeat(2 * 1024 * 1024) });
    const [e] = await store.auditLog();
    expect(e!.actor).toMatch(/^x{1000}… \[4000 characters more, cut\]$/);
    expect(e!.after!.length).toBeLessThan(1024 * 1024 + 100);
    expect(e!.after).toMatch(/\[1048576 characters more, cut\]$/);
  });

  it('refuses to change or delete a record, in the database itself', async () => {
    await store.audit({ actor: 'cli:root', action: 'import', object: 'cert:ab' });
    if (name === 'sqlite') {
      const db = new Database(join(dir, 'postern.db'));
      try {
        expect(() => db.prepare("UPDATE audit_log SET actor = 'someone else'").run()).toThrow('the audit log is append-only');
        expect(() => db.prepare('DELETE FROM audit_log').run()).toThrow('the audit log is append-only');
        expect(db.prepare('SELECT actor FROM audit_log').all()).toEqual([{ actor: 'cli:root' }]);
        // Appending is what it is for.
        db.prepare("INSERT INTO audit_log (at, actor, action, object) VALUES (1, 'a', 'b', 'c')").run();
      } finally {
        db.close();
      }
      return;
    }
    // PostgreSQL: as the database's owner (a superuser even), not through the store.
    const pg = await backend.postgres();
    const q = (sql: string) => pg.query(sql, [], databaseOf(config));
    await expect(q("UPDATE keystore.audit_log SET actor = 'someone else'")).rejects.toThrow('the audit log is append-only');
    await expect(q('DELETE FROM keystore.audit_log')).rejects.toThrow('the audit log is append-only');
    await expect(q('TRUNCATE keystore.audit_log')).rejects.toThrow('the audit log is append-only');
    expect((await q('SELECT actor FROM keystore.audit_log')).rows).toEqual([{ actor: 'cli:root' }]);
    await q("INSERT INTO keystore.audit_log (at, actor, action, object) VALUES (1, 'a', 'b', 'c')");
    expect((await store.auditLog()).map((e) => e.actor)).toEqual(['cli:root', 'a']);
  });

  it('filters by time, actor, action and object prefix, newest or oldest first, with a limit', async () => {
    await write([
      [1000, { actor: 'alice', action: 'import', object: 'cert:01' }],
      [2000, { actor: 'bob', action: 'delete', object: 'cert:02' }],
      [3000, { actor: 'alice', action: 'trust', object: 'cert:03' }],
      [4000, { actor: 'alice', action: 'import', object: 'pgp:04' }],
      [5000, { actor: 'cli:root', action: 'admin-add', object: 'admin:carol' }],
    ]);
    const objects = async (f: Parameters<KeyStore['auditLog']>[0]) => (await store.auditLog(f)).map((e) => e.object);
    expect(await objects({})).toEqual(['cert:01', 'cert:02', 'cert:03', 'pgp:04', 'admin:carol']);
    expect(await objects({ order: 'newest', limit: 2 })).toEqual(['admin:carol', 'pgp:04']);
    expect(await objects({ since: new Date(2000), until: new Date(4000) })).toEqual(['cert:02', 'cert:03']);
    expect(await objects({ actor: 'alice', action: 'import' })).toEqual(['cert:01', 'pgp:04']);
    expect(await objects({ objectPrefix: 'cert:' })).toEqual(['cert:01', 'cert:02', 'cert:03']);
    // A prefix is a prefix, not a LIKE pattern.
    expect(await objects({ objectPrefix: 'cert%' })).toEqual([]);
    expect(await objects({ objectPrefix: '_ert:' })).toEqual([]);
    expect(await objects('cert:02')).toEqual(['cert:02']);
    expect(await objects({ limit: 0 })).toEqual([]);
    await expect(store.auditLog({ since: new Date('not a date') })).rejects.toThrow(RangeError);
    await expect(store.auditLog({ limit: -1 })).rejects.toThrow(RangeError);
  });

  it('hands out a long trail a page at a time, in either order', async () => {
    for (let i = 0; i < 25; i++) await store.audit({ actor: 'worker', action: 'use-sign', object: `key:${i}` });
    await store.audit({ actor: 'cli:root', action: 'import', object: 'cert:x' });
    const all = async (order: 'oldest' | 'newest') => {
      const out: string[] = [];
      for await (const e of store.auditRecords({ actor: 'worker', order }, 10)) out.push(e.object);
      return out;
    };
    const keys = Array.from({ length: 25 }, (_, i) => `key:${i}`);
    expect(await all('oldest')).toEqual(keys);
    expect(await all('newest')).toEqual(keys.reverse());
  });
});

describe('migration 6 of postern.db', () => {
  it('keeps the records, keys and sealed secrets of an older database', async () => {
    const { dir, cleanup } = await tempDir('postern-audit-migrate-');
    try {
      const file = join(dir, 'postern.db');
      const db = new Database(file);
      db.pragma('foreign_keys = ON');
      migrate(db, 5);
      db.prepare("INSERT INTO audit_log (at, actor, action, object, detail) VALUES (1000, 'cli:root', 'import', 'cert:ab', 'source import')").run();
      db.prepare("INSERT INTO audit_log (at, actor, action, object) VALUES (2000, 'worker', 'use-sign', 'key:cd')").run();
      db.prepare("INSERT INTO sealed_secrets (id, kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created) VALUES (7, 'x509-key', 'k1', 'AES-256-GCM', x'01', x'02', x'03', 1)").run();
      db.prepare("INSERT INTO private_keys (spki_sha256, key_algorithm, secret_id, created) VALUES ('ab', 'rsa', 7, 1)").run();
      expect(() => db.prepare("INSERT INTO sealed_secrets (kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created) VALUES ('admin-totp', 'k1', 'a', x'', x'', x'', 1)").run()).toThrow(/CHECK/);
      // Before migration 6 the trail could be changed; it must not be after.
      db.prepare("UPDATE audit_log SET detail = 'source import' WHERE id = 1").run();

      migrate(db);
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(db.prepare('SELECT at, actor, action, object, detail, client, via, before, after FROM audit_log ORDER BY id').all()).toEqual([
        { at: 1000, actor: 'cli:root', action: 'import', object: 'cert:ab', detail: 'source import', client: null, via: null, before: null, after: null },
        { at: 2000, actor: 'worker', action: 'use-sign', object: 'key:cd', detail: null, client: null, via: null, before: null, after: null },
      ]);
      expect(() => db.prepare('DELETE FROM audit_log WHERE id = 1').run()).toThrow('append-only');
      expect(db.prepare('SELECT id, kind FROM sealed_secrets').all()).toEqual([{ id: 7, kind: 'x509-key' }]);
      expect(db.pragma('foreign_key_check')).toEqual([]);
      expect(() => db.prepare('DELETE FROM sealed_secrets WHERE id = 7').run()).toThrow(/FOREIGN KEY/);
      db.prepare("INSERT INTO sealed_secrets (kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created) VALUES ('admin-totp', 'k1', 'a', x'', x'', x'', 1)").run();
      db.close();
    } finally {
      await cleanup();
    }
  });
});
