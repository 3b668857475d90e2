/**
 * Several gateways on one keystore (issue 19): two store objects on one database stand for two
 * nodes (PostgreSQL) or two processes of one machine (SQLite). Each sees what the other wrote and
 * its change counters move. On PostgreSQL: the same certificate or key imported by both at once
 * is stored once, the other told it is a duplicate, no database error escaping (on SQLite two
 * processes take turns through the file lock, which two connections of one process cannot: the
 * second would busy-wait, blocking the event loop the first needs to commit); the other node is
 * told of a change; a server that stops makes the store fail with SqlError 'unavailable' (mail
 * waits), and the same store object works again once the server is back.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { isStoreUnavailable, openKeyStore, SqlError, type KeyStore } from '../../../src/keystore/index.js';
import { generatePgpKey } from '../../../src/openpgp/index.js';
import { parseImport, type CertInfo } from '../../../src/pki/index.js';
import { tempDir } from '../../helpers/config.js';
import { backendConfig, TEST_PG_PASSWORD_ENV } from '../../helpers/keystore-config.js';
import { STORE_BACKENDS, useStoreBackend } from '../../helpers/store-backends.js';

const CERTS = resolve(import.meta.dirname, '../../../../shared/corpora/rfc9216-smime-example-keys/certs-from-wbond-certvalidator');
const certificate = async (file: string): Promise<CertInfo> => (await parseImport(await readFile(join(CERTS, file)))).certificates[0]!;

describe.each(STORE_BACKENDS)('one keystore, two nodes (%s)', (name) => {
  const backend = useStoreBackend(name);
  let cleanup: () => Promise<void>;
  let config: Config;
  let a: KeyStore;
  let b: KeyStore;

  beforeEach(async () => {
    let dir: string;
    ({ dir, cleanup } = await tempDir('postern-cluster-'));
    config = await backendConfig(backend, dir);
    a = await openKeyStore(config, { role: 'node-a' });
    b = await openKeyStore(config, { role: 'node-b' });
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    await cleanup();
  });

  it('each sees what the other wrote, and its change counters move', async () => {
    const before = await b.changeCounters();
    const alice = await certificate('alice@smime.example.sig.pem');
    await a.importCertificate(alice, { source: 'import', actor: 'node-a' });
    expect((await b.certificatesFor('alice@smime.example')).map((c) => c.fingerprint)).toEqual([alice.fingerprint]);
    const pgp = await generatePgpKey({ address: 'carol@example.com' });
    await b.importPgpKey(pgp, { source: 'generated', actor: 'node-b' });
    const [k] = await a.pgpKeysFor('carol@example.com');
    expect(k!.info.fingerprint).toBe(pgp.info.fingerprint);
    expect((await a.pgpSecretKey(k!, 'sign', 'node-a'))!.equals(pgp.secretKey!)).toBe(true);
    const after = await b.changeCounters();
    expect(after.certificates).toBe(before.certificates! + 1);
    expect(after.pgp).toBe(before.pgp! + 1);
    expect(after.pdf).toBe(before.pdf);
    // Both nodes wrote to the one trail.
    expect((await a.auditLog()).map((e) => `${e.actor} ${e.action}`)).toEqual(['node-a import', 'node-b generate', 'node-a use-sign']);
  });

  it('trust set on one node is what the other reads', async () => {
    const ca = await certificate('Sample_LAMPS_RSA_Certification_Authority.selfsigned.pem');
    await a.importCertificate(ca, { source: 'import', actor: 'test' });
    const before = await b.caGeneration();
    expect(await b.setTrusted(ca.fingerprint, true, 'node-b')).toBe(true);
    expect(await a.setTrusted(ca.fingerprint, true, 'node-a')).toBe(false);
    expect((await a.trustAnchors()).map((c) => c.fingerprint)).toEqual([ca.fingerprint]);
    expect(await a.caGeneration()).not.toBe(before);
  });
});

describe('PostgreSQL: concurrent imports, the other node hears of a change, an outage is transient', () => {
  const backend = useStoreBackend('postgres');
  let cleanup: () => Promise<void>;
  let config: Config;
  let a: KeyStore;
  let b: KeyStore;

  beforeEach(async () => {
    let dir: string;
    ({ dir, cleanup } = await tempDir('postern-cluster-pg-'));
    config = await backendConfig(backend, dir);
    a = await openKeyStore(config, { role: 'node-a' });
    b = await openKeyStore(config, { role: 'node-b' });
  });
  afterEach(async () => {
    await (await backend.postgres()).resume();
    await a.close();
    await b.close();
    await cleanup();
  });

  it('the same certificate, key or OpenPGP key imported by both at once is stored once: one added, the other a duplicate', async () => {
    const alice = await certificate('alice@smime.example.sig.pem');
    const certs = await Promise.all([a, b, a, b].map((s, i) => s.importCertificate(alice, { source: 'import', actor: `node-${i}` })));
    expect(certs.map((r) => r.status).sort()).toEqual(['added', 'duplicate', 'duplicate', 'duplicate']);
    expect(new Set(certs.map((r) => r.certificate.id)).size).toBe(1);
    expect(await a.listCertificates()).toHaveLength(1);

    const pgp = await generatePgpKey({ address: 'dave@example.com' });
    const keys = await Promise.all([a, b, b, a].map((s) => s.importPgpKey(pgp, { source: 'import', actor: 'test' })));
    expect(keys.map((r) => r.status).sort()).toEqual(['added', 'duplicate', 'duplicate', 'duplicate']);
    expect(await b.listPgpKeys()).toHaveLength(1);
    expect((await b.auditLog({ action: 'import' })).map((e) => e.object)).toEqual([`cert:${alice.fingerprint}`, `pgp:${pgp.info.fingerprint}`]);

    // Learnt from mail on both nodes at once: still one certificate.
    const enc = await certificate('alice@smime.example.enc.pem');
    const learnt = await Promise.all([a.learnCertificate(enc, { actor: 'worker' }), b.learnCertificate(enc, { actor: 'worker' })]);
    expect(learnt.map((r) => r.status).sort()).toEqual(['added', 'duplicate']);
    expect(await b.certificatesFor('alice@smime.example')).toHaveLength(2);
  });

  it('a change committed on one node is announced to the other, with its topic', async () => {
    const heard: string[] = [];
    let told: () => void = () => undefined;
    const certificatesHeard = new Promise<void>((r) => (told = r));
    const stop = await b.listenForChanges((topic) => {
      heard.push(topic);
      if (topic === 'certificates') told();
    });
    try {
      await a.importCertificate(await certificate('bob@smime.example.sig.pem'), { source: 'import', actor: 'node-a' });
      await certificatesHeard;
      expect(heard).toEqual(['certificates']);
    } finally {
      await stop();
    }
  });

  it('a stopped server makes reads and writes fail as unavailable, without the password; the same store works again after it is back', async () => {
    const bob = await certificate('bob@smime.example.sig.pem');
    await a.importCertificate(bob, { source: 'import', actor: 'node-a' });
    const pg = await backend.postgres();
    await pg.halt();
    const read = await a.certificatesFor('bob@smime.example').then(() => null, (e: unknown) => e);
    expect(read).toBeInstanceOf(SqlError);
    expect((read as SqlError).kind).toBe('unavailable');
    expect(isStoreUnavailable(read)).toBe(true);
    expect((read as Error).message).not.toContain(process.env[TEST_PG_PASSWORD_ENV]!);
    const write = await b.importCertificate(await certificate('alice@smime.example.sig.pem'), { source: 'import', actor: 'node-b' }).then(() => null, (e: unknown) => e);
    expect(isStoreUnavailable(write)).toBe(true);
    await expect(a.audit({ actor: 'worker', action: 'use-sign', object: 'key:x' })).rejects.toSatisfy(isStoreUnavailable);

    await pg.resume();
    expect((await a.certificatesFor('bob@smime.example')).map((c) => c.fingerprint)).toEqual([bob.fingerprint]);
    expect((await b.importCertificate(await certificate('alice@smime.example.sig.pem'), { source: 'import', actor: 'node-b' })).status).toBe('added');
    // Nothing of the failed write was kept.
    expect((await a.auditLog()).map((e) => `${e.actor} ${e.action}`)).toEqual(['node-a import', 'node-b import']);
  });
});
