/**
 * The queue's admin API handlers against a real spool whose entries are written by the spool's
 * own API (accepted, queued for the relay, deferred with the relay's status records, held): what
 * the listing and show say, the filters, and what hold, release, delete and flush do to the files
 * — with an audit record for each change and none for a refusal.
 */
import { readdir } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { queueRoutes } from '../../../src/admin/api/queue.js';
import { ApiError } from '../../../src/admin/routes.js';
import { isQueueEntryName, newQueueId, QUEUE_ENTRY_NAME_PATTERN, type Envelope } from '../../../src/core/index.js';
import type { QueueRow } from '../../../src/relay/index.js';
import type { QueueName, StatusRecord } from '../../../src/spool/index.js';
import { handlerHarness, json, type HandlerHarness } from '../../helpers/admin-handlers.js';

const BODY = Buffer.from('Subject: quarterly\r\n\r\nSECRET-BODY-7f3a the figures\r\n');

function envelope(sender: string, recipients: string[]): Envelope {
  return {
    sender,
    recipients: recipients.map((address) => ({ address })),
    client: { address: '192.0.2.7', port: 40000, helo: 'client.example', hostname: '[192.0.2.7]', protocol: 'ESMTP', trusted: true },
    receivedAt: new Date(Date.now() - 3_600_000).toISOString(),
  };
}

