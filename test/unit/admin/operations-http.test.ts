/**
 * The queue, PDF password and webmail routes through the admin app (Fastify's inject, signed-in
 * sessions): hostile ids and addresses stopped by the route schemas before any handler runs,
 * ALL only with its confirmation, the audit trail naming the account, its address and the API,
 * and a password only in the answers that are to carry it — never cacheable.
 */
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newQueueId } from '../../../src/core/index.js';
import { adminHarness, type AdminHarness } from '../../helpers/admin.js';
import { makeAccount } from '../../helpers/webmail-store.js';

const CHOSEN = 'correct horse battery';
const PAIR = { from: 'alice@example.com', to: 'bob@partner.example' };

describe('admin API over HTTP: queue, PDF passwords, webmail', () => {
  let h: AdminHarness;
  let entry: string;

  beforeAll(async () => {
    h = await adminHarness({ prefix: 'postern-admin-ops-' });
    entry = await h.spool.inject(newQueueId(), {
      envelope: { sender: 'alice@example.com', recipients: [{ address: 'far@example.net' }], client: { address: '127.0.0.1', port: 0, helo: 'x', hostname: 'localhost', protocol: 'ESMTP', trusted: true }, receivedAt: new Date().toISOString() },
      body: Buffer.from('Subject: x\r\n\r\nSECRET-BODY\r\n'),
    });
    await h.spool.move('outgoing', 'deferred', entry);
  }, 60_000);
  afterAll(async () => h?.close());

  it('refuses ids that are not queue ids before any handler runs, and ALL without { "all": true }', async () => {
    const ops = await h.as('network_operator');
    for (const bad of ['..%2F..%2Fetc%2Fpasswd', 'ALL.0', `${entry.toLowerCase()}`, '%00', 'x'.repeat(300)]) {
      expect((await h.call(ops, 'GET', `/queue/${bad}`)).statusCode, bad).toBe(400);
      expect((await h.call(ops, 'POST', `/queue/${bad}/delete`, {})).statusCode, bad).toBe(400);
    }
    const unconfirmed = await h.call(ops, 'POST', '/queue/ALL/delete', {});
    expect(unconfirmed.statusCode).toBe(400);
    expect(unconfirmed.json()).toMatchObject({ error: expect.stringContaining('{ "all": true }') });
    expect((await h.call(ops, 'GET', '/queue', undefined, { limit: 'many' })).statusCode).toBe(400);
    expect((await h.call(ops, 'GET', '/queue', undefined, { queue: '../tmp' })).statusCode).toBe(400);
    expect(await readdir(h.spool.dir('deferred'))).toEqual([entry]);
  });

  it('lists and holds as a network operator, audited with the account, its address and the API; the auditor only reads', async () => {
    const ops = await h.as('network_operator');
    const list = await h.call(ops, 'GET', '/queue', undefined, { queue: 'deferred', limit: '5' });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toMatchObject({ total: 1, entries: [{ name: entry, sender: 'alice@example.com', recipients: [{ address: 'far@example.net', state: 'pending' }] }] });
    expect(list.body).not.toContain('SECRET-BODY');

    const auditor = await h.as('auditor');
    expect((await h.call(auditor, 'GET', `/queue/${entry.split('.')[0]}`)).statusCode).toBe(200);
    expect((await h.call(auditor, 'POST', `/queue/${entry.split('.')[0]}/hold`, {})).statusCode).toBe(403);
    expect(await readdir(h.spool.dir('deferred'))).toEqual([entry]);

    const held = await h.call(ops, 'POST', `/queue/${entry}/hold`, {});
    expect(held.statusCode, held.body).toBe(200);
    expect(await readdir(h.spool.dir('hold'))).toEqual([entry]);
    const [record] = await h.store.auditLog({ object: `queue:${entry}` });
    expect(record).toMatchObject({ actor: 'op-network_operator', action: 'queue.hold', via: 'api', client: '127.0.0.1' });
  });

  it('PDF: set answers without the password; show is a POST (no GET), answers it once, never cacheable', async () => {
    const users = await h.as('user_operator');
    const set = await h.call(users, 'POST', '/pdf/passwords/set', { ...PAIR, password: CHOSEN });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.body).not.toContain(CHOSEN);
    expect((await h.call(users, 'GET', '/pdf/passwords/show', undefined, PAIR)).statusCode).toBe(404);
    const show = await h.call(users, 'POST', '/pdf/passwords/show', PAIR);
    expect(show.statusCode).toBe(200);
    expect(show.json()).toMatchObject({ password: CHOSEN });
    expect(show.headers['cache-control']).toBe('no-store');
    // The auditor sees the pairs, not the password.
    const auditor = await h.as('auditor');
    expect((await h.call(auditor, 'GET', '/pdf/passwords')).json()).toMatchObject({ passwords: [{ sender: 'alice@example.com', recipient: 'bob@partner.example' }] });
    expect((await h.call(auditor, 'POST', '/pdf/passwords/show', PAIR)).statusCode).toBe(403);
    const trail = await h.store.auditLog({ object: 'pdf:alice@example.com→bob@partner.example' });
    expect(trail.map((r) => r.action)).toEqual(expect.arrayContaining(['pdf.set', 'pdf.show', 'pdf-password-set', 'pdf-password-show']));
    expect(JSON.stringify(trail)).not.toContain(CHOSEN);
  });

  it('webmail: the address in the URL is percent-encoded and canonicalised; a reset answers the new password once', async () => {
    await makeAccount(h.portal, 'bob@partner.example', 'first password 1');
    const users = await h.as('user_operator');
    const reset = await h.call(users, 'POST', `/webmail/accounts/${encodeURIComponent('Bob@Partner.Example')}/reset`, {});
    expect(reset.statusCode, reset.body).toBe(200);
    expect(reset.json()).toMatchObject({ address: 'bob@partner.example', generation: 2, password: expect.any(String) });
    expect((await h.call(users, 'POST', `/webmail/accounts/${encodeURIComponent('bob@partner.example/../x')}/reset`, {})).statusCode).toBe(400);
    expect((await h.call(users, 'POST', `/webmail/accounts/${encodeURIComponent('nobody@partner.example')}/delete`)).statusCode).toBe(404);
    const [record] = await h.store.auditLog({ object: 'webmail:bob@partner.example' });
    expect(record).toMatchObject({ actor: 'op-user_operator', action: 'webmail.reset', via: 'api' });
    expect(JSON.stringify(record)).not.toContain((reset.json() as { password: string }).password);
  });
});
