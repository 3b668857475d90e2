/**
 * The keystore against real material: certificates and keys from the corpora and from openssl,
 * sealed under a file KEK in a real SQLite file or PostgreSQL database (every test on both
 * backends) — whose content is then scanned for any trace of the keys.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import * as openpgp from 'openpgp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { initCa, issueFromCa, KekError, openKek, openKeyStore, type KeyStore } from '../../../src/keystore/index.js';
import { generatePgpKey } from '../../../src/openpgp/index.js';
import { parseImport } from '../../../src/pki/index.js';
import { tempDir } from '../../helpers/config.js';
import { backendConfig, databaseOf } from '../../helpers/keystore-config.js';
import { STORE_BACKENDS, useStoreBackend, type StoreBackend } from '../../helpers/store-backends.js';

const run = promisify(execFile);
const CORPORA = resolve(import.meta.dirname, '../../../../shared/corpora');
const RFC9216 = join(CORPORA, 'rfc9216-smime-example-keys');

/**
 * Every byte the keystore holds: SQLite's file and write-ahead log as they are on disk (free pages
 * included); PostgreSQL's tables read back whole (its files may hold values compressed, where a
 * plain key would not show).
 */
async function storedBytes(backend: StoreBackend, config: Config): Promise<Buffer> {
  if (backend.name === 'sqlite') {
    return Buffer.concat([await readFile(config.keystore.sqlite), await readFile(`${config.keystore.sqlite}-wal`).catch(() => Buffer.alloc(0))]);
  }
  const pg = await backend.postgres();
  const db = databaseOf(config);
  const tables = (await pg.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'keystore'", [], db)).rows.map((r) => r.table_name as string);
  expect(tables).toContain('sealed_secrets');
  const out: Buffer[] = [];
  for (const t of tables) {
    for (const row of (await pg.query(`SELECT * FROM keystore."${t}"`, [], db)).rows as Record<string, unknown>[]) {
      for (const v of Object.values(row)) out.push(Buffer.isBuffer(v) ? v : Buffer.from(String(v)));
    }
  }
  return Buffer.concat(out);
}

describe.each(STORE_BACKENDS)('keystore (%s)', (name) => {
  const backend = useStoreBackend(name);
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: Config;
  let store: KeyStore | undefined;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-keystore-'));
    config = await backendConfig(backend, dir);
    store = await openKeyStore(config);
  });
  afterEach(async () => {
    await store?.close();
    await cleanup();
  });

  async function aliceBundle() {
    const cert = await readFile(join(RFC9216, 'certs-from-wbond-certvalidator', 'alice@smime.example.sig.pem'));
    return { cert: await parseImport(cert) };
  }

  it('learns certificates from mail: a new one for a known address is stored, flagged key-change and audited; capabilities kept', async () => {
    const dirC = join(RFC9216, 'certs-from-wbond-certvalidator');
    const sig = (await parseImport(await readFile(join(dirC, 'alice@smime.example.sig.pem')))).certificates[0]!;
    const enc = (await parseImport(await readFile(join(dirC, 'alice@smime.example.enc.pem')))).certificates[0]!;
    const first = await store!.learnCertificate(sig, { actor: 'worker' });
    expect(first).toMatchObject({ status: 'added', keyChange: false });
    expect(first.certificate.source).toBe('mail');
    expect(first.certificate.flag).toBeUndefined();
    expect(await store!.learnCertificate(sig, { actor: 'worker' })).toMatchObject({ status: 'duplicate', keyChange: false });
    const second = await store!.learnCertificate(enc, { actor: 'worker' });
    expect(second).toMatchObject({ status: 'added', keyChange: true });
    expect(second.certificate.flag).toBe('key-change');
    const audit = await store!.auditLog(`cert:${enc.fingerprint}`);
    expect(audit.map((a) => a.action)).toContain('key-change');
    expect(audit.find((a) => a.action === 'key-change')!.detail).toContain(sig.fingerprint);
    await store!.setCapabilities(sig.fingerprint, { ciphers: ['aes-256-gcm'], rsaOaep: true, oids: [] });
    expect(await store!.capabilitiesOf(sig.fingerprint)).toEqual({ ciphers: ['aes-256-gcm'], rsaOaep: true, oids: [] });
    expect(await store!.capabilitiesOf(enc.fingerprint)).toBeUndefined();
  });

  it('stores a certificate once, finds it by address case-insensitively, and says duplicate the second time', async () => {
    const { cert } = await aliceBundle();
    const c = cert.certificates[0]!;
    const first = await store!.importCertificate(c, { source: 'import', actor: 'test' });
    expect(first.status).toBe('added');
    expect((await store!.importCertificate(c, { source: 'import', actor: 'test' })).status).toBe('duplicate');
    const found = await store!.certificatesFor('ALICE@SMIME.Example');
    expect(found.map((f) => f.fingerprint)).toEqual([c.fingerprint]);
    expect(found[0]).toMatchObject({ subject: c.subject, serial: c.serial, source: 'import', trusted: false, hasPrivateKey: false });
    expect(await store!.certificatesFor('bob@smime.example')).toEqual([]);
    expect((await store!.auditLog(`cert:${c.fingerprint}`)).map((a) => a.action)).toEqual(['import']);
  });

  it('keeps private keys only sealed: the database holds no trace of them', async () => {
    const made = await tempDir('postern-keystore-keys-');
    try {
      await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=Scan Test/emailAddress=scan@example.com', '-addext', 'subjectAltName=email:scan@example.com', '-addext', 'keyUsage=digitalSignature,keyEncipherment', '-addext', 'extendedKeyUsage=emailProtection', '-days', '30', '-keyout', join(made.dir, 'k.pem'), '-out', join(made.dir, 'c.pem')]);
      const bundle = await parseImport(Buffer.concat([await readFile(join(made.dir, 'c.pem')), await readFile(join(made.dir, 'k.pem'))]));
      await store!.importCertificate(bundle.certificates[0]!, { source: 'import', actor: 'test' });
      expect(await store!.importPrivateKey(bundle.keys[0]!, { actor: 'test' })).toBe('added');
      const pgp = await generatePgpKey({ address: 'scan@example.com' });
      await store!.importPgpKey(pgp, { source: 'generated', actor: 'test' });
      await store!.close();
      store = undefined;

      const db = await storedBytes(backend, config);
      const pkcs8 = bundle.keys[0]!.pkcs8;
      const rsa = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
      const d = Buffer.from(rsa.d!, 'base64url');
      const p = Buffer.from(rsa.p!, 'base64url');
      for (const marker of ['PRIVATE KEY', 'BEGIN PGP PRIVATE']) expect(db.includes(Buffer.from(marker))).toBe(false);
      expect(db.includes(pkcs8.subarray(0, 64))).toBe(false);
      expect(db.includes(d.subarray(0, 32))).toBe(false);
      expect(db.includes(p.subarray(0, 32))).toBe(false);
      // The OpenPGP secret key material (ed25519 seed, cv25519 scalar) appears nowhere.
      const sk = await openpgp.readPrivateKey({ binaryKey: pgp.secretKey! });
      const secrets = [sk.keyPacket, ...sk.subkeys.map((k) => k.keyPacket)].flatMap((p) => Object.values((p as unknown as { privateParams: Record<string, Uint8Array> }).privateParams));
      expect(secrets.length).toBeGreaterThanOrEqual(2);
      for (const bytes of secrets) expect(db.includes(Buffer.from(bytes))).toBe(false);
      // …and the key comes back intact through the KEK.
      store = await openKeyStore(config);
      const [c] = await store.certificatesFor('scan@example.com');
      expect(c!.hasPrivateKey).toBe(true);
      expect((await store.privateKeyFor(c!, 'sign', 'test'))!.equals(pkcs8)).toBe(true);
      const [k] = await store.pgpKeysFor('Scan@Example.com');
      expect((await store.pgpSecretKey(k!, 'decrypt', 'test'))!.equals(pgp.secretKey!)).toBe(true);
      expect((await store.auditLog()).map((a) => a.action)).toEqual(['import', 'import', 'generate', 'use-sign', 'use-decrypt']);
    } finally {
      await made.cleanup();
    }
  });

  it('refuses to open with another KEK than the keys were wrapped with, and rotates to a new one', async () => {
    const ca = await initCa(store!, { commonName: 'Test CA', actor: 'test' });
    await issueFromCa(store!, config, { address: 'bob@example.com', actor: 'test' });
    await store!.close();
    store = undefined;

    const other: Config = { ...config, kek: { file: join(dir, 'other.key') } };
    await expect(openKeyStore(other)).rejects.toThrow(KekError);
    await expect(openKeyStore(other)).rejects.toThrow(/holds keys wrapped by file:[0-9a-f]{16}, but the configured KEK is file:/);
    // Where the keys are, as the admin knows it, and never the database password.
    const refused = (await openKeyStore(other).then(
      () => new Error('opened'),
      (e: Error) => e,
    ));
    expect(refused.message).toContain(name === 'sqlite' ? config.keystore.sqlite : `127.0.0.1:${(await backend.postgres()).port}/${databaseOf(config)}`);
    expect(refused.message).not.toContain(process.env.POSTERN_TEST_PG_PASSWORD ?? '\u0000');

    store = await openKeyStore(config);
    const to = await openKek(other.kek, { saltFile: join(dir, 'kek.salt'), create: true });
    expect(await store.rotateKek(to, 'test')).toBe(2);
    expect(await store.kekIdsInUse()).toEqual([to.id]);
    await store.close();
    store = await openKeyStore(other);
    const [bob] = await store.certificatesFor('bob@example.com');
    expect(bob!.issuer).toBe(ca.subject);
    expect((await store.privateKeyFor(bob!, 'sign', 'test'))!.length).toBeGreaterThan(100);
  });
});
