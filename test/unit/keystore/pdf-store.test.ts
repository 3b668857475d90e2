/**
 * PDF passwords in the keystore (issue 16): made once per pair (also when two workers race),
 * reset, set, shown, listed and deleted with an audit row each that never holds the password,
 * sealed under the KEK (rotated with the rest), and the migration that makes room for them in an
 * existing database. Every test on both backends (the contract suite, test/helpers/store-backends.ts);
 * on PostgreSQL two stores are two nodes of a cluster sharing one database.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { openKek, openKeyStore, openKeyStoreWithPortal, PdfPasswordError, type KeyStore, type PdfPair, type PortalDb } from '../../../src/keystore/index.js';
import { migrate, SCHEMA_VERSION } from '../../../src/keystore/schema.js';
import { tempDir } from '../../helpers/config.js';
import { keystoreOnBackend, type KeystoreOnBackend } from '../../helpers/keystore-backend.js';
import { STORE_BACKENDS, useStoreBackend } from '../../helpers/store-backends.js';

/** Cheap scrypt for tests (the production cost is PDF_SCRYPT). */
const FAST = { N: 2 ** 10, r: 8, p: 1 };
const ALICE_BOB: PdfPair = { sender: 'alice@example.com', recipient: 'bob@partner.example' };

describe.each(STORE_BACKENDS)('PDF passwords in the keystore (%s)', (backend) => {
  const on = useStoreBackend(backend);
  let dir: string;
  let cleanup: () => Promise<void>;
  let db: KeystoreOnBackend;
  let config: Config;
  let store: KeyStore;
  /** portal.db, where a reset or delete takes the pair's reply links (pdf-reply-tokens.test.ts). */
  let portal: PortalDb;
  const others: KeyStore[] = [];

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-pdfpw-'));
    db = await keystoreOnBackend(on, dir);
    config = db.config;
    ({ store, portal } = await openKeyStoreWithPortal(config, { pdfScrypt: FAST }));
  });
  afterEach(async () => {
    await store.close();
    portal.close();
    for (const o of others.splice(0)) await o.close();
    await cleanup();
  });

  const count = async (sql: string) => Number((await db.rows<{ n: number }>(sql))[0]!.n);

  it('makes a pair its password once, then hands out the same one (any spelling of the addresses)', async () => {
    const first = await store.pdfPassword(ALICE_BOB, 'pair', 'worker');
    expect(first.created).toBe(true);
    expect(first.password).toMatch(/^[a-z2-9]{4}(-[a-z2-9]{4}){3}-[a-z2-9]$/);
    expect(first.record).toMatchObject({ sender: 'alice@example.com', recipient: 'bob@partner.example', notified: null, source: 'generated' });
    const again = await store.pdfPassword({ sender: 'Alice@EXAMPLE.com', recipient: 'bob@Partner.Example.' }, 'pair', 'worker');
    expect(again).toEqual({ password: first.password, record: first.record, created: false });
    // Another sender to the same recipient is another pair.
    const carol = await store.pdfPassword({ sender: 'carol@example.com', recipient: 'bob@partner.example' }, 'pair', 'worker');
    expect(carol.created).toBe(true);
    expect(carol.password).not.toBe(first.password);
    expect((await store.auditLog('pdf:alice@example.com→bob@partner.example')).map((a) => [a.actor, a.action])).toEqual([['worker', 'pdf-password-create']]);
  });

  it('keeps one password per recipient for all senders with scope "recipient" (sender stored as *)', async () => {
    const a = await store.pdfPassword(ALICE_BOB, 'recipient', 'worker');
    const b = await store.pdfPassword({ sender: 'carol@example.com', recipient: 'BOB@partner.example' }, 'recipient', 'worker');
    expect(a.created).toBe(true);
    expect(b).toMatchObject({ created: false, password: a.password });
    expect(a.record.sender).toBe('*');
    // The pair scope is a different password.
    expect((await store.pdfPassword(ALICE_BOB, 'pair', 'worker')).password).not.toBe(a.password);
    expect(await store.auditLog('pdf:*→bob@partner.example')).toHaveLength(1);
  });

  it('canonicalises IDN domains and refuses what is no mail address', async () => {
    const u = await store.pdfPassword({ sender: 'alice@example.com', recipient: 'kim@bücher.example' }, 'pair', 'worker');
    expect(u.record.recipient).toBe('kim@xn--bcher-kva.example');
    expect((await store.pdfPassword({ sender: 'alice@example.com', recipient: 'KIM@xn--bcher-kva.example' }, 'pair', 'worker')).password).toBe(u.password);
    for (const bad of ['', 'bob', '../../etc/passwd', 'bob@exa\u202emple.com', 'bob@[127.0.0.1]', '*']) {
      await expect(store.pdfPassword({ sender: 'alice@example.com', recipient: bad }, 'pair', 'worker')).rejects.toThrow(PdfPasswordError);
    }
    await expect(store.pdfPassword({ sender: '*', recipient: 'bob@partner.example' }, 'pair', 'worker')).rejects.toThrow(/sender "\*" is not a mail address/);
    // A hostile address is quoted in the message, its controls escaped.
    await expect(store.pdfPassword({ sender: 'alice@example.com', recipient: 'x\u202e\n@y' }, 'pair', 'worker')).rejects.toThrow(/"x\\u202e\\n@y"/);
  });

  it('ends a race of two workers (two connections to one database) with one password', async () => {
    const second = await openKeyStore(config, { pdfScrypt: FAST });
    others.push(second);
    const results = await Promise.all([store.pdfPassword(ALICE_BOB, 'pair', 'worker-1'), second.pdfPassword(ALICE_BOB, 'pair', 'worker-2')]);
    expect(results[0].password).toBe(results[1].password);
    expect(results.map((r) => r.created).sort()).toEqual([false, true]);
    expect(await count('SELECT count(*) AS n FROM pdf_passwords')).toBe(1);
    // The loser's sealed secret is not left behind.
    expect(await count("SELECT count(*) AS n FROM sealed_secrets WHERE kind = 'pdf-password'")).toBe(1);
    expect((await store.auditLog()).filter((a) => a.action === 'pdf-password-create')).toHaveLength(1);
  });

  it('makes one password for a pair that several stores (nodes) ask for at once, and each then hands it out', async () => {
    for (let i = 0; i < 2; i++) others.push(await openKeyStore(config, { pdfScrypt: FAST }));
    const stores = [store, ...others];
    const asks = stores.flatMap((s, i) => [s.pdfPassword(ALICE_BOB, 'recipient', `worker-${i}a`), s.pdfPassword({ sender: 'carol@example.com', recipient: 'BOB@partner.example' }, 'recipient', `worker-${i}b`)]);
    const results = await Promise.all(asks);
    expect(new Set(results.map((r) => r.password)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await count('SELECT count(*) AS n FROM pdf_passwords')).toBe(1);
    expect(await count("SELECT count(*) AS n FROM sealed_secrets WHERE kind = 'pdf-password'")).toBe(1);
    expect(await count("SELECT count(*) AS n FROM audit_log WHERE action = 'pdf-password-create'")).toBe(1);
    // A reset through one is what every other hands out next: nothing of it is kept per store.
    const reset = await store.resetPdfPassword(ALICE_BOB, 'recipient', 'cli:root');
    for (const s of stores) expect((await s.pdfPassword(ALICE_BOB, 'recipient', 'worker')).password).toBe(reset.password);
    expect(await others[1]!.checkPdfPassword(ALICE_BOB, 'recipient', reset.password)).toBe(true);
  });

  it('counts every change of a password for the caches of other processes and nodes, and nothing for a read', async () => {
    const pdf = async () => (await store.changeCounters()).pdf;
    const before = await pdf();
    expect(before).toEqual(expect.any(Number));
    const made = await store.pdfPassword(ALICE_BOB, 'pair', 'worker');
    expect(await pdf()).toBe(before! + 1);
    await store.pdfPassword(ALICE_BOB, 'pair', 'worker');
    await store.showPdfPassword(ALICE_BOB, 'pair', 'cli:root');
    await store.claimPdfPasswordNotice(ALICE_BOB, 'pair', made.record.created, 'q1');
    expect(await pdf()).toBe(before! + 1);
    await store.resetPdfPassword(ALICE_BOB, 'pair', 'cli:root');
    await store.setPdfPassword(ALICE_BOB, 'pair', 'admin-chosen-secret', 'cli:root');
    await store.deletePdfPassword(ALICE_BOB, 'pair', 'cli:root');
    expect(await pdf()).toBe(before! + 4);
  });

  it('marks the sender told only for the password the notice was about', async () => {
    const { record } = await store.pdfPassword(ALICE_BOB, 'pair', 'worker');
    await store.markPdfPasswordNotified(ALICE_BOB, 'pair', new Date(record.created.getTime() - 1));
    expect((await store.pdfPasswordRecord(ALICE_BOB, 'pair'))!.notified).toBeNull();
    await store.markPdfPasswordNotified(ALICE_BOB, 'pair', record.created);
    const told = (await store.pdfPasswordRecord(ALICE_BOB, 'pair'))!.notified;
    expect(told).toBeInstanceOf(Date);
    // A notice of the old password, arriving after a reset, does not mark the new one told.
    const reset = await store.resetPdfPassword(ALICE_BOB, 'pair', 'cli:root');
    expect(reset.record.created.getTime()).toBeGreaterThan(record.created.getTime());
    await store.markPdfPasswordNotified(ALICE_BOB, 'pair', record.created);
    expect((await store.pdfPasswordRecord(ALICE_BOB, 'pair'))!.notified).toBeNull();
    expect(await store.pdfPasswordRecord({ sender: 'x@example.com', recipient: 'y@example.com' }, 'pair')).toBeNull();
  });

  it('lets one message tell the sender: the first claimant (again after a crash), until the claim lapses or a reset', async () => {
    const { record } = await store.pdfPassword(ALICE_BOB, 'pair', 'worker');
    const claims = await Promise.all(['q1', 'q2', 'q3'].map((q) => store.claimPdfPasswordNotice(ALICE_BOB, 'pair', record.created, q)));
    expect(claims).toEqual([true, false, false]);
    // The same message, processed again (reclaimed after its worker died), still tells.
    expect(await store.claimPdfPasswordNotice(ALICE_BOB, 'pair', record.created, 'q1')).toBe(true);
    // A claim whose notice was never queued lapses: another message tells.
    await new Promise((r) => setTimeout(r, 5));
    expect(await store.claimPdfPasswordNotice(ALICE_BOB, 'pair', record.created, 'q2', 1)).toBe(true);
    // A claim for a password that is no longer the pair's, or one already told, is refused.
    expect(await store.claimPdfPasswordNotice(ALICE_BOB, 'pair', new Date(0), 'q4', 1)).toBe(false);
    const reset = await store.resetPdfPassword(ALICE_BOB, 'pair', 'cli:root');
    expect(await store.claimPdfPasswordNotice(ALICE_BOB, 'pair', reset.record.created, 'q5')).toBe(true);
    await store.markPdfPasswordNotified(ALICE_BOB, 'pair', reset.record.created);
    expect(await store.claimPdfPasswordNotice(ALICE_BOB, 'pair', reset.record.created, 'q5')).toBe(false);
  });

  it('resets to a new generated password, untold, and refuses to reset a pair it does not know', async () => {
    const old = await store.pdfPassword(ALICE_BOB, 'pair', 'worker');
    await store.markPdfPasswordNotified(ALICE_BOB, 'pair', old.record.created);
    const r = await store.resetPdfPassword(ALICE_BOB, 'pair', 'cli:root');
    expect(r.password).not.toBe(old.password);
    expect(r.record).toMatchObject({ notified: null, source: 'generated' });
    expect(await store.pdfPassword(ALICE_BOB, 'pair', 'worker')).toMatchObject({ password: r.password, created: false });
    expect(await store.checkPdfPassword(ALICE_BOB, 'pair', r.password)).toBe(true);
    expect(await store.checkPdfPassword(ALICE_BOB, 'pair', old.password)).toBe(false);
    // The old sealed secret is gone with it.
    expect(await count("SELECT count(*) AS n FROM sealed_secrets WHERE kind = 'pdf-password'")).toBe(1);
    await expect(store.resetPdfPassword({ sender: 'nobody@example.com', recipient: 'bob@partner.example' }, 'pair', 'cli:root')).rejects.toThrow(
      'no PDF password for nobody@example.com → bob@partner.example',
    );
  });

  it('sets an admin-chosen password (creating the pair if need be) and refuses weak or unreadable ones', async () => {
    const rec = await store.setPdfPassword(ALICE_BOB, 'pair', 'Passwört für Bob', 'cli:root');
    expect(rec).toMatchObject({ source: 'set', notified: null, sender: 'alice@example.com' });
    expect((await store.showPdfPassword(ALICE_BOB, 'pair', 'cli:root'))!.password).toBe('Passwört für Bob');
    // NFKC, as the PDF reader's SASLprep: the decomposed spelling checks too.
    expect(await store.checkPdfPassword(ALICE_BOB, 'pair', 'Passwo\u0308rt für Bob')).toBe(true);
    for (const bad of ['short', 'tab\there-too', 'zero\u200bwidth-x', ' leading-space', 'x'.repeat(128), 'é'.repeat(64)]) {
      await expect(store.setPdfPassword(ALICE_BOB, 'pair', bad, 'cli:root')).rejects.toThrow(PdfPasswordError);
    }
    expect((await store.showPdfPassword(ALICE_BOB, 'pair', 'cli:root'))!.password).toBe('Passwört für Bob');
  });

  it('shows (audited), lists (no passwords) and deletes (audited)', async () => {
    const a = await store.pdfPassword(ALICE_BOB, 'pair', 'worker');
    await store.pdfPassword({ sender: 'carol@example.com', recipient: 'bob@partner.example' }, 'pair', 'worker');
    await store.pdfPassword({ sender: 'alice@example.com', recipient: 'dan@other.example' }, 'recipient', 'worker');
    expect(await store.showPdfPassword(ALICE_BOB, 'pair', 'cli:admin')).toMatchObject({ password: a.password, record: a.record });
    expect(await store.showPdfPassword({ sender: 'x@example.com', recipient: 'y@example.com' }, 'pair', 'cli:admin')).toBeNull();

    const all = await store.listPdfPasswords();
    expect(all.map((r) => `${r.sender}→${r.recipient}`)).toEqual(['alice@example.com→bob@partner.example', 'carol@example.com→bob@partner.example', '*→dan@other.example']);
    expect(JSON.stringify(all)).not.toContain(a.password);
    expect((await store.listPdfPasswords({ sender: 'ALICE@example.com' })).map((r) => r.recipient)).toEqual(['bob@partner.example']);
    expect((await store.listPdfPasswords({ recipient: 'bob@partner.example' })).map((r) => r.sender)).toEqual(['alice@example.com', 'carol@example.com']);
    expect((await store.listPdfPasswords({ sender: '*' })).map((r) => r.recipient)).toEqual(['dan@other.example']);

    expect(await store.deletePdfPassword(ALICE_BOB, 'pair', 'cli:admin')).toBe(true);
    expect(await store.deletePdfPassword(ALICE_BOB, 'pair', 'cli:admin')).toBe(false);
    expect(await store.showPdfPassword(ALICE_BOB, 'pair', 'cli:admin')).toBeNull();
    expect(await count("SELECT count(*) AS n FROM sealed_secrets WHERE kind = 'pdf-password'")).toBe(2);
    expect((await store.auditLog('pdf:alice@example.com→bob@partner.example')).map((e) => [e.actor, e.action])).toEqual([
      ['worker', 'pdf-password-create'],
      ['cli:admin', 'pdf-password-show'],
      ['cli:admin', 'pdf-password-delete'],
    ]);
  });

  it('never writes a password into the audit log', async () => {
    const made = [await store.pdfPassword(ALICE_BOB, 'pair', 'worker')];
    made.push({ ...(await store.resetPdfPassword(ALICE_BOB, 'pair', 'cli:root')), created: false });
    await store.setPdfPassword(ALICE_BOB, 'recipient', 'admin-chosen-secret', 'cli:root');
    await store.showPdfPassword(ALICE_BOB, 'pair', 'cli:root');
    await store.markPdfPasswordNotified(ALICE_BOB, 'pair', made[1]!.record.created);
    await store.deletePdfPassword(ALICE_BOB, 'pair', 'cli:root');
    const log = await db.rows('SELECT * FROM audit_log');
    expect(new Set(log.map((r) => r.action))).toEqual(
      new Set(['pdf-password-create', 'pdf-password-reset', 'pdf-password-set', 'pdf-password-show', 'pdf-password-notified', 'pdf-password-delete']),
    );
    const text = JSON.stringify(log);
    for (const p of [...made.map((m) => m.password), 'admin-chosen-secret']) expect(text).not.toContain(p);
  });

  it('re-wraps PDF passwords with the other secrets when the KEK is rotated', async () => {
    const a = await store.pdfPassword(ALICE_BOB, 'pair', 'worker');
    const other: Config = { ...config, kek: { file: join(dir, 'kek2.key') } };
    const to = await openKek(other.kek, { saltFile: join(dir, 'kek.salt'), create: true });
    expect(await store.rotateKek(to, 'test')).toBe(1);
    await store.close();
    store = await openKeyStore(other, { pdfScrypt: FAST });
    expect((await store.showPdfPassword(ALICE_BOB, 'pair', 'test'))!.password).toBe(a.password);
  });
});

