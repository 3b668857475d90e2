/**
 * What the Internet-facing portal will do with PDF passwords, without the KEK: check a password
 * against its verifier, and open a reply link's sealed data with the addressee's password. Reply
 * links live in portal.db (issue 17): made by the worker's store, opened by the portal with
 * portal.db alone, moved there from an older postern.db. And what a stolen copy of the databases
 * gives: no password, no token, no subject — the database files and their logs are scanned byte by
 * byte. On both keystore backends (the contract suite); portal.db is SQLite here, attached to the
 * store by hand (a gateway on PostgreSQL has its portal schema there too: openKeyStoreWithPortal;
 * that schema is tested with portal-db.ts).
 */
import Database from 'better-sqlite3';
import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import {
  databaseFiles, KekError, KeyStore, openKek, openKeyStore, openKeystoreSql, openKeyStoreWithPortal, openPublicKeyStore, PdfPasswordError, saltFile, verifyPdfPassword,
  type PdfPair,
} from '../../../src/keystore/index.js';
import type { SqlValue } from '../../../src/keystore/sql/types.js';
import { contentRoot, makePdfVerifier, newReplyToken, replyAad, replyTokenHash, sealReplyData } from '../../../src/keystore/pdf-verifier.js';
import { openPortalDb, portalDbFile, type PortalDb } from '../../../src/keystore/portal-db.js';
import { openReplyLink } from '../../../src/keystore/portal-reply-links.js';
import { tempDir, testConfig } from '../../helpers/config.js';
import { keystoreOnBackend, type KeystoreOnBackend } from '../../helpers/keystore-backend.js';
import { STORE_BACKENDS, useStoreBackend } from '../../helpers/store-backends.js';

const FAST = { N: 2 ** 10, r: 8, p: 1 };
const PAIR: PdfPair = { sender: 'alice@example.com', recipient: 'bob@partner.example' };
const DAY = 86_400_000;
/** The store on the backend under test with portal.db (SQLite) attached, as openKeyStoreWithPortal does on one machine. */
async function withPortalDb(config: Config, opts: Parameters<typeof openKeyStore>[1]): Promise<{ store: KeyStore; portal: PortalDb }> {
  const store = await openKeyStore(config, opts);
  const portal = await openPortalDb(portalDbFile(config));
  await store.attachPortal(portal);
  return { store, portal };
}

const MESSAGE = { messageId: '<quarterly-7f3a9c@example.com>', subject: 'Quartalszahlen Ω 四半期 — vertraulich', sender: 'Alice Example <alice@example.com>' };

