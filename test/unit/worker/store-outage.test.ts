/**
 * The keystore unreachable (PostgreSQL down, failing over): mail that needs it is deferred as
 * deferred_store — never held, bounced, dropped or sent in clear or unsigned — and goes out
 * encrypted once the store answers; mail that needs nothing of the store flows on meanwhile.
 *
 * The error is the real one: the PostgreSQL driver's SqlError('unavailable') from a connection
 * refused on a closed port (with a password that must appear in no log line). It is thrown by a
 * real SQLite keystore's methods while the "outage" lasts, everywhere or in one method only, so
 * each place on the mail path that asks the store is reached. Real spool on disk.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { importCertificates, isStoreUnavailable, openKeyStoreWithPortal, SqlError, type KeyStore, type PortalDb } from '../../../src/keystore/index.js';
import { PostgresSql } from '../../../src/keystore/sql/postgres.js';
import { metricsSnapshot } from '../../../src/log/index.js';
import { compilePolicy, emptyDirectory } from '../../../src/policy/index.js';
import { Spool } from '../../../src/spool/index.js';
import { CryptoKeys, PgpKeys, startWorker, type PolicyContext, type Worker } from '../../../src/worker/index.js';
import { tempDir, testConfig } from '../../helpers/config.js';
import { opensslCa, opensslMailbox } from '../../helpers/pki-openssl.js';
import { waitUntil } from '../../helpers/send.js';
import { captureLogger } from '../../helpers/smtp-harness.js';

const PAT = 'pat@example.com';
const GINA = 'gina@partner.example';
const SECRET = 'pg-outage-secret-Zq8';

/** The driver's own error for a server that is not there: a port nothing listens on. */
async function realUnavailableError(): Promise<SqlError> {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const sql = new PostgresSql({ url: `postgres://postern@127.0.0.1:${port}/postern`, password: SECRET, pool: 1, schema: 'keystore', connectTimeoutMs: 2000 });
  try {
    await sql.get('SELECT 1');
  } catch (err) {
    return err as SqlError;
  } finally {
    await sql.close();
  }
  throw new Error('a query on a closed port succeeded');
}

/** The store's methods throw `error` while `down` names them ('*': all). */
function failingStore(store: KeyStore, error: Error, down: { methods: Set<string> }): KeyStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (down.methods.has('*') || down.methods.has(String(prop))) return Promise.reject(error);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

async function deferredStoreCount(): Promise<number> {
  const m = (await metricsSnapshot()).find((x) => x.name === 'postern_messages_deferred_total');
  return Number(m?.values.find((v) => v.labels.reason === 'store')?.value ?? 0);
}