describe('schema migration 5', () => {
  it('rebuilds sealed_secrets for PDF passwords, keeping every row, id and reference', async () => {
    const { dir, cleanup } = await tempDir('postern-pdfpw-migrate-');
    try {
      const file = join(dir, 'postern.db');
      const db = new Database(file);
      db.pragma('foreign_keys = ON');
      migrate(db, 4);
      expect(db.pragma('user_version', { simple: true })).toBe(4);
      const blob = (n: number) => Buffer.alloc(n, n);
      db.prepare("INSERT INTO sealed_secrets (id, kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created) VALUES (7, 'x509-key', 'k1', 'AES-256-GCM', ?, ?, ?, 1)").run(blob(61), blob(12), blob(40));
      db.prepare("INSERT INTO sealed_secrets (id, kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created) VALUES (9, 'pgp-secret', 'k1', 'AES-256-GCM', ?, ?, ?, 2)").run(blob(61), blob(12), blob(50));
      db.prepare("INSERT INTO private_keys (spki_sha256, key_algorithm, secret_id, created) VALUES ('ab', 'rsa', 7, 1)").run();
      expect(() => db.prepare("INSERT INTO sealed_secrets (kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created) VALUES ('pdf-password', 'k1', 'a', x'', x'', x'', 1)").run()).toThrow(/CHECK/);

      migrate(db);
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(db.prepare('SELECT id, kind, length(ciphertext) AS n FROM sealed_secrets ORDER BY id').all()).toEqual([
        { id: 7, kind: 'x509-key', n: 40 },
        { id: 9, kind: 'pgp-secret', n: 50 },
      ]);
      expect(db.pragma('foreign_key_check')).toEqual([]);
      // The reference still holds: a referenced secret cannot be deleted, an unreferenced one can.
      expect(() => db.prepare('DELETE FROM sealed_secrets WHERE id = 7').run()).toThrow(/FOREIGN KEY/);
      db.prepare('DELETE FROM sealed_secrets WHERE id = 9').run();
      db.prepare("INSERT INTO sealed_secrets (kind, kek_id, kek_alg, wrapped_key, iv, ciphertext, created) VALUES ('pdf-password', 'k1', 'a', x'', x'', x'', 1)").run();
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sealed_secrets' AND name NOT LIKE 'sqlite_%'").all()).toEqual([{ name: 'sealed_secrets_kek' }]);
      db.close();
    } finally {
      await cleanup();
    }
  });
});
