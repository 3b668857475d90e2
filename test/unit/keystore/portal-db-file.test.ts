/**
 * What only portal.db (the SQLite backend of the portal store) has: the file is data_dir/portal.db,
 * 0660, in WAL mode, and its owner's when the supervisor gives it away; a column of the wrong type
 * (SQLite does not refuse one) and a file that is no database are PortalDbError 'damaged'; a
 * read-only open or one without create makes no file. A real SQLite file in a temp dir.
 */
import Database from 'better-sqlite3';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openPortalDb, portalDbFile, type PortalDb, type ReplyLink } from '../../../src/keystore/portal-db.js';
import { openPortalStore } from '../../../src/keystore/portal-store.js';
import { lookupAccount } from '../../../src/supervisor/index.js';
import { tempDir } from '../../helpers/config.js';

const T0 = new Date('2026-03-01T10:00:00Z');

const link: ReplyLink = {
  tokenHash: 'a'.repeat(64),
  senderKey: 'alice@example.com',
  recipientKey: 'bob@partner.example',
  sender: 'alice@example.com',
  recipient: 'bob@partner.example',
  verifier: `$scrypt$ln=10,r=8,p=1$${'A'.repeat(22)}$${'B'.repeat(43)}`,
  contentKdf: `$scrypt$ln=10,r=8,p=1$${'C'.repeat(22)}`,
  sealed: { salt: Buffer.alloc(16, 1), iv: Buffer.alloc(12, 2), ciphertext: Buffer.alloc(40, 3) },
  created: T0,
  expires: new Date(T0.getTime() + 86_400_000),
};

describe('portal.db, the file', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let file: string;
  let db: PortalDb;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-portaldb-'));
    file = portalDbFile({ data_dir: dir });
    db = await openPortalStore({ data_dir: dir, keystore: { sqlite: join(dir, 'postern.db') } }, { role: 'supervisor' });
  });
  afterEach(async () => {
    await db.close();
    await cleanup();
  });

  it('is data_dir/portal.db, 0660, in WAL mode; with an owner, it and its -wal and -shm are that owner\'s', async () => {
    expect(file).toBe(join(dir, 'portal.db'));
    expect(db.backend).toEqual({ dialect: 'sqlite', where: file });
    expect((await stat(file)).mode & 0o777).toBe(0o660);
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
    const account = process.getuid?.() === 0 ? lookupAccount('postern') ?? lookupAccount('nobody') : null;
    if (!account) return; // only root can give files away; the role-isolation test covers the running gateway
    const other = await openPortalDb(file, { owner: { uid: 0, gid: account.gid } });
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      const st = await stat(f);
      expect([st.uid, st.gid, st.mode & 0o777], f).toEqual([0, account.gid, 0o660]);
    }
    await other.close();
  });

  it('a column of the wrong type or a file that is no database is "damaged"; a read-only open makes no file', async () => {
    await db.putReplyLink(link);
    const raw = new Database(file);
    raw.prepare('UPDATE reply_links SET created = ? WHERE token_hash = ?').run('yesterday', 'a'.repeat(64));
    raw.close();
    await expect(db.replyLink('a'.repeat(64), T0)).rejects.toMatchObject({ code: 'damaged' });
    const junk = join(dir, 'junk.db');
    await writeFile(junk, Buffer.alloc(8192, 0x5a));
    await expect(openPortalDb(junk)).rejects.toMatchObject({ code: 'damaged' });
    await expect(openPortalDb(join(dir, 'absent.db'), { readonly: true })).rejects.toMatchObject({ code: 'io' });
    await expect(openPortalDb(join(dir, 'absent.db'), { create: false })).rejects.toMatchObject({ code: 'io' });
    await expect(stat(join(dir, 'absent.db'))).rejects.toThrow(/ENOENT/);
  });
});