describe('admin API: queue', () => {
  let h: HandlerHarness;
  const call = (method: 'GET' | 'POST', url: string, req: Parameters<HandlerHarness['call']>[3] = {}) => h.call(queueRoutes, method, url, req);
  const files = async (q: QueueName) => readdir(h.ctx.spool.dir(q));

  /** An outgoing entry written as the relay's DSNs are, moved to `q`, with `status` appended. */
  async function queued(q: QueueName, env: Envelope, status: StatusRecord[] = []): Promise<string> {
    const name = await h.ctx.spool.inject(newQueueId(), { envelope: env, body: BODY });
    if (status.length) {
      const entry = await h.ctx.spool.openEntry('outgoing', name);
      await entry.append(status);
      await entry.close();
    }
    if (q !== 'outgoing') await h.ctx.spool.move('outgoing', q, name);
    return name;
  }

  let incomingId: string;
  let deferred: string;
  let held: string;
  const refused = 'connect to 127.0.0.1[127.0.0.1]:2 said: 421 4.3.2 try later';

  beforeEach(async () => {
    h = await handlerHarness();
    const w = await h.ctx.spool.createIncoming(envelope('carol@example.com', ['dave@example.com']));
    w.write(BODY);
    incomingId = await w.commit();
    const now = new Date().toISOString();
    deferred = await queued('deferred', envelope('alice@example.com', ['far@xn--bcher-kva.example', 'near@example.com']), [
      { t: 'rcpt', at: now, rcpt: 'near@example.com', status: 'delivered', reply: '250 2.0.0 ok' },
      { t: 'rcpt', at: now, rcpt: 'far@xn--bcher-kva.example', status: 'deferred', reply: refused, dsn: '4.3.2', remote: 'mx.bücher.example' },
      { t: 'attempt', at: now, n: 1, next: new Date(Date.now() + 3_600_000).toISOString() },
    ]);
    held = await queued('hold', envelope('Bob@example.com', ['eve@partner.example']), [{ t: 'hold', at: now, reason: 'held with "postern queue hold"' }]);
  });
  afterEach(() => h.close());

  it('lists every entry with its queue, arrival, sender and each recipient’s state — never the body', async () => {
    const r = json<{ entries: QueueRow[]; total: number; truncated: boolean }>(await call('GET', '/queue'));
    expect(r.total).toBe(3);
    expect(r.truncated).toBe(false);
    const byName = new Map(r.entries.map((e) => [e.name, e]));
    expect(byName.get(incomingId)).toMatchObject({ queue: 'incoming', sender: 'carol@example.com', recipients: [{ address: 'dave@example.com', state: 'pending' }] });
    expect(byName.get(deferred)).toMatchObject({
      id: deferred.split('.')[0],
      queue: 'deferred',
      sender: 'alice@example.com',
      attempts: 1,
      next_attempt: expect.any(String),
      last_error: refused,
      recipients: [
        { address: 'far@xn--bcher-kva.example', state: 'deferred', reply: refused },
        { address: 'near@example.com', state: 'delivered', reply: '250 2.0.0 ok' },
      ],
    });
    expect(byName.get(deferred)!.age_s).toBeGreaterThanOrEqual(3599);
    expect(Date.parse(byName.get(deferred)!.arrival)).toBeLessThan(Date.now() - 3_500_000);
    expect(byName.get(held)).toMatchObject({ queue: 'hold', last_error: 'held with "postern queue hold"' });
    expect(JSON.stringify(r)).not.toContain('SECRET-BODY');
  });

  it('filters by queue, by part of the sender or a recipient in any spelling, and cuts at the limit', async () => {
    const names = async (query: Record<string, unknown>) => json<{ entries: QueueRow[] }>(await call('GET', '/queue', { query })).entries.map((e) => e.name);
    expect(await names({ queue: 'deferred' })).toEqual([deferred]);
    expect(await names({ sender: 'ALICE@' })).toEqual([deferred]);
    expect(await names({ sender: 'bob@example.com' })).toEqual([held]);
    // A U-label or full-width spelling finds the A-label the spool stores.
    expect(await names({ recipient: 'bücher.example' })).toEqual([deferred]);
    expect(await names({ recipient: 'far@ｂücher.example' })).toEqual([deferred]);
    expect(await names({ recipient: 'nobody.example' })).toEqual([]);
    const cut = json<{ entries: QueueRow[]; total: number; truncated: boolean }>(await call('GET', '/queue', { query: { limit: 2 } }));
    expect(cut.entries).toHaveLength(2);
    expect(cut).toMatchObject({ total: 3, truncated: true });
  });

  it('shows a message: envelope, attempts, each recipient’s last reply; 404 for an id with no entry', async () => {
    const id = deferred.split('.')[0]!;
    const r = json<{ id: string; entries: Record<string, unknown>[] }>(await call('GET', '/queue/:id', { params: { id } }));
    expect(r.id).toBe(id);
    expect(r.entries).toHaveLength(1);
    expect(r.entries[0]).toMatchObject({
      name: deferred,
      queue: 'deferred',
      attempts: 1,
      envelope: { sender: 'alice@example.com', client: { helo: 'client.example' } },
      recipients: [
        { address: 'far@xn--bcher-kva.example', state: 'deferred', reply: refused, dsn: '4.3.2', remote: 'mx.bücher.example', notices: [] },
        { address: 'near@example.com', state: 'delivered' },
      ],
    });
    expect(JSON.stringify(r)).not.toContain('SECRET-BODY');
    await expect(call('GET', '/queue/:id', { params: { id: newQueueId() } })).rejects.toMatchObject({ status: 404 });
  });

  it('hold, release and delete move or remove the files, audited per message', async () => {
    const id = deferred.split('.')[0]!;
    expect(json(await call('POST', '/queue/:id/hold', { params: { id }, body: {} }))).toEqual({ done: [`deferred/${deferred}`], marked: [], busy: [] });
    expect(await files('hold')).toContain(deferred);
    expect(json(await call('POST', '/queue/:id/release', { params: { id }, body: {} }))).toEqual({ done: [`hold/${deferred}`], marked: [], busy: [] });
    // Released: due at once, in outgoing/ where the relay's directory watch finds it.
    expect(await files('outgoing')).toContain(deferred);
    expect(json(await call('POST', '/queue/:id/delete', { params: { id: incomingId }, body: {} }))).toMatchObject({ done: [`incoming/${incomingId}`] });
    expect(await files('incoming')).toEqual([]);
    expect(h.audits).toEqual([
      { account: 'ops', action: 'queue.hold', object: `queue:${id}`, detail: `hold 1 entry: deferred/${deferred}` },
      { account: 'ops', action: 'queue.release', object: `queue:${id}`, detail: `release 1 entry: hold/${deferred}` },
      { account: 'ops', action: 'queue.delete', object: `queue:${incomingId}`, detail: `delete 1 entry: incoming/${incomingId}` },
    ]);
  });

  it('refuses ALL without { "all": true }, and an unknown id with 404, changing and auditing nothing', async () => {
    for (const verb of ['hold', 'release', 'delete']) {
      const err = await call('POST', `/queue/:id/${verb}`, { params: { id: 'ALL' }, body: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect(err).toMatchObject({ status: 400, message: expect.stringContaining('{ "all": true }') });
      await expect(call('POST', `/queue/:id/${verb}`, { params: { id: newQueueId() }, body: {} })).rejects.toMatchObject({ status: 404 });
      await expect(call('POST', `/queue/:id/${verb}`, { params: { id: incomingId }, body: { all: true } })).rejects.toMatchObject({ status: 400 });
    }
    expect((await files('incoming')).length + (await files('deferred')).length + (await files('hold')).length).toBe(3);
    expect(h.audits).toEqual([]);
    // Confirmed, ALL acts on every entry, in one record.
    const r = json<{ done: string[] }>(await call('POST', '/queue/:id/delete', { params: { id: 'ALL' }, body: { all: true } }));
    expect(r.done.sort()).toEqual([`deferred/${deferred}`, `hold/${held}`, `incoming/${incomingId}`].sort());
    expect(h.audits).toEqual([expect.objectContaining({ action: 'queue.delete', object: 'queue:ALL', detail: expect.stringMatching(/^delete 3 entries: /) })]);
  });

  it('answers 409 for a message a worker has claimed right now, and leaves it alone', async () => {
    const claimed = await h.ctx.spool.claim(incomingId);
    expect(claimed).not.toBeNull();
    const err = await call('POST', '/queue/:id/delete', { params: { id: incomingId }, body: {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 409, details: { busy: [`active/${incomingId}.${process.pid}`] } });
    expect(await files('active')).toEqual([`${incomingId}.${process.pid}`]);
    expect(h.audits).toEqual([]);
    // Its envelope is still shown, as claimed.
    expect(json<{ entries: { queue: string }[] }>(await call('GET', '/queue/:id', { params: { id: incomingId } })).entries).toEqual([expect.objectContaining({ queue: 'active' })]);
  });

  it('flushes one message, the messages to a domain, or all — and asks which', async () => {
    const other = await queued('deferred', envelope('alice@example.com', ['x@partner.example']));
    await expect(call('POST', '/queue/flush', { body: {} })).rejects.toMatchObject({ status: 400 });
    await expect(call('POST', '/queue/flush', { body: { domain: 'partner.example', all: true } })).rejects.toMatchObject({ status: 400 });
    await expect(call('POST', '/queue/flush', { body: { domain: 'not a domain' } })).rejects.toMatchObject({ status: 400 });

    // The domain in its U-label spelling reaches the entry whose recipient is stored as the A-label.
    expect(json(await call('POST', '/queue/flush', { body: { domain: 'BÜCHER.example' } }))).toMatchObject({ done: [`deferred/${deferred}`] });
    expect(await files('deferred')).toEqual([other]);
    expect(h.audits.at(-1)).toMatchObject({ action: 'queue.flush', object: 'queue:@xn--bcher-kva.example', detail: `flush 1 entry to xn--bcher-kva.example: deferred/${deferred}` });

    // Nothing to do is no error (as the CLI's flush), and no change to audit.
    const before = h.audits.length;
    expect(json(await call('POST', '/queue/flush', { body: { id: newQueueId() } }))).toEqual({ done: [], marked: [], busy: [] });
    expect(h.audits).toHaveLength(before);
    expect(json(await call('POST', '/queue/flush', { body: { all: true } }))).toMatchObject({ done: [`deferred/${other}`] });
    expect(await files('deferred')).toEqual([]);
    expect((await files('outgoing')).sort()).toEqual([deferred, other].sort());
  });

  it('takes ids in URLs only in the shape of a queue id or an entry name', () => {
    for (const good of [incomingId, deferred, `${incomingId}.0`, `${incomingId}.0123456789ab-2`]) expect(isQueueEntryName(good)).toBe(true);
    for (const bad of ['ALL', '../../etc/passwd', `${incomingId}/../x`, `${incomingId}.`, `${incomingId}.ABC`, `${incomingId}\n`, incomingId.toLowerCase(), `${incomingId}.0.1`]) {
      expect(isQueueEntryName(bad)).toBe(false);
    }
    // The same pattern is what Fastify checks the routes' :id against.
    const show = queueRoutes.find((r) => r.url === '/queue/:id')!;
    expect(JSON.stringify(show.schema?.params)).toContain(JSON.stringify(QUEUE_ENTRY_NAME_PATTERN));
  });
});
