/**
 * Revocation through the `postern` commands and the keystore: an openssl CRL imported (and a
 * forged one refused), then a revoked certificate detected with no network at all; the internal
 * CA's `ca revoke` and its CRL, which `openssl crl -verify` accepts and which lists the serial.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/index.js';
import { loadConfig } from '../../src/config/index.js';
import { internalCaCrl, openKeyStore, revocationStoreView } from '../../src/keystore/index.js';
import { parseCertificate, parseCrl, RevocationChecker, type HttpFetcher } from '../../src/pki/index.js';
import { tempDir } from '../helpers/config.js';
import { makeTestPki, type TestPki } from '../helpers/ocsp-pki.js';
import { run } from '../helpers/pki-openssl.js';

describe('postern crl / ca revoke', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: string;
  let pki: TestPki;
  const offline: HttpFetcher = async (req) => {
    throw new Error(`offline: ${req.url}`);
  };

  const cli = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli([...args, '-c', config], 'postern', { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    if (r.code !== 0) throw new Error(`postern ${args.join(' ')} → ${r.code}\n${r.err}${r.out}`);
    return r.out;
  };
  const withStore = async <T>(fn: (store: Awaited<ReturnType<typeof openKeyStore>>, cfg: Awaited<ReturnType<typeof loadConfig>>) => Promise<T>) => {
    const cfg = await loadConfig(config);
    const store = await openKeyStore(cfg);
    try {
      return await fn(store, cfg);
    } finally {
      await store.close();
    }
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-revocation-cli-'));
    config = join(dir, 'postern.yaml');
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
    await writeFile(config, 'hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\nca: { crl_url: "http://gw.test.example/crl/ca.crl" }\n');
    await run('mkdir', ['-p', join(dir, 'pki')]);
    pki = await makeTestPki(join(dir, 'pki'), 9, 9); // nothing listens there: the checks below are offline
  });
  afterAll(() => cleanup?.());

  it('imports an openssl CRL once its CA is in the store, refuses a forged one, and finds a revocation offline', async () => {
    const crl = await pki.gencrl();
    await writeFile(join(dir, 'ca.crl'), crl);
    const noCa = await cli('crl', 'import', join(dir, 'ca.crl'));
    expect(noCa.code).toBe(1);
    expect(noCa.err).toMatch(/no CA certificate for .*Revocation Test Root.* in the store/);

    await ok('cert', 'import', pki.caPem, '--trust');
    const forged = Buffer.from(crl);
    forged[forged.length - 3] = forged[forged.length - 3]! ^ 0x55;
    await writeFile(join(dir, 'forged.crl'), forged);
    const bad = await cli('crl', 'import', join(dir, 'forged.crl'));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/refused: the CRL's signature does not verify/);

    // PEM as openssl writes it
    const pem = `-----BEGIN X509 CRL-----\n${crl.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END X509 CRL-----\n`;
    await writeFile(join(dir, 'ca.crl.pem'), pem);
    expect(await ok('crl', 'import', join(dir, 'ca.crl.pem'))).toMatch(/^imported: .*CN=Revocation Test Root.*1 revoked/);
    expect(await ok('crl', 'list')).toMatch(/CN=Revocation Test Root.*1 revoked\s+import:ca\.crl\.pem/);

    await withStore(async (store) => {
      const checker = new RevocationChecker({ fetch: offline, store: revocationStoreView(store) });
      expect(await checker.check(pki.revoked, pki.ca)).toMatchObject({ status: 'revoked', source: 'crl', revocationReason: 'keyCompromise' });
      expect(await checker.check(pki.good, pki.ca)).toEqual({ status: 'good', source: 'crl' });
    });
  });

  it('ca revoke puts the certificate on the internal CA\'s CRL, which openssl verifies', async () => {
    await ok('ca', 'init', '--name', 'Example Mail CA');
    await ok('ca', 'issue', 'alice@example.com');
    await ok('ca', 'issue', 'bob@example.com');
    const unknownReason = await cli('ca', 'revoke', 'alice@example.com', '--reason', 'because');
    expect(unknownReason.code).toBe(1);
    expect(unknownReason.err).toMatch(/unknown revocation reason/);
    expect((await cli('ca', 'revoke', 'nobody@example.com')).code).toBe(1);

    const out = await ok('ca', 'revoke', 'alice@example.com', '--reason', 'keyCompromise');
    const serial = /serial ([0-9a-f]+)/.exec(out)![1]!;
    expect(out).toMatch(/^revoked: serial [0-9a-f]+ CN=alice@example\.com/);
    expect(await ok('ca', 'revoke', serial.replace(/(..)(?!$)/g, '$1:'))).toMatch(/^already revoked: /);

    await withStore(async (store, cfg) => {
      const der = await internalCaCrl(store, cfg);
      await writeFile(join(dir, 'internal.crl'), der);
      const ca = (await ok('ca', 'show')).trim();
      await writeFile(join(dir, 'internal-ca.pem'), `${ca}\n`);
      const v = await run('openssl', ['crl', '-inform', 'DER', '-in', join(dir, 'internal.crl'), '-CAfile', join(dir, 'internal-ca.pem'), '-noout', '-verify', '-text']);
      expect(v.stderr).toMatch(/verify OK/);
      expect(v.stdout.replace(/\s+/g, ' ')).toMatch(new RegExp(`Serial Number: ${serial.toUpperCase()} Revocation Date: .* Key Compromise`));
      expect(v.stdout).toMatch(/CRL Number:/);
      expect(parseCrl(der).entries.size).toBe(1);

      // The checker takes the internal CA's word, offline: alice revoked, bob good.
      const caInfo = parseCertificate((await store.trustAnchors()).find((c) => c.subject.includes('Example Mail CA'))!.der);
      const [alice] = await store.certificatesFor('alice@example.com');
      const [bob] = await store.certificatesFor('bob@example.com');
      const checker = new RevocationChecker({ fetch: offline, store: revocationStoreView(store) });
      expect(await checker.check(parseCertificate(alice!.der), caInfo)).toMatchObject({ status: 'revoked', source: 'local', revocationReason: 'keyCompromise' });
      expect(await checker.check(parseCertificate(bob!.der), caInfo)).toEqual({ status: 'good', source: 'local' });
    });
  });
});
