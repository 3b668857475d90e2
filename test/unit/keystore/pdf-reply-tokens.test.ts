/**
 * What the Internet-facing portal will do with PDF passwords, without the KEK: check a password
 * against its verifier, and open a reply link's sealed data with the addressee's password. And
 * what a stolen copy of the database gives: no password, no token, no subject — the SQLite file
 * and its WAL are scanned byte by byte.
 */
import Database from 'better-sqlite3';
import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { databaseFiles, KekError, openKeyStore, openPublicKeyStore, PdfPasswordError, verifyPdfPassword, type KeyStore, type PdfPair } from '../../../src/keystore/index.js';
import { makePdfVerifier, replyTokenHash } from '../../../src/keystore/pdf-verifier.js';
import { tempDir, testConfig } from '../../helpers/config.js';

const FAST = { N: 2 ** 10, r: 8, p: 1 };
const PAIR: PdfPair = { sender: 'alice@example.com', recipient: 'bob@partner.example' };
const DAY = 86_400_000;
const MESSAGE = { messageId: '<quarterly-7f3a9c@example.com>', subject: 'Quartalszahlen Ω 四半期 — vertraulich', sender: 'Alice Example <alice@example.com>' };

describe('PDF password verifiers and reply links', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: Config;
  let store: KeyStore;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-pdfreply-'));
    config = testConfig(dir);
    store = await openKeyStore(config, { pdfScrypt: FAST });
  });
  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  const link = async (password: string, over: Partial<Parameters<KeyStore['createReplyToken']>[0]> = {}) =>
    store.createReplyToken({ pair: PAIR, scope: 'pair', password, ...MESSAGE, expires: new Date(Date.now() + 90 * DAY), ...over });

  it('checks a password by its verifier in a store that holds no KEK, and by the verifier string alone', async () => {
    const { password } = await store.pdfPassword(PAIR, 'pair', 'worker');
    const portal = openPublicKeyStore(config);
    try {
      expect(await portal.checkPdfPassword(PAIR, 'pair', password)).toBe(true);
      expect(await portal.checkPdfPassword(PAIR, 'pair', password.toUpperCase())).toBe(false);
      expect(await portal.checkPdfPassword(PAIR, 'pair', '')).toBe(false);
      expect(await portal.checkPdfPassword({ sender: 'carol@example.com', recipient: PAIR.recipient }, 'pair', password)).toBe(false);
      // The same store cannot unseal: the portal never sees the password itself.
      await expect(portal.showPdfPassword(PAIR, 'pair', 'portal')).rejects.toThrow(KekError);
    } finally {
      await portal.close();
    }
    const db = new Database(config.keystore.sqlite, { readonly: true });
    const { verifier } = db.prepare('SELECT verifier FROM pdf_passwords').get() as { verifier: string };
    db.close();
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
    const portal = openPublicKeyStore(config);
    try {
      const now = new Date();
      const opened = await portal.openReplyToken(token, password, now);
      expect(opened).toMatchObject({ pair: { sender: 'alice@example.com', recipient: 'bob@partner.example' }, scope: 'pair', ...MESSAGE });
      expect(opened!.expires.getTime() - opened!.created.getTime()).toBeGreaterThan(89 * DAY);
      expect(await portal.openReplyToken(token, 'wrong-password-here', now)).toBeNull();
      expect(await portal.openReplyToken(token, '', now)).toBeNull();
      expect(await portal.openReplyToken(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, password, now)).toBeNull();
      for (const bad of ['', '../../etc/passwd', `${token}=`, token.slice(1), 'x'.repeat(5000)]) expect(await portal.openReplyToken(bad, password, now)).toBeNull();
      // Expired: at and after its expiry.
      expect(await portal.openReplyToken(token, password, opened!.expires)).toBeNull();
    } finally {
      await portal.close();
    }
  });

  it('clips hostile message data and keeps links of one pair apart from another pair', async () => {
    const { password } = await store.pdfPassword(PAIR, 'pair', 'worker');
    const other = await store.pdfPassword({ sender: 'carol@example.com', recipient: PAIR.recipient }, 'recipient', 'worker');
    const long = await link(password, { subject: `${'ß'.repeat(3000)}\u{1F512}`, messageId: '<x>' });
    const opened = await store.openReplyToken(long, password, new Date());
    expect([...opened!.subject]).toHaveLength(2000);
    const theirs = await store.createReplyToken({ pair: { sender: 'anyone@example.com', recipient: PAIR.recipient }, scope: 'recipient', password: other.password, ...MESSAGE, expires: new Date(Date.now() + DAY) });
    expect(await store.openReplyToken(theirs, password, new Date())).toBeNull();
    expect(await store.openReplyToken(theirs, other.password, new Date())).toMatchObject({ scope: 'recipient', pair: { sender: '*', recipient: PAIR.recipient } });
  });

  it('makes no link under a password that is no longer the pair\'s, and none for an unknown pair', async () => {
    const { password } = await store.pdfPassword(PAIR, 'pair', 'worker');
    const before = await link(password);
    const reset = await store.resetPdfPassword(PAIR, 'pair', 'cli:root');
    await expect(link(password)).rejects.toThrow(/changed while the message was being made/);
    // Links made under the old password are gone with it; new ones open with the new password.
    expect(await store.openReplyToken(before, password, new Date())).toBeNull();
    expect(await store.openReplyToken(await link(reset.password), reset.password, new Date())).toMatchObject(MESSAGE);
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
    expect(await store.pruneReplyTokens(new Date(now))).toBe(1);
    expect(await store.pruneReplyTokens(new Date(now))).toBe(0);
    expect(await store.openReplyToken(old, password, new Date(now - 10))).toBeNull();
    expect(await store.openReplyToken(fresh, password, new Date(now))).not.toBeNull();
    await store.deletePdfPassword(PAIR, 'pair', 'cli:root');
    const db = new Database(config.keystore.sqlite, { readonly: true });
    expect((db.prepare('SELECT count(*) AS n FROM reply_tokens').get() as { n: number }).n).toBe(0);
    db.close();
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

    const bytes = Buffer.concat(await Promise.all(databaseFiles(config.keystore.sqlite).map((f) => readFile(f).catch(() => Buffer.alloc(0)))));
    expect(bytes.length).toBeGreaterThan(4096);
    expect(bytes.includes(Buffer.from(hashes[0]!))).toBe(true);
    const plain = [...secrets, ...tokens, ...secrets.map((s) => s.replace(/-/g, '')), MESSAGE.subject, 'Quartalszahlen', '四半期', 'quarterly-7f3a9c', 'Alice Example'];
    for (const p of plain) {
      for (const enc of ['utf8', 'utf16le'] as const) expect(bytes.includes(Buffer.from(p, enc)), `${p} (${enc})`).toBe(false);
    }
    for (const t of tokens) expect(bytes.includes(Buffer.from(t, 'base64url'))).toBe(false);
  });
});
