/**
 * The portal over HTTPS (portal.tls): a certificate made by openssl for openpgpkey.example.com,
 * a WKD request verified against it as a client would (SNI, host name check), and a refusal to
 * start when the files are unreadable.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wkdHash } from '../../src/directory/index.js';
import { openKeyStore, type KeyStore } from '../../src/keystore/index.js';
import { silentLogger } from '../../src/log/index.js';
import { generatePgpKey, type ParsedPgpKey } from '../../src/openpgp/index.js';
import { PortalError, startPortal, type Portal } from '../../src/portal/index.js';
import { tempDir, testConfig } from '../helpers/config.js';

const run = promisify(execFile);

describe('portal: HTTPS', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let store: KeyStore;
  let portal: Portal;
  let ca: Buffer;
  let user: ParsedPgpKey;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-portal-tls-'));
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=openpgpkey.example.com',
      '-addext', 'subjectAltName=DNS:openpgpkey.example.com,DNS:example.com', '-keyout', join(dir, 'portal.key'), '-out', join(dir, 'portal.crt')]);
    ca = await readFile(join(dir, 'portal.crt'));
    const config = testConfig(dir, { portal: { listen: [{ host: '127.0.0.1', port: 0 }], wkd: true, index_ttl: 60_000, tls: { cert: join(dir, 'portal.crt'), key: join(dir, 'portal.key') } } });
    store = await openKeyStore(config);
    user = await generatePgpKey({ address: 'user@example.com' });
    await store.importPgpKey(user, { source: 'generated', actor: 'test' });
    portal = await startPortal({ config, store, log: silentLogger() });
  });
  afterAll(async () => {
    await portal?.close();
    await store?.close();
    await cleanup();
  });

  it('serves WKD over TLS with the configured certificate', async () => {
    const body = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: portal.addresses[0]!.port, servername: 'openpgpkey.example.com', ca, path: `/.well-known/openpgpkey/example.com/hu/${wkdHash('user')}?l=user`, headers: { host: 'openpgpkey.example.com' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(body.status).toBe(200);
    expect(body.body.equals(user.publicKey)).toBe(true);
  });

  it('takes a renewed certificate on reload, for new connections, without a restart', async () => {
    const peerCert = () =>
      new Promise<string>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: portal.addresses[0]!.port, servername: 'openpgpkey.example.com', rejectUnauthorized: false, agent: false, path: '/health' }, (res) => {
          resolve((res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256);
          res.resume();
        });
        req.on('error', reject);
        req.end();
      });
    const before = await peerCert();
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=openpgpkey.example.com',
      '-keyout', join(dir, 'renewed.key'), '-out', join(dir, 'renewed.crt')]);
    const renewed = { cert: await readFile(join(dir, 'renewed.crt')), key: await readFile(join(dir, 'renewed.key')) };
    // As the role does on SIGHUP: the supervisor read the files (they are root's) and hands the bytes over.
    await portal.reloadTls(renewed);
    const after = await peerCert();
    expect(after).not.toBe(before);
    const { stdout } = await run('openssl', ['x509', '-in', join(dir, 'renewed.crt'), '-noout', '-fingerprint', '-sha256']);
    expect(stdout.trim().split('=')[1]).toBe(after);
  });

  it('does not start with unreadable TLS files, nor without a listen address', async () => {
    const bad = testConfig(dir, { portal: { listen: [{ host: '127.0.0.1', port: 0 }], wkd: true, index_ttl: 1, tls: { cert: join(dir, 'nope.crt'), key: join(dir, 'nope.key') } } });
    await expect(startPortal({ config: bad, store, log: silentLogger() })).rejects.toThrow(PortalError);
    await expect(startPortal({ config: testConfig(dir), store, log: silentLogger() })).rejects.toThrow(/portal.listen is empty/);
  });

  it('does not start on a port already taken (and leaves nothing listening)', async () => {
    const taken = testConfig(dir, { portal: { listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: portal.addresses[0]!.port }], wkd: true, index_ttl: 1 } });
    await expect(startPortal({ config: taken, store, log: silentLogger() })).rejects.toThrow(/cannot listen: .*EADDRINUSE/);
  });
});
