/**
 * The portal store written by several processes at once, as in the running gateway: the portal
 * counting failed log-ins and auditing, workers storing webmail and pruning. Here each of three
 * processes stores the same deliveries, as retries would. Real processes on the built module
 * (dist/), opening the store from a config as the roles do, on both backends: one SQLite file, or
 * one PostgreSQL database (three processes standing for three nodes). Every write lands exactly
 * once, none is refused as busy, the store is sound after.
 *
 * Reads dist/: run `npm run build` first, as for every integration test.
 */
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PortalDb } from '../../src/keystore/portal-db.js';
import { newAccountKeys } from '../../src/keystore/webmail-crypto.js';
import { PORTAL_BACKENDS, usePortalBackend } from '../helpers/portal-backends.js';

const exec = promisify(execFile);
const PORTAL_STORE = resolve(import.meta.dirname, '../../dist/keystore/portal-store.js');
const ROUNDS = 150;

/** One writer process: ROUNDS rounds of a failure count, an audit record and a message (delivery keys shared between writers). */
const WRITER = `
  const { openPortalStore } = await import(${JSON.stringify(PORTAL_STORE)});
  const [config, name, accountId] = process.argv.slice(1);
  const db = await openPortalStore(JSON.parse(config), { role: name === 'portal' ? 'portal' : 'worker', create: false });
  let created = 0;
  for (let i = 0; i < ${ROUNDS}; i++) {
    await db.recordLoginFailure('client', '192.0.2.99');
    await db.audit({ action: 'test-write', actor: name, detail: { i } });
    const r = await db.putMessage({ accountId: Number(accountId), generation: 1, deliveryKey: 'Q' + i + ':x@y.example', received: new Date(), size: 1, summary: Buffer.alloc(40, 1), body: Buffer.alloc(4000, 2) });
    if (r.created) created++;
    if (i % 50 === 0) await db.pruneReplyLinks();
  }
  await db.close();
  process.stdout.write(JSON.stringify({ created }));`;

describe.each(PORTAL_BACKENDS)('the portal store with writers in several processes (%s)', (name) => {
  const backend = usePortalBackend(name);
  let db: PortalDb;
  beforeEach(async () => {
    db = await backend.open();
  });
  afterEach(async () => {
    await db.close();
  });

  it('three processes write at once: every count and record once, each delivery stored once, no busy error', async () => {
    const config = backend.config();
    const acc = await db.createAccount({ address: 'x@y.example', addressKey: 'x@y.example', ...(await newAccountKeys('writers-password-1', { N: 1024, r: 8, p: 1 })) });
    const runs = await Promise.all(
      ['portal', 'worker-1', 'worker-2'].map((who) =>
        exec(process.execPath, ['--input-type=module', '-e', WRITER, JSON.stringify(config), who, String(acc.id)], { cwd: config.data_dir, timeout: 120_000 }),
      ),
    );
    const created = runs.map((r) => (JSON.parse(r.stdout) as { created: number }).created);
    // Two workers retried the same deliveries: each stored once, whoever came first.
    expect(created.reduce((a, b) => a + b, 0)).toBe(ROUNDS);
    expect((await db.loginFailures('client', '192.0.2.99')).count).toBe(3 * ROUNDS);
    const audit = await db.auditRecords({ limit: 10_000 });
    expect(audit).toHaveLength(3 * ROUNDS);
    for (const who of ['portal', 'worker-1', 'worker-2']) expect(audit.filter((a) => a.actor === who)).toHaveLength(ROUNDS);
    expect(await db.listMessages(acc.id)).toHaveLength(ROUNDS);
    if (name === 'sqlite') {
      const raw = new Database(join(config.data_dir, 'portal.db'), { readonly: true });
      try {
        expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
      } finally {
        raw.close();
      }
    }
  });
});