describe.each(STORE_BACKENDS)('PDF password verifiers and reply links (%s)', (backend) => {
  const on = useStoreBackend(backend);
  let dir: string;
  let cleanup: () => Promise<void>;
  let db: KeystoreOnBackend;
  let config: Config;
  let store: KeyStore;
  /** The worker's connection to portal.db (attached to its store). */
  let worker: PortalDb;
  /** The portal's own connection, as its process would have it: portal.db alone. */
  let portal: PortalDb;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-pdfreply-'));
    db = await keystoreOnBackend(on, dir);
    config = db.config;
    ({ store, portal: worker } = await withPortalDb(config, { pdfScrypt: FAST }));
    portal = await openPortalDb(portalDbFile(config), { create: false });
  });
  afterEach(async () => {
    await store.close();
    await worker.close();
    await portal.close();
    await cleanup();
  });

  const link = async (password: string, over: Partial<Parameters<KeyStore['createReplyToken']>[0]> = {}) =>
    store.createReplyToken({ pair: PAIR, scope: 'pair', password, ...MESSAGE, expires: new Date(Date.now() + 90 * DAY), ...over });

  it('checks a password by its verifier in a store that holds no KEK, and by the verifier string alone', async () => {
    const { password } = await store.pdfPassword(PAIR, 'pair', 'worker');
    const publicStore = await openPublicKeyStore(config);
    try {
      expect(await publicStore.checkPdfPassword(PAIR, 'pair', password)).toBe(true);
      expect(await publicStore.checkPdfPassword(PAIR, 'pair', password.toUpperCase())).toBe(false);
      expect(await publicStore.checkPdfPassword(PAIR, 'pair', '')).toBe(false);
      expect(await publicStore.checkPdfPassword({ sender: 'carol@example.com', recipient: PAIR.recipient }, 'pair', password)).toBe(false);
      // The same store cannot unseal: the portal never sees the password itself.
      await expect(publicStore.showPdfPassword(PAIR, 'pair', 'portal')).rejects.toThrow(KekError);
    } finally {
      await publicStore.close();
    }
    const [{ verifier }] = (await db.rows<{ verifier: string }>('SELECT verifier FROM pdf_passwords')) as [{ verifier: string }];
    expect(verifier).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(await verifyPdfPassword(verifier, password)).toBe(true);
    expect(await verifyPdfPassword({ verifier }, `${password}x`)).toBe(false);
    expect(await verifyPdfPassword(verifier, 'x'.repeat(10_000))).toBe(false);
  });

  it('refuses a damaged or forged verifier instead of calling it a wrong password', async () => {
    const good = await makePdfVerifier('some-password', FAST);
    await expect(verifyPdfPassword(good.replace('ln=10', 'ln=30'), 'some-password')).rejects.toThrow(PdfPasswordError);
    await expect(verifyPdfPassword(good.replace('ln=10', 'ln=4'), 'some-password')).rejects.toThrow(PdfPasswordError);
    await expect(verifyPdfPassword(good.slice(0, -5), 'some-password')).rejects.toThrow(/damaged/);
    await expect(verifyPdfPassword('plain-text', 'some-password')).rejects.toThrow(/damaged/);
    // The production cost is what a new verifier gets by default.
    expect(await makePdfVerifier('some-password')).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$/);
  });

  it('opens a reply link with the right password, KEK-free, and to null otherwise', async () => {
    const { password } = await store.pdfPassword(PAIR, 'pair', 'worker');
    const token = await link(password);
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(Buffer.from(token, 'base64url')).toHaveLength(24);
    const now = new Date();
    const opened = await openReplyLink(portal, token, password, now);
    expect(opened).toMatchObject({ sender: MESSAGE.sender, recipient: 'bob@partner.example', messageId: MESSAGE.messageId, subject: MESSAGE.subject });
    expect(opened!.expires.getTime() - opened!.created.getTime()).toBeGreaterThan(89 * DAY);
    expect(await openReplyLink(portal, token, 'wrong-password-here', now)).toBeNull();
    expect(await openReplyLink(portal, token, '', now)).toBeNull();
    expect(await openReplyLink(portal, token, 'x'.repeat(5000), now)).toBeNull();
    expect(await openReplyLink(portal, `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, password, now)).toBeNull();
    for (const bad of ['', '../../etc/passwd', `${token}=`, token.slice(1), 'x'.repeat(5000)]) expect(await openReplyLink(portal, bad, password, now)).toBeNull();
    // Expired: at and after its expiry.
    expect(await openReplyLink(portal, token, password, opened!.expires)).toBeNull();
  });

  it('checks the link\'s verifier before its data: a forged verifier in portal.db is an error, not a wrong password', async () => {
    const { password } = await store.pdfPassword(PAIR, 'pair', 'worker');
    const token = await link(password);
    const raw = new Database(portalDbFile(config));
    raw.prepare('UPDATE reply_links SET verifier = ?').run('$scrypt$ln=40,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    raw.close();
    await expect(openReplyLink(portal, token, password)).rejects.toThrow(PdfPasswordError);
  });

  it('clips hostile message data and keeps links of one pair apart from another pair', async () => {
    const { password } = await store.pdfPassword(PAIR, 'pair', 'worker');
    const other = await store.pdfPassword({ sender: 'carol@example.com', recipient: PAIR.recipient }, 'recipient', 'worker');
    const long = await link(password, { subject: `${'ß'.repeat(3000)}\u{1F512}`, messageId: '<x>' });
    const opened = await openReplyLink(portal, long, password);
    expect([...opened!.subject]).toHaveLength(2000);
    const theirs = await store.createReplyToken({ pair: { sender: 'anyone@example.com', recipient: PAIR.recipient }, scope: 'recipient', password: other.password, ...MESSAGE, expires: new Date(Date.now() + DAY) });
    expect(await openReplyLink(portal, theirs, password)).toBeNull();
    expect(await openReplyLink(portal, theirs, other.password)).toMatchObject({ sender: MESSAGE.sender, recipient: PAIR.recipient });
    // Another link's sealed data and verifier copied into this link's row: the password passes the
    // verifier, yet the data does not open (its AAD names its own token and pair).
    const raw = new Database(portalDbFile(config));
    raw
      .prepare('UPDATE reply_links SET (salt, iv, ciphertext, verifier, content_kdf) = (SELECT salt, iv, ciphertext, verifier, content_kdf FROM reply_links WHERE token_hash = ?) WHERE token_hash = ?')
      .run(replyTokenHash(long), replyTokenHash(theirs));
    raw.close();
    expect(await openReplyLink(portal, theirs, password)).toBeNull();
  });

  it('makes no link under a password that is no longer the pair\'s, and none for an unknown pair', async () => {
    const { password } = await store.pdfPassword(PAIR, 'pair', 'worker');
    const before = await link(password);
    const reset = await store.resetPdfPassword(PAIR, 'pair', 'cli:root');
    await expect(link(password)).rejects.toThrow(/changed while the message was being made/);
    // Links made under the old password are gone with it; new ones open with the new password.
    expect(await portal.replyLink(replyTokenHash(before)!)).toBeNull();
    expect(await openReplyLink(portal, before, password)).toBeNull();
    expect(await openReplyLink(portal, await link(reset.password), reset.password)).toMatchObject({ messageId: MESSAGE.messageId, subject: MESSAGE.subject });
    await expect(store.createReplyToken({ pair: { sender: 'x@example.com', recipient: 'y@example.com' }, scope: 'pair', password, ...MESSAGE, expires: new Date() })).rejects.toThrow(
      'no PDF password for x@example.com → y@example.com',
    );
    await expect(link(reset.password, { expires: new Date(Number.NaN) })).rejects.toThrow(/expiry/);
  });

  it('prunes expired links only, and deleting the password takes its links along', async () => {
    const { password } = await store.pdfPassword(PAIR, 'pair', 'worker');
    const now = Date.now();
    const old = await link(password, { expires: new Date(now - 1) });
    const fresh = await link(password, { expires: new Date(now + DAY) });
    expect(await worker.pruneReplyLinks(new Date(now))).toBe(1);
    expect(await worker.pruneReplyLinks(new Date(now))).toBe(0);
    expect(await openReplyLink(portal, old, password, new Date(now - 10))).toBeNull();
    expect(await openReplyLink(portal, fresh, password, new Date(now))).not.toBeNull();
    await store.deletePdfPassword(PAIR, 'pair', 'cli:root');
    expect(await portal.replyLink(replyTokenHash(fresh)!, new Date(now))).toBeNull();
    // The keystore keeps no reply links at all any more.
    const tables =
      backend === 'sqlite'
        ? await db.rows("SELECT name FROM sqlite_master WHERE name = 'reply_tokens'")
        : await db.rows("SELECT table_name FROM information_schema.tables WHERE table_name = 'reply_tokens'");
    expect(tables).toEqual([]);
  });

  it('leaves no password, token, subject, message id or sender name in the database file', async () => {
    const secrets: string[] = [];
    const tokens: string[] = [];
    const pairs: PdfPair[] = [PAIR, { sender: 'carol@example.com', recipient: 'dan@other.example' }, { sender: 'erin@example.com', recipient: 'fay@third.example' }];
    for (const p of pairs) {
      const { password } = await store.pdfPassword(p, 'pair', 'worker');
      secrets.push(password);
      tokens.push(await store.createReplyToken({ pair: p, scope: 'pair', password, ...MESSAGE, expires: new Date(Date.now() + DAY) }));
    }
    await store.setPdfPassword(pairs[2]!, 'pair', 'Admin-Chosen-Secret-42', 'cli:root');
    secrets.push('Admin-Chosen-Secret-42');
    tokens.push(await store.createReplyToken({ pair: pairs[2]!, scope: 'pair', password: 'Admin-Chosen-Secret-42', ...MESSAGE, expires: new Date(Date.now() + DAY) }));
    // The token's hash is what the database may hold; check the scan would find it.
    const hashes = tokens.map((t) => replyTokenHash(t)!);
    await store.close();
    store = await openKeyStore(config, { pdfScrypt: FAST });

    const files = [...(await db.files()), ...databaseFiles(portalDbFile(config))];
    const bytes = Buffer.concat(await Promise.all(files.map((f) => readFile(f).catch(() => Buffer.alloc(0)))));
    expect(bytes.length).toBeGreaterThan(4096);
    expect(bytes.includes(Buffer.from(hashes[0]!))).toBe(true);
    const plain = [...secrets, ...tokens, ...secrets.map((s) => s.replace(/-/g, '')), MESSAGE.subject, 'Quartalszahlen', '四半期', 'quarterly-7f3a9c', 'Alice Example'];
    for (const p of plain) {
      for (const enc of ['utf8', 'utf16le'] as const) expect(bytes.includes(Buffer.from(p, enc)), `${p} (${enc})`).toBe(false);
    }
    for (const t of tokens) expect(bytes.includes(Buffer.from(t, 'base64url'))).toBe(false);
  });

  it('a store without portal.db makes, resets and deletes nothing that reply links depend on', async () => {
    const store = await openKeyStore(config, { pdfScrypt: FAST });
    try {
      const { password } = await store.pdfPassword(PAIR, 'pair', 'worker');
      await expect(store.createReplyToken({ pair: PAIR, scope: 'pair', password, ...MESSAGE, expires: new Date(Date.now() + DAY) })).rejects.toThrow(/portal\.db/);
      await expect(store.resetPdfPassword(PAIR, 'pair', 'cli:root')).rejects.toThrow(/portal\.db/);
      await expect(store.deletePdfPassword(PAIR, 'pair', 'cli:root')).rejects.toThrow(/portal\.db/);
      expect((await store.showPdfPassword(PAIR, 'pair', 'cli:root'))?.password).toBe(password);
    } finally {
      await store.close();
    }
  });

  it('a reset by another process (another node) between sealing a link and storing it takes the link back', async () => {
    const a = await withPortalDb(config, { pdfScrypt: FAST });
    const b = await withPortalDb(config, { pdfScrypt: FAST });
    try {
      const { password } = await a.store.pdfPassword(PAIR, 'pair', 'worker');
      // The worker's portal.db, with an admin's reset (another process: its own connections) landing
      // just before the link is written.
      let stored = '';
      const racing = new Proxy(a.portal, {
        get(target, prop, receiver) {
          if (prop === 'putReplyLink') {
            return async (l: Parameters<PortalDb['putReplyLink']>[0]) => {
              await b.store.resetPdfPassword(PAIR, 'pair', 'cli:root');
              stored = l.tokenHash;
              return target.putReplyLink(l);
            };
          }
          const v = Reflect.get(target, prop, receiver) as unknown;
          return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
        },
      });
      await a.store.attachPortal(racing);
      await expect(a.store.createReplyToken({ pair: PAIR, scope: 'pair', password, ...MESSAGE, expires: new Date(Date.now() + DAY) })).rejects.toThrow(/changed while the message was being made/);
      expect(stored).toMatch(/^[0-9a-f]{64}$/);
      expect(await b.portal.replyLink(stored)).toBeNull();
    } finally {
      await a.store.close();
      await a.portal.close();
      await b.store.close();
      await b.portal.close();
    }
  });

  it('a reset by another node between reading the pair and unsealing its password is told as a change', async () => {
    const { password } = await store.pdfPassword(PAIR, 'pair', 'worker');
    const admin = await withPortalDb(config, { pdfScrypt: FAST });
    const sql = await openKeystoreSql(config);
    // The worker's database, with the admin's reset landing just before the sealed password is read.
    let reset = false;
    const racing = new Proxy(sql, {
      get(target, prop, receiver) {
        if (prop === 'get') {
          return async (text: string, params?: readonly SqlValue[]) => {
            if (!reset && text.startsWith('SELECT * FROM sealed_secrets')) {
              reset = true;
              await admin.store.resetPdfPassword(PAIR, 'pair', 'cli:root');
            }
            return target.get(text, params);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
      },
    });
    const worker = new KeyStore(racing, await openKek(config.kek, { saltFile: saltFile(config), create: false }), { pdfScrypt: FAST });
    try {
      await worker.attachPortal(admin.portal);
      await expect(worker.createReplyToken({ pair: PAIR, scope: 'pair', password, ...MESSAGE, expires: new Date(Date.now() + DAY) })).rejects.toThrow(/changed while the message was being made/);
      expect(reset).toBe(true);
    } finally {
      await worker.close();
      await admin.store.close();
      await admin.portal.close();
    }
  });
});

// SQLite only: reply_tokens existed in postern.db alone (PostgreSQL's schema never had it).
describe('reply links of an older Postern (postern.db reply_tokens)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir('postern-pdfreply-move-')));
  afterEach(async () => cleanup());

  it('move to portal.db with their pair\'s verifier and KDF on first attach, keep opening, and the old table goes', async () => {
    const config = testConfig(dir);
    // As issue 16 left it: a link sealed the same way, its row in postern.db's reply_tokens.
    const old = await openKeyStore(config, { pdfScrypt: FAST });
    const { password } = await old.pdfPassword(PAIR, 'pair', 'worker');
    await old.close();
    const raw = new Database(config.keystore.sqlite);
    const pair = raw.prepare('SELECT id, sender_key, recipient_key, content_kdf FROM pdf_passwords').get() as { id: number; sender_key: string; recipient_key: string; content_kdf: string };
    const { token, hash } = newReplyToken();
    const root = await contentRoot(password, pair.content_kdf);
    const sealed = sealReplyData(root, MESSAGE, replyAad(hash, pair.sender_key, pair.recipient_key));
    raw.prepare('INSERT INTO reply_tokens (token_hash, password_id, salt, iv, ciphertext, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?)').run(hash, pair.id, sealed.salt, sealed.iv, sealed.ciphertext, Date.now(), Date.now() + DAY);
    raw.close();

    const first = await openKeyStoreWithPortal(config, { pdfScrypt: FAST });
    expect(first.moved).toBe(1);
    await first.store.close();
    await first.portal.close();
    const check = new Database(config.keystore.sqlite, { readonly: true });
    expect(check.prepare("SELECT name FROM sqlite_master WHERE name = 'reply_tokens'").get()).toBeUndefined();
    expect(check.prepare("SELECT count(*) AS n FROM audit_log WHERE action = 'pdf-reply-links-moved'").get()).toEqual({ n: 1 });
    check.close();

    const portal = await openPortalDb(portalDbFile(config), { create: false });
    try {
      expect(await openReplyLink(portal, token, password)).toMatchObject({ sender: MESSAGE.sender, recipient: PAIR.recipient, subject: MESSAGE.subject, messageId: MESSAGE.messageId });
      expect(await openReplyLink(portal, token, 'not-the-password')).toBeNull();
    } finally {
      await portal.close();
    }
    const second = await openKeyStoreWithPortal(config, { pdfScrypt: FAST });
    expect(second.moved).toBe(0);
    await second.store.close();
    await second.portal.close();
  });
});
