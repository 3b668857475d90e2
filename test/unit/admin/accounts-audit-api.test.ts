/**
 * The accounts and audit groups of the admin API through the admin app (Fastify inject, signed-in
 * sessions): the account list without hashes or TOTP secrets; the audit trail filtered, ordered and
 * paged, refused times answered 400 by the schema or the parser; the JSON-lines export with its
 * download headers, the same lines `postern audit export` prints, and itself audited with the
 * caller's address and channel.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { adminHarness, type AdminHarness } from '../../helpers/admin.js';

describe('admin API: accounts and the audit trail', () => {
  let h: AdminHarness;

  beforeAll(async () => {
    h = await adminHarness({ prefix: 'postern-admin-audit-', roles: ['administrator', 'auditor', 'user_operator'] });
    vi.useFakeTimers({ toFake: ['Date'] });
    const write = async (at: string, e: Parameters<AdminHarness['store']['audit']>[0]) => {
      vi.setSystemTime(new Date(at));
      await h.store.audit(e);
    };
    await write('2026-11-01T10:00:00Z', { actor: 'cli:root', action: 'import', object: 'cert:01' });
    await write('2026-11-02T10:00:00Z', { actor: 'alice', via: 'console', client: '192.0.2.7', action: 'trust', object: 'cert:02', before: 'untrusted', after: 'trusted' });
    await write('2026-11-03T10:00:00Z', { actor: 'worker', action: 'use-sign', object: 'key:03' });
    await write('2026-11-04T10:00:00Z', { actor: 'alice', via: 'api', client: '192.0.2.7', action: 'import', object: 'pgp:04', detail: 'evil\u001b[2J\u2028' });
    vi.useRealTimers();
  });
  afterAll(() => h.close());

  type Rec = { id: number; at: string; actor: string; via: string | null; client: string | null; action: string; object: string; detail: string | null; before: string | null; after: string | null };
  const page = async (query: Record<string, string>, role: 'auditor' | 'administrator' = 'auditor') => {
    const res = await h.call(await h.as(role), 'GET', '/audit', undefined, query);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { records: Rec[]; next: number | null };
  };

  it('lists the accounts with their roles and state, never a hash or a TOTP secret', async () => {
    // Signed in before TOTP is turned on: the refusal below is then the permission guard's.
    const userOperator = await h.as('user_operator');
    const { secret } = await h.store.enableAdminTotp('op-user_operator', 'test');
    const res = await h.call(await h.as('auditor'), 'GET', '/accounts');
    expect(res.statusCode).toBe(200);
    const { accounts } = res.json() as { accounts: Record<string, unknown>[] };
    expect(accounts.map((a) => [a.name, a.roles, a.disabled, a.totp])).toEqual([
      ['op-administrator', ['administrator'], false, false],
      ['op-auditor', ['auditor'], false, false],
      ['op-user_operator', ['user_operator'], false, true],
    ]);
    expect(accounts[1]!.lastLogin).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(res.body).not.toContain('scrypt');
    expect(res.body).not.toContain(secret);
    expect((await h.call(userOperator, 'GET', '/accounts')).statusCode).toBe(403);
  });

  it('filters the trail by time, actor, action and object prefix, newest first unless asked', async () => {
    const objects = async (q: Record<string, string>) => (await page({ until: '2026-12-01', ...q })).records.map((r) => r.object);
    expect(await objects({})).toEqual(['pgp:04', 'key:03', 'cert:02', 'cert:01']);
    expect(await objects({ order: 'oldest' })).toEqual(['cert:01', 'cert:02', 'key:03', 'pgp:04']);
    expect(await objects({ since: '2026-11-02', until: '2026-11-04' })).toEqual(['key:03', 'cert:02']);
    expect(await objects({ actor: 'alice' })).toEqual(['pgp:04', 'cert:02']);
    expect(await objects({ action: 'import' })).toEqual(['pgp:04', 'cert:01']);
    expect(await objects({ object: 'cert:' })).toEqual(['cert:02', 'cert:01']);
    expect(await objects({ object: 'cert%' })).toEqual([]);
    const [trust] = (await page({ action: 'trust' })).records;
    expect(trust).toEqual({
      id: expect.any(Number), at: '2026-11-02T10:00:00.000Z', actor: 'alice', via: 'console', client: '192.0.2.7', action: 'trust', object: 'cert:02',
      detail: null, before: 'untrusted', after: 'trusted',
    });
  });

  it('pages with the cursor it answers, in either order', async () => {
    for (const order of ['newest', 'oldest']) {
      const seen: string[] = [];
      let cursor: number | null | undefined;
      do {
        const p = await page({ order, limit: '3', until: '2026-12-01', ...(cursor != null ? { cursor: String(cursor) } : {}) });
        seen.push(...p.records.map((r) => r.object));
        cursor = p.next;
      } while (cursor !== null);
      expect(seen).toEqual(order === 'newest' ? ['pgp:04', 'key:03', 'cert:02', 'cert:01'] : ['cert:01', 'cert:02', 'key:03', 'pgp:04']);
    }
  });

  it('answers 400 for a time that is none or a limit out of bounds', async () => {
    const s = await h.as('auditor');
    const bad = await h.call(s, 'GET', '/audit', undefined, { since: 'last tuesday' });
    expect([bad.statusCode, (bad.json() as { error: string }).error]).toEqual([400, 'since "last tuesday" is not an ISO 8601 time (e.g. 2026-12-03 or 2026-12-03T12:00:00Z)']);
    expect((await h.call(s, 'GET', '/audit', undefined, { limit: '100000' })).statusCode).toBe(400);
    expect((await h.call(s, 'GET', '/audit', undefined, { limit: '0' })).statusCode).toBe(400);
    expect((await h.call(s, 'GET', '/audit', undefined, { actor: 'x'.repeat(1001) })).statusCode).toBe(400);
    expect((await h.call(s, 'GET', '/audit/export', undefined, { until: '2026-13-45' })).statusCode).toBe(400);
  });

  it('exports JSON lines as a download, the lines postern audit export prints, and audits the export', async () => {
    const res = await h.call(await h.as('auditor'), 'GET', '/audit/export', undefined, { until: '2026-12-01', actor: 'alice' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="postern-audit-\d{4}-\d\d-\d\d\.jsonl"$/);
    const lines = res.body.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toEqual({ at: '2026-11-02T10:00:00.000Z', actor: 'alice', via: 'console', client: '192.0.2.7', action: 'trust', object: 'cert:02', detail: null, before: 'untrusted', after: 'trusted' });
    // Control and line-separator characters stay escaped inside their line.
    expect(lines[1]).toContain('"detail":"evil\\u001b[2J');
    expect(JSON.parse(lines[1]!).detail).toBe('evil\u001b[2J\u2028');

    const exported = (await page({ action: 'audit-export' })).records;
    expect(exported).toEqual([expect.objectContaining({ actor: 'op-auditor', via: 'api', client: '127.0.0.1', object: 'audit', detail: '2 records: until "2026-12-01", actor "alice"' })]);
  });
});
