/**
 * The PDF password handlers of the admin API against a real keystore (with the KEK), portal.db
 * and spool: set, reset, show, delete and list, the sender's notice queued in the spool as the
 * CLI queues it, addresses in any spelling, and no password in any answer but show's, nor in any
 * audit record.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pdfRoutes } from '../../../src/admin/api/pdf.js';
import { ApiError } from '../../../src/admin/routes.js';
import { handlerHarness, json, type HandlerHarness } from '../../helpers/admin-handlers.js';

const PAIR = { from: 'alice@example.com', to: 'bob@partner.example' };
const OBJECT = 'pdf:alice@example.com→bob@partner.example';
const CHOSEN = 'correct horse battery';

describe('admin API: PDF passwords', () => {
  let h: HandlerHarness;
  const post = (url: string, body: unknown) => h.call(pdfRoutes, 'POST', url, { body });
  const list = async (query: Record<string, unknown> = {}) => json<{ passwords: Record<string, unknown>[] }>(await h.call(pdfRoutes, 'GET', '/pdf/passwords', { query })).passwords;
  /** The notices queued in outgoing/: to whom, and their text. */
  const notices = async () =>
    Promise.all(
      (await h.ctx.spool.inspect(['outgoing'])).map(async (e) => ({ to: e.meta!.envelope.recipients.map((r) => r.address), sender: e.meta!.envelope.sender, text: (await h.ctx.spool.read('outgoing', e.name)).body.toString('utf8') })),
    );
  const shown = async (body: unknown = PAIR) => json<{ password: string }>(await post('/pdf/passwords/show', body)).password;

  beforeEach(async () => {
    h = await handlerHarness();
  });
  afterEach(() => h.close());

  it('sets a chosen password and tells the sender by a notice in the spool; show reveals it, audited', async () => {
    const set = json<{ pair: Record<string, unknown>; told: { how: string; queueId: string } }>(await post('/pdf/passwords/set', { ...PAIR, password: CHOSEN }));
    expect(set.pair).toMatchObject({ sender: 'alice@example.com', recipient: 'bob@partner.example', source: 'set', notified: expect.any(String) });
    expect(set.told).toEqual({ how: 'notice', queueId: expect.stringMatching(/^[0-9B-Z]{20}$/) });
    expect(JSON.stringify(set)).not.toContain(CHOSEN);
    const [notice, ...more] = await notices();
    expect(more).toEqual([]);
    expect(notice).toMatchObject({ to: ['alice@example.com'], sender: '' });
    expect(notice!.text).toContain(`    ${CHOSEN}\r\n`);
    expect(notice!.text).toContain(`Queue ID: ${set.told.queueId}`);

    expect(await shown()).toBe(CHOSEN);
    expect(await h.ctx.store.checkPdfPassword({ sender: PAIR.from, recipient: PAIR.to }, 'pair', CHOSEN)).toBe(true);
    expect(h.audits.map((a) => [a.action, a.object])).toEqual([
      ['pdf.set', OBJECT],
      ['pdf.show', OBJECT],
    ]);
    // The keystore's own records name the admin; no record anywhere holds the password.
    const stored = await h.ctx.store.auditLog(OBJECT);
    expect(stored.map((r) => [r.actor, r.action])).toEqual([
      ['ops', 'pdf-password-set'],
      ['ops', 'pdf-password-notified'],
      ['ops', 'pdf-password-show'],
    ]);
    expect(JSON.stringify([h.audits, stored])).not.toContain(CHOSEN);
  });

  it('resets a pair’s password (404 when it has none): a new one, told to the sender, never in the answer', async () => {
    await expect(post('/pdf/passwords/reset', PAIR)).rejects.toMatchObject({ status: 404 });
    await post('/pdf/passwords/set', { ...PAIR, password: CHOSEN });
    const r = json<{ pair: { source: string }; told: { how: string } }>(await post('/pdf/passwords/reset', PAIR));
    expect(r).toMatchObject({ pair: { source: 'generated' }, told: { how: 'notice' } });
    const now = await shown();
    expect(now).not.toBe(CHOSEN);
    expect(JSON.stringify(r)).not.toContain(now);
    const texts = (await notices()).map((n) => n.text);
    expect(texts).toHaveLength(2);
    expect(texts.filter((t) => t.includes(`    ${now}\r\n`))).toHaveLength(1);
    expect(JSON.stringify(h.audits)).not.toContain(now);
  });

  it('does not mail a sender outside internal_domains, and tells nobody yet of a recipient’s one password', async () => {
    const outside = json<{ told: { how: string }; message: string }>(await post('/pdf/passwords/set', { from: 'carol@elsewhere.example', to: PAIR.to, password: CHOSEN }));
    expect(outside.told).toEqual({ how: 'not-internal' });
    expect(outside.message).toMatch(/not in internal_domains/);
    const shared = json<{ pair: { sender: string }; told: { how: string } }>(await post('/pdf/passwords/set', { to: PAIR.to, scope: 'recipient', password: CHOSEN }));
    expect(shared).toMatchObject({ pair: { sender: '*' }, told: { how: 'next-sender' } });
    expect(await notices()).toEqual([]);
    expect(h.audits.at(-1)).toMatchObject({ action: 'pdf.set', object: 'pdf:*→bob@partner.example' });
    expect((await list({ scope: 'recipient' })).map((p) => p.sender)).toEqual(['*']);
  });

  it('finds a pair by any spelling of its addresses; lists pairs without their passwords', async () => {
    await post('/pdf/passwords/set', { ...PAIR, password: CHOSEN });
    expect(await shown({ from: 'Alice@ＥＸＡＭＰＬＥ.com', to: 'BOB@partner.example.' })).toBe(CHOSEN);
    const rows = await list({ to: 'bob@PARTNER.example' });
    expect(rows).toEqual([{ sender: 'alice@example.com', recipient: 'bob@partner.example', created: expect.any(String), notified: expect.any(String), source: 'set' }]);
    expect(await list({ from: 'dave@example.com' })).toEqual([]);
  });

  it('refuses what is not an address, a weak or unreadable password, and scopes that do not fit — changing nothing', async () => {
    const refusal = async (url: string, body: unknown) => {
      const err = await post(url, body).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(400);
      return (err as ApiError).message;
    };
    expect(await refusal('/pdf/passwords/set', { ...PAIR, from: 'alice@exa mple.com', password: CHOSEN })).toBe('from: not a mail address');
    expect(await refusal('/pdf/passwords/set', { ...PAIR, from: 'alice\u200b@example.com', password: CHOSEN })).toBe('from: not a mail address');
    expect(await refusal('/pdf/passwords/set', { ...PAIR, password: 'short' })).toMatch(/at least 10 characters/);
    const control = await refusal('/pdf/passwords/set', { ...PAIR, password: 'ten chars\u0007 and more' });
    expect(control).not.toContain('ten chars');
    expect(await refusal('/pdf/passwords/set', { to: PAIR.to, password: CHOSEN })).toMatch(/from \(the sender\) is needed/);
    expect(await refusal('/pdf/passwords/show', { ...PAIR, scope: 'recipient' })).toMatch(/leave out from/);
    expect(await list()).toEqual([]);
    expect(await notices()).toEqual([]);
    expect(h.audits).toEqual([]);
  });

  it('deletes a pair’s password once; then 404', async () => {
    await post('/pdf/passwords/set', { ...PAIR, password: CHOSEN });
    expect(json(await post('/pdf/passwords/delete', PAIR))).toEqual({ deleted: { sender: 'alice@example.com', recipient: 'bob@partner.example' } });
    await expect(post('/pdf/passwords/delete', PAIR)).rejects.toMatchObject({ status: 404 });
    await expect(post('/pdf/passwords/show', PAIR)).rejects.toMatchObject({ status: 404 });
    expect(h.audits.map((a) => a.action)).toEqual(['pdf.set', 'pdf.delete']);
  });
});
