/**
 * The portal store's contract, on both backends (portal.db and PostgreSQL's schema portal): reply
 * links, webmail accounts and their mailboxes (generations, idempotent storing, retention), log-in
 * failure counters, the audit log; damaged rows are errors of their own; no mail in clear in the
 * database's files. Real databases, real sealed mail. What only portal.db has (its file's mode,
 * owner, WAL) is in portal-db-file.test.ts; two nodes and outages in portal-db-cluster.test.ts.
 */
import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PortalDbError, type PortalDb, type ReplyLink } from '../../../src/keystore/portal-db.js';
import { newAccountKeys, openForAccount, sealForAccount, unwrapAccountKey } from '../../../src/keystore/webmail-crypto.js';
import { PORTAL_BACKENDS, usePortalBackend } from '../../helpers/portal-backends.js';

const FAST = { N: 2 ** 10, r: 8, p: 1 };
const DAY = 86_400_000;
const T0 = new Date('2026-03-01T10:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

function link(over: Partial<ReplyLink> = {}): ReplyLink {
  return {
    tokenHash: 'a'.repeat(64),
    senderKey: 'alice@example.com',
    recipientKey: 'bob@partner.example',
    sender: 'alice@example.com',
    recipient: 'bob@partner.example',
    verifier: `$scrypt$ln=10,r=8,p=1$${'A'.repeat(22)}$${'B'.repeat(43)}`,
    contentKdf: `$scrypt$ln=10,r=8,p=1$${'C'.repeat(22)}`,
    sealed: { salt: Buffer.alloc(16, 1), iv: Buffer.alloc(12, 2), ciphertext: Buffer.alloc(40, 3) },
    created: T0,
    expires: at(90 * DAY),
    ...over,
  };
}

describe.each(PORTAL_BACKENDS)('the portal store (%s)', (name) => {
  const backend = usePortalBackend(name);
  let db: PortalDb;
  beforeEach(async () => {
    db = await backend.open();
  });
  afterEach(async () => {
    await db.close();
  });

  it('reply links: found until they expire, deleted per pair, pruned; a hash not of our format is not looked up', async () => {
    await db.putReplyLink(link());
    await db.putReplyLink(link({ tokenHash: 'b'.repeat(64), expires: at(DAY) }));
    await db.putReplyLink(link({ tokenHash: 'c'.repeat(64), senderKey: '*', sender: '*' }));
    const got = await db.replyLink('a'.repeat(64), T0);
    expect(got).toEqual(link());
    expect(await db.replyLink('b'.repeat(64), at(DAY))).toBeNull();
    expect(await db.replyLink('A'.repeat(64), T0)).toBeNull();
    expect(await db.replyLink("' OR 1=1 --", T0)).toBeNull();
    await expect(db.putReplyLink(link({ tokenHash: 'short' }))).rejects.toThrow(PortalDbError);
    expect(await db.pruneReplyLinks(at(DAY))).toBe(1);
    expect(await db.deleteReplyLinksOfPair('alice@example.com', 'bob@partner.example')).toBe(1);
    expect(await db.replyLink('c'.repeat(64), T0)).not.toBeNull();
    expect(await db.deleteReplyLink('c'.repeat(64))).toBe(true);
    expect(await db.deleteReplyLink('c'.repeat(64))).toBe(false);
  });

  it('accounts: one per address key; password change keeps the pair, a reset makes a new one and removes the mail', async () => {
    const keys = await newAccountKeys('first-password-123', FAST);
    const acc = await db.createAccount({ address: 'Bob@Partner.example', addressKey: 'bob@partner.example', ...keys, now: T0 });
    expect(acc).toMatchObject({ address: 'Bob@Partner.example', generation: 1, mustChangePassword: true, created: T0, lastLogin: null, passwordChanged: T0, disabled: false });
    expect(acc.publicKey.equals(keys.publicKey)).toBe(true);
    const err = await db.createAccount({ address: 'bob@partner.example', addressKey: 'bob@partner.example', ...keys }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PortalDbError);
    expect((err as PortalDbError).code).toBe('exists');
    expect(await db.account('bob@partner.example')).toEqual(acc);
    expect(await db.accountById(acc.id)).toEqual(acc);
    expect(await db.account('nobody@partner.example')).toBeNull();

    const put = (deliveryKey: string, received: Date, generation = 1, text = deliveryKey) =>
      db.putMessage({ accountId: acc.id, generation, deliveryKey, received, size: 100, summary: sealForAccount(keys.publicKey, Buffer.from(`summary ${text}`), `s:${deliveryKey}`), body: sealForAccount(keys.publicKey, Buffer.from(`body ${text}`), `b:${deliveryKey}`) });
    const first = await put('Q1:bob@partner.example', at(1000));
    expect(first.created).toBe(true);
    // A worker's retry of the same delivery stores nothing new.
    expect(await put('Q1:bob@partner.example', at(2000))).toEqual({ id: first.id, created: false });
    await put('Q2:bob@partner.example', at(3000));
    const listed = await db.listMessages(acc.id);
    expect(listed.map((m) => m.deliveryKey)).toEqual(['Q2:bob@partner.example', 'Q1:bob@partner.example']);
    expect(listed[1]).toMatchObject({ id: first.id, accountId: acc.id, generation: 1, received: at(1000), size: 100, read: false });

    // Password change: same key pair, mail still opens, must-change cleared.
    const priv = (await unwrapAccountKey('first-password-123', acc.wrapped))!;
    const { rewrapAccountKey } = await import('../../../src/keystore/webmail-crypto.js');
    await db.changeAccountPassword(acc.id, await rewrapAccountKey(priv, 'second-password-456', FAST), at(5000), { generation: 1 });
    const changed = (await db.accountById(acc.id))!;
    expect(changed).toMatchObject({ mustChangePassword: false, passwordChanged: at(5000), generation: 1 });
    const again = (await unwrapAccountKey('second-password-456', changed.wrapped))!;
    const full = (await db.message(acc.id, first.id))!;
    expect(openForAccount(again, full.body, 'b:Q1:bob@partner.example')?.toString()).toBe('body Q1:bob@partner.example');
    await db.markRead(acc.id, first.id);
    expect((await db.message(acc.id, first.id))?.read).toBe(true);

    // Reset: a new pair, generation 2, every message gone, a late delivery sealed to the old key refused.
    const fresh = await newAccountKeys('reset-password-789', FAST);
    expect(await db.mailboxBytes(acc.id)).toBe(200);
    expect(await db.resetAccount(acc.id, fresh, at(6000))).toEqual({ generation: 2, removedMessages: 2 });
    expect(await db.listMessages(acc.id)).toEqual([]);
    expect(await db.mailboxBytes(acc.id)).toBe(0);
    const reset = (await db.accountById(acc.id))!;
    expect(reset).toMatchObject({ generation: 2, mustChangePassword: true, passwordChanged: at(6000) });
    expect(reset.publicKey.equals(fresh.publicKey)).toBe(true);
    await expect(put('Q3:bob@partner.example', at(7000), 1)).rejects.toMatchObject({ code: 'stale' });
    // A password change from a session of the old generation would wrap the old key over the new pair.
    await expect(db.changeAccountPassword(acc.id, await rewrapAccountKey(again, 'x-password-000', FAST), at(7000), { generation: 1 })).rejects.toMatchObject({ code: 'stale' });
    expect((await put('Q3:bob@partner.example', at(7000), 2)).created).toBe(true);
    expect(await db.message(acc.id, first.id)).toBeNull();
    await expect(db.putMessage({ accountId: 999, generation: 1, deliveryKey: 'x', received: T0, size: 1, summary: Buffer.alloc(1), body: Buffer.alloc(1) })).rejects.toMatchObject({ code: 'missing' });

    // Another account's message is out of reach by id.
    const other = await db.createAccount({ address: 'eve@evil.example', addressKey: 'eve@evil.example', ...(await newAccountKeys('eve-password-1', FAST)) });
    const [mine] = await db.listMessages(acc.id);
    expect(await db.message(other.id, mine!.id)).toBeNull();
    expect(await db.deleteMessage(other.id, mine!.id)).toBe(false);
    expect(await db.deleteMessage(acc.id, mine!.id)).toBe(true);
    expect((await db.listAccounts()).map((a) => a.addressKey)).toEqual(['bob@partner.example', 'eve@evil.example']);
    await db.touchLogin(other.id, at(8000));
    expect((await db.accountById(other.id))?.lastLogin).toEqual(at(8000));
    expect(await db.deleteAccount('eve@evil.example')).toBe(true);
    expect(await db.deleteAccount('eve@evil.example')).toBe(false);
  });

  it('retention: old mail goes, then accounts idle longer than the retention with none left; log-in failures as old go too', async () => {
    const keys = await newAccountKeys('some-password-1', FAST);
    const idle = await db.createAccount({ address: 'idle@x.example', addressKey: 'idle@x.example', ...keys, now: T0 });
    const reader = await db.createAccount({ address: 'reader@x.example', addressKey: 'reader@x.example', ...keys, now: T0 });
    const fed = await db.createAccount({ address: 'fed@x.example', addressKey: 'fed@x.example', ...keys, now: T0 });
    const msg = (accountId: number, key: string, received: Date) => db.putMessage({ accountId, generation: 1, deliveryKey: key, received, size: 1, summary: Buffer.alloc(20), body: Buffer.alloc(20) });
    await msg(idle.id, 'old', at(DAY));
    await msg(fed.id, 'old', at(DAY));
    await msg(fed.id, 'new', at(95 * DAY));
    await db.touchLogin(reader.id, at(50 * DAY));
    await db.recordLoginFailure('client', '192.0.2.7', at(DAY));
    await db.recordLoginFailure('client', '192.0.2.8', at(95 * DAY));
    const retention = 90 * DAY;
    expect(await db.pruneWebmail({ retention, now: at(100 * DAY) })).toEqual({ messages: 2, accounts: 1 });
    expect((await db.listAccounts()).map((a) => a.addressKey)).toEqual(['fed@x.example', 'reader@x.example']);
    expect((await db.listMessages(fed.id)).map((m) => m.deliveryKey)).toEqual(['new']);
    expect((await db.loginFailures('client', '192.0.2.7')).count).toBe(0);
    expect((await db.loginFailures('client', '192.0.2.8')).count).toBe(1);
    expect(await db.pruneWebmail({ retention, now: at(141 * DAY) })).toEqual({ messages: 0, accounts: 1 });
    await expect(db.pruneWebmail({ retention: 0 })).rejects.toThrow(RangeError);
  });

  it('log-in failures count per account and per client, apart; cleared on success', async () => {
    expect(await db.loginFailures('account', 'bob@partner.example')).toEqual({ count: 0, last: null });
    for (let i = 1; i <= 5; i++) expect(await db.recordLoginFailure('account', 'bob@partner.example', at(i * 1000))).toEqual({ count: i, last: at(i * 1000) });
    // A clock step backwards never moves "last" back (the back-off would shorten).
    expect(await db.recordLoginFailure('account', 'bob@partner.example', at(0))).toEqual({ count: 6, last: at(5000) });
    expect(await db.loginFailures('client', 'bob@partner.example')).toEqual({ count: 0, last: null });
    await db.recordLoginFailure('client', '2001:db8::1', at(1));
    await db.clearLoginFailures('account', 'bob@partner.example');
    expect((await db.loginFailures('account', 'bob@partner.example')).count).toBe(0);
    expect((await db.loginFailures('client', '2001:db8::1')).count).toBe(1);
    await expect(db.recordLoginFailure('user' as 'account', 'x')).rejects.toThrow(TypeError);
  });

  it('audit: newest first, since and limit, hostile sizes clipped', async () => {
    await db.audit({ action: 'webmail-login', actor: 'bob@partner.example', client: '192.0.2.1', detail: { ok: true, tries: 1 }, at: at(1) });
    await db.audit({ action: 'webmail-login-failed', actor: 'x'.repeat(100_000), client: '192.0.2.2', subject: 'bob@partner.example', at: at(2) });
    await db.audit({ action: 'pdf-reply', actor: 'carol@partner.example', detail: { to: 'alice@example.com', note: 'n'.repeat(5000) }, at: at(3) });
    const all = await db.auditRecords();
    expect(all.map((r) => r.action)).toEqual(['pdf-reply', 'webmail-login-failed', 'webmail-login']);
    expect(all[2]).toEqual({ at: at(1), action: 'webmail-login', actor: 'bob@partner.example', client: '192.0.2.1', subject: null, detail: { ok: true, tries: 1 } });
    expect(all[1]!.actor.length).toBe(998);
    expect((all[0]!.detail.note as string).length).toBe(998);
    expect((await db.auditRecords({ since: at(2) })).length).toBe(2);
    expect((await db.auditRecords({ limit: 1 })).map((r) => r.action)).toEqual(['pdf-reply']);
  });

  it('two connections (as the portal and a worker, or two nodes) see each other\'s writes and count together', async () => {
    const second = await backend.another({ role: 'portal', create: false });
    try {
      // One after the other: two SQLite connections of one process must not hold transactions at
      // once (the second's BEGIN IMMEDIATE would block the event loop the first needs to finish).
      for (let i = 0; i < 20; i++) await (i % 2 ? db : second).recordLoginFailure('client', '198.51.100.9', at(i));
      expect((await db.loginFailures('client', '198.51.100.9')).count).toBe(20);
      const keys = await newAccountKeys('shared-password-1', FAST);
      const acc = await second.createAccount({ address: 'x@y.example', addressKey: 'x@y.example', ...keys });
      await expect(db.createAccount({ address: 'x@y.example', addressKey: 'x@y.example', ...keys })).rejects.toMatchObject({ code: 'exists' });
      expect((await db.account('x@y.example'))?.id).toBe(acc.id);
    } finally {
      await second.close();
    }
  });

  it('a damaged row is PortalDbError "damaged"', async () => {
    await backend.raw("INSERT INTO audit_log (at, event, actor, detail) VALUES (1, 'e', 'a', '[not json')");
    await expect(db.auditRecords()).rejects.toMatchObject({ code: 'damaged' });
    await backend.raw(`UPDATE audit_log SET detail = '"a string"'`);
    await expect(db.auditRecords()).rejects.toMatchObject({ code: 'damaged' });
  });

  it('hostile text with a NUL (which PostgreSQL\'s text cannot hold) is stored and looked up alike', async () => {
    const key = 'bob\u0000@partner.example';
    expect(await db.account(key)).toBeNull();
    expect(await db.recordLoginFailure('account', key, at(1))).toEqual({ count: 1, last: at(1) });
    expect((await db.loginFailures('account', key)).count).toBe(1);
    await db.audit({ action: 'webmail.login_failed', actor: key, client: '192.0.2.1\u0000' });
    expect((await db.auditRecords())[0]).toMatchObject({ actor: 'bob\uFFFD@partner.example', client: '192.0.2.1\uFFFD' });
  });

  it('holds no mail in clear: a byte scan of the database\'s files after storing sealed mail', async () => {
    const keys = await newAccountKeys('scan-password-1', FAST);
    const acc = await db.createAccount({ address: 'scan@x.example', addressKey: 'scan@x.example', ...keys });
    const secret = 'Geheimprojekt Nordlicht';
    await db.putMessage({ accountId: acc.id, generation: 1, deliveryKey: 'Q9:scan@x.example', received: T0, size: 50, summary: sealForAccount(keys.publicKey, Buffer.from(`Subject: ${secret}`), 's'), body: sealForAccount(keys.publicKey, Buffer.from(`${secret} body`), 'b') });
    const files = await backend.dataFiles();
    // The oracle that the scan reads what was stored: the address is there in clear (looked up before log-in).
    let sawAddress = false;
    for (const f of files) {
      const bytes = await readFile(f).catch(() => Buffer.alloc(0));
      expect(bytes.includes(Buffer.from('Nordlicht')), f).toBe(false);
      sawAddress ||= bytes.includes(Buffer.from('scan@x.example'));
    }
    expect(sawAddress).toBe(true);
  });
});
