/**
 * portal.db written by several processes at once, as in the running gateway: the portal counting
 * failed log-ins and auditing, workers storing webmail and pruning. Here each of three processes
 * stores the same deliveries, as retries would. Real processes on the built module (dist/), one
 * SQLite file: every write lands exactly once, none is refused as busy, the file is sound after.
 *
 * Reads dist/: run `npm run build` first, as for every integration test.
 */
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openPortalDb, portalDbFile, type PortalDb } from '../../src/keystore/portal-db.js';
import { newAccountKeys } from '../../src/keystore/webmail-crypto.js';
import { tempDir } from '../helpers/config.js';

const exec = promisify(execFile);
const PORTAL_DB = resolve(import.meta.dirname, '../../dist/keystore/portal-db.js');
const ROUNDS = 150;

/** One writer process: ROUNDS rounds of a failure count, an audit record and a message (delivery keys shared between writers). */
const WRITER = `
  const { openPortalDb } = await import(${JSON.stringify(PORTAL_DB)});
  const [file, name, accountId] = process.argv.slice(1);
  const db = await openPortalDb(file, { create: false });
  let created = 0;
  for (let i = 0; i < ${ROUNDS}; i++) {
    await db.recordLoginFailure('client', '192.0.2.99');
    await db.audit({ action: 'test-write', actor: name, detail: { i } });
    const r = await db.putMessage({ accountId: Number(accountId), generation: 1, deliveryKey: 'Q' + i + ':x@y.example', received: new Date(), size: 1, summary: Buffer.alloc(40, 1), body: Buffer.alloc(4000, 2) });
    if (r.created) created++;
    if (i % 50 === 0) await db.pruneReplyLinks();
  }
  db.close();
  process.stdout.write(JSON.stringify({ created }));`;

describe('portal.db with writers in several processes', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let db: PortalDb;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-portaldb-writers-'));
    db = await openPortalDb(portalDbFile({ data_dir: dir }));
  });
  afterEach(async () => {
    db.close();
    await cleanup();
  });

  it('three processes write at once: every count and record once, each delivery stored once, no busy error', async () => {
    const file = portalDbFile({ data_dir: dir });
    const acc = await db.createAccount({ address: 'x@y.example', addressKey: 'x@y.example', ...(await newAccountKeys('writers-password-1', { N: 1024, r: 8, p: 1 })) });
    const runs = await Promise.all(
      ['portal', 'worker-1', 'worker-2'].map((name) => exec(process.execPath, ['--input-type=module', '-e', WRITER, file, name, String(acc.id)], { cwd: dir, timeout: 120_000 })),
    );
    const created = runs.map((r) => (JSON.parse(r.stdout) as { created: number }).created);
    // Two workers retried the same deliveries: each stored once, whoever came first.
    expect(created.reduce((a, b) => a + b, 0)).toBe(ROUNDS);
    expect((await db.loginFailures('client', '192.0.2.99')).count).toBe(3 * ROUNDS);
    const audit = await db.auditRecords({ limit: 10_000 });
    expect(audit).toHaveLength(3 * ROUNDS);
    for (const name of ['portal', 'worker-1', 'worker-2']) expect(audit.filter((a) => a.actor === name)).toHaveLength(ROUNDS);
    expect(await db.listMessages(acc.id)).toHaveLength(ROUNDS);
    const raw = new Database(join(dir, 'portal.db'), { readonly: true });
    try {
      expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      raw.close();
    }
  });
});