describe('worker: keystore unavailable', () => {
  let error: SqlError;
  let pki: { dir: string; cleanup: () => Promise<void> };
  let ginaCert: Buffer;
  let patCert: Buffer;
  let patKey: Buffer;
  beforeAll(async () => {
    error = await realUnavailableError();
    pki = await tempDir('postern-outage-pki-');
    const ca = await opensslCa(pki.dir, 'Partner CA');
    const gina = await opensslMailbox(pki.dir, ca, GINA);
    const pat = await opensslMailbox(pki.dir, ca, PAT);
    ginaCert = readFileSync(gina.cert);
    patCert = readFileSync(pat.cert);
    patKey = readFileSync(pat.key);
  });
  afterAll(async () => pki.cleanup());

  let dir: string;
  let cleanup: () => Promise<void>;
  let store: KeyStore;
  let portal: PortalDb;
  let spool: Spool;
  let worker: Worker | null;
  let logs: Record<string, unknown>[];
  const down = { methods: new Set<string>() };
  let config: Config;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-outage-'));
    config = testConfig(dir);
    ({ store, portal } = await openKeyStoreWithPortal(config));
    await importCertificates(store, [{ data: ginaCert, name: 'gina.pem' }, { data: patCert, name: 'pat.pem' }, { data: patKey, name: 'pat.key' }], { trust: false, actor: 'test' });
    spool = await Spool.open(dir);
    logs = [];
    down.methods = new Set();
    worker = null;
  });
  afterEach(async () => {
    await worker?.close(1000);
    await store.close();
    portal.close();
    await cleanup();
  });

  async function start(): Promise<string[]> {
    const compiled = compilePolicy(readFileSync('config/policy.yaml', 'utf8'), 'config/policy.yaml');
    if (!compiled.ok) throw new Error('the default policy does not compile');
    const log = captureLogger(logs);
    const s = failingStore(store, error, down);
    const ctx: PolicyContext = { config, policy: compiled.policy, store: s, portal, directory: emptyDirectory, keys: new CryptoKeys(s, () => config, log), pgpKeys: new PgpKeys(s, log) };
    const delivered: string[] = [];
    worker = await startWorker({ config, spool, log, policy: () => ctx, failureRetryMs: 50, storeRetryMs: 100, onOutgoing: (names) => delivered.push(...names) });
    return delivered;
  }

  async function put(from: string, to: string, text: string): Promise<string> {
    const w = await spool.createIncoming({ sender: from, recipients: [{ address: to }], client: { address: '127.0.0.1', port: 1, helo: 'x', hostname: 'x', protocol: 'ESMTP', trusted: true }, receivedAt: new Date().toISOString() });
    w.write(Buffer.from(`From: ${from}\r\nTo: ${to}\r\nSubject: quarterly figures\r\nMessage-ID: <${Math.random()}@example.com>\r\n\r\n${text}\r\n`));
    const id = await w.commit();
    worker?.offer([id]);
    return id;
  }

  const outgoing = async () => Promise.all((await spool.list('outgoing')).map(async (n) => (await spool.read('outgoing', n)).body.toString('latin1')));
  const storeEvents = () => logs.filter((l) => l.event === 'worker.store_unavailable');

  it('knows the driver error for what it is', () => {
    expect(error).toBeInstanceOf(SqlError);
    expect(error.kind).toBe('unavailable');
    expect(isStoreUnavailable(error)).toBe(true);
    expect(error.message).not.toContain(SECRET);
  });

  it('defers outbound mail while the store is down — retried past the failure limit, never held or sent — then delivers it encrypted', async () => {
    down.methods.add('*');
    const before = await deferredStoreCount();
    await start();
    await put(PAT, GINA, 'the secret figures');
    // More attempts than MAX_FAILURES (3): a store outage is not the message's fault.
    await waitUntil(async () => storeEvents().length >= 5, 10_000, 'deferred several times');
    expect(await spool.list('hold')).toEqual([]);
    expect(await outgoing()).toEqual([]);
    expect(logs.filter((l) => /held|bounce|worker\.error|not_signed/.test(String(l.event)))).toEqual([]);
    expect((await deferredStoreCount()) - before).toBeGreaterThanOrEqual(5);
    for (const l of storeEvents()) {
      expect(l.level).toBe(40);
      expect(JSON.stringify(l)).not.toContain(SECRET);
      expect(String(l.reason)).toMatch(/ECONNREFUSED|connect/i);
    }
    down.methods.clear();
    await waitUntil(async () => (await outgoing()).length === 1, 10_000, 'delivered once the store answers');
    const [body] = await outgoing();
    expect(body).toMatch(/Content-Type: application\/(x-)?pkcs7-mime;[^\r\n]*smime-type=enveloped-data/i);
    expect(body).not.toContain('the secret figures');
    expect(await spool.list('incoming')).toEqual([]);
    expect(await spool.list('hold')).toEqual([]);
  });

  it('lets mail that needs nothing of the store through while it is down (plain inbound mail)', async () => {
    down.methods.add('*');
    await start();
    await put(GINA, PAT, 'hello from outside');
    await waitUntil(async () => (await outgoing()).length === 1, 10_000, 'inbound plain mail delivered');
    expect((await outgoing())[0]).toContain('hello from outside');
    expect(storeEvents()).toEqual([]);
  });

  it.each([
    ['capabilitiesOf', 'the recipient certificate was found, its capabilities not (held_encryption before)'],
    ['privateKeyFor', 'the signing key could not be unsealed (sent unsigned before)'],
    ['chainCertificates', 'the signer\'s chain could not be read (sent unsigned before)'],
  ])('defers, not holds or sends, when only %s fails: %s', async (method) => {
    down.methods.add(method);
    await start();
    await put(PAT, GINA, 'the secret figures');
    await waitUntil(async () => storeEvents().length >= 2, 10_000, 'deferred');
    expect(await outgoing()).toEqual([]);
    expect(await spool.list('hold')).toEqual([]);
    down.methods.clear();
    await waitUntil(async () => (await outgoing()).length === 1, 10_000, 'delivered once the store answers');
    const [body] = await outgoing();
    expect(body).toMatch(/smime-type=enveloped-data/i);
    expect(body).not.toContain('the secret figures');
    expect(logs.filter((l) => l.event === 'worker.not_signed' || l.event === 'worker.held')).toEqual([]);
  });
});
