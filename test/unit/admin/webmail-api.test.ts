/**
 * The webmail handlers of the admin API against a real portal.db and spool: list, reset (the
 * password returned, or mailed to one of our own users and then not returned) and delete, each
 * audited in portal.db with the admin and their address and through ctx.audit — never with the
 * password. The new password is proven by unwrapping the account's key with it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { webmailRoutes } from '../../../src/admin/api/webmail.js';
import { unwrapAccountKey } from '../../../src/keystore/index.js';
import { handlerHarness, json, type HandlerHarness } from '../../helpers/admin-handlers.js';
import { makeAccount, storeMessage } from '../../helpers/webmail-store.js';

const BOB = 'bob@partner.example';

describe('admin API: webmail mailboxes', () => {
  let h: HandlerHarness;
  afterEach(() => h.close());

  const call = (method: 'GET' | 'POST', url: string, req: Parameters<HandlerHarness['call']>[3] = {}) => h.call(webmailRoutes, method, url, req);
  const reset = (address: string, body: unknown = {}) => call('POST', '/webmail/accounts/:address/reset', { params: { address }, body });

  async function withMailbox(over: Parameters<typeof handlerHarness>[0] = {}) {
    h = await handlerHarness(over);
    const account = await makeAccount(h.ctx.portal, BOB, 'first password 1');
    for (const subject of ['one', 'two']) await storeMessage(h.ctx.portal, account, Buffer.from(`Subject: ${subject}\r\n\r\nbody ${subject}\r\n`), { from: 'alice@example.com', subject });
    return account;
  }

  it('lists mailboxes with their mail counted; reset returns a new password that opens the new key, and empties the mailbox', async () => {
    await withMailbox();
    const { accounts } = json<{ accounts: Record<string, unknown>[] }>(await call('GET', '/webmail/accounts'));
    expect(accounts).toEqual([expect.objectContaining({ address: BOB, generation: 1, messages: 2, bytes: expect.any(Number), disabled: false })]);

    // Any spelling of the address finds the mailbox.
    const r = json<{ password: string; generation: number; removedMessages: number }>(await reset('Bob@PARTNER.example'));
    expect(r).toMatchObject({ address: BOB, generation: 2, removedMessages: 2, password: expect.any(String) });
    const account = (await h.ctx.portal.account(BOB))!;
    expect(await unwrapAccountKey(r.password, account.wrapped)).not.toBeNull();
    expect(await unwrapAccountKey('first password 1', account.wrapped)).toBeNull();
    expect(await h.ctx.portal.listMessages(account.id)).toEqual([]);

    expect(h.audits).toEqual([{ account: 'ops', action: 'webmail.reset', object: `webmail:${BOB}`, detail: 'generation 2, 2 messages removed, password given to the admin' }]);
    const portalAudit = (await h.ctx.portal.auditRecords()).filter((a) => a.action === 'webmail.reset');
    expect(portalAudit).toEqual([expect.objectContaining({ actor: 'ops', client: '127.0.0.1', subject: BOB, detail: { generation: 2, removedMessages: 2 } })]);
    expect(JSON.stringify([h.audits, portalAudit])).not.toContain(r.password);
  });

  it('mails the password to one of our own users (then not in the answer); refuses an outside address or a missing portal.url first', async () => {
    await withMailbox({ portal: { url: 'https://portal.example.com' } as never });
    const outside = await reset(BOB, { notify: 'eve@elsewhere.example' }).catch((e: unknown) => e);
    expect(outside).toMatchObject({ status: 400, message: expect.stringContaining('not in internal_domains') });
    expect((await h.ctx.portal.account(BOB))!.generation).toBe(1);

    const r = json<Record<string, unknown>>(await reset(BOB, { notify: 'Alice@Example.com' }));
    expect(r).toEqual({ address: BOB, generation: 2, removedMessages: 2, notified: { to: 'Alice@example.com', queueId: expect.stringMatching(/^[0-9B-Z]{20}$/) } });
    const [notice] = await h.ctx.spool.inspect(['outgoing']);
    expect(notice!.meta!.envelope).toMatchObject({ sender: '', recipients: [{ address: 'Alice@example.com', notify: ['NEVER'] }] });
    const text = (await h.ctx.spool.read('outgoing', notice!.name)).body.toString('utf8');
    expect(text).toContain('https://portal.example.com/webmail/');
    const told = /\n {4}(\S+)\r?\n/.exec(text)![1]!;
    expect(await unwrapAccountKey(told, (await h.ctx.portal.account(BOB))!.wrapped)).not.toBeNull();
    expect(h.audits.at(-1)!.detail).toContain('password mailed to Alice@example.com');
  });

  it('refuses a notify address without portal.url, leaving the old password in force', async () => {
    await withMailbox();
    await expect(reset(BOB, { notify: 'alice@example.com' })).rejects.toMatchObject({ status: 400, message: expect.stringContaining('portal.url') });
    expect((await h.ctx.portal.account(BOB))!.generation).toBe(1);
    expect(h.audits).toEqual([]);
  });

  it('deletes a mailbox and its mail; an unknown or malformed address is 404 or 400', async () => {
    await withMailbox();
    await expect(reset('nobody@partner.example')).rejects.toMatchObject({ status: 404 });
    for (const bad of ['../../etc/passwd', 'bob@partner.example\r\nX: y', 'bob\u200b@partner.example']) {
      await expect(reset(bad)).rejects.toMatchObject({ status: 400, message: 'address: not a mail address' });
    }
    const del = (address: string) => call('POST', '/webmail/accounts/:address/delete', { params: { address } });
    expect(json(await del(BOB))).toEqual({ address: BOB, removedMessages: 2 });
    expect(await h.ctx.portal.account(BOB)).toBeNull();
    await expect(del(BOB)).rejects.toMatchObject({ status: 404 });
    expect(h.audits.map((a) => [a.action, a.object])).toEqual([['webmail.delete', `webmail:${BOB}`]]);
  });
});
