/**
 * Delegated OCSP responders (RFC 6960 §4.2.2.2) against real `openssl ocsp -rsigner` processes
 * over an `openssl ca` database: a responder with id-pkix-ocsp-nocheck is taken at its word; one
 * without has its own certificate checked (here by the CA's CRL); a revoked responder's answers
 * are ignored, both ways; one whose own status is unknown may report a revocation but not a
 * "good"; a responder cannot vouch for itself; certificates without the OCSPSigning EKU or the
 * digitalSignature key usage do not sign answers.
 */
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeHttpFetcher, RevocationChecker, type CertInfo } from '../../src/pki/index.js';
import { tempDir } from '../helpers/config.js';
import { freePort, httpServer, makeTestPki, startOpensslOcsp, stopProcess, type TestPki } from '../helpers/ocsp-pki.js';

describe('revocation: delegated OCSP responders against openssl ocsp', () => {
  let cleanup: () => Promise<void>;
  let pki: TestPki;
  let crlServer: Awaited<ReturnType<typeof httpServer>>;
  const crls: Record<string, Buffer> = {};
  const responders: Record<string, { url: string; proc: ChildProcess }> = {};
  const fetch = nodeHttpFetcher();
  const checker = () => new RevocationChecker({ fetch, timeoutMs: 3_000, failureTtlMs: 0 });
  // Only the responder's answer can decide the certificate asked about (no CRL of its own).
  const via = (c: CertInfo, responder: string): CertInfo => ({ ...c, ocspUrls: [responders[responder]!.url], crlUrls: [] });

  beforeAll(async () => {
    let dir: string;
    ({ dir, cleanup } = await tempDir('postern-rev-delegation-'));
    const [crlPort, selfPort] = await Promise.all([freePort(), freePort()]);
    crlServer = await httpServer(crlPort, (path) => (crls[path] ? { body: crls[path]! } : { status: 404, body: Buffer.alloc(0) }));
    pki = await makeTestPki(dir, 9, crlPort, {
      extraConfig: `
[ocsp_check_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
crlDistributionPoints = URI:http://127.0.0.1:${crlPort}/ca.crl
[ocsp_bare_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
[ocsp_self_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
authorityInfoAccess = OCSP;URI:http://127.0.0.1:${selfPort}
[ocsp_nosig_ext]
basicConstraints = CA:FALSE
keyUsage = critical,keyEncipherment
extendedKeyUsage = OCSPSigning
noCheck = ignored
`,
    });
    await pki.issue('ocsp-checked', 'ocsp_check_ext');
    await pki.issue('ocsp-revoked', 'ocsp_check_ext');
    await pki.issue('ocsp-bare', 'ocsp_bare_ext');
    await pki.issue('ocsp-self', 'ocsp_self_ext');
    await pki.issue('ocsp-nosig', 'ocsp_nosig_ext');
    await pki.ca_('-revoke', join(dir, 'ocsp-revoked.pem'), '-crl_reason', 'keyCompromise');
    crls['/ca.crl'] = await pki.gencrl();
    // 'good' is an end-entity certificate (emailProtection) that openssl will happily sign with.
    for (const signer of ['ocsp', 'ocsp-checked', 'ocsp-revoked', 'ocsp-bare', 'ocsp-self', 'ocsp-nosig', 'good']) {
      const port = signer === 'ocsp-self' ? selfPort : await freePort();
      responders[signer] = { url: `http://127.0.0.1:${port}`, proc: await startOpensslOcsp(pki, port, { signer }) };
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all([...Object.values(responders).map((r) => stopProcess(r.proc)), crlServer?.close()]);
    await cleanup?.();
  });

  it('a responder with id-pkix-ocsp-nocheck is taken at its word, its own certificate not checked', async () => {
    const before = crlServer.hits.get('/ca.crl') ?? 0;
    const c = checker();
    expect(await c.check(via(pki.good, 'ocsp'), pki.ca)).toEqual({ status: 'good', source: 'ocsp' });
    expect(await c.check(via(pki.revoked, 'ocsp'), pki.ca)).toMatchObject({ status: 'revoked', source: 'ocsp', revocationReason: 'keyCompromise' });
    expect(crlServer.hits.get('/ca.crl') ?? 0).toBe(before);
  });

  it('a responder without nocheck is believed once its own certificate is found good (by the CA\'s CRL)', async () => {
    const before = crlServer.hits.get('/ca.crl') ?? 0;
    const c = checker();
    expect(await c.check(via(pki.good, 'ocsp-checked'), pki.ca)).toEqual({ status: 'good', source: 'ocsp' });
    expect(await c.check(via(pki.revoked, 'ocsp-checked'), pki.ca)).toMatchObject({ status: 'revoked', source: 'ocsp', revocationReason: 'keyCompromise' });
    expect((crlServer.hits.get('/ca.crl') ?? 0) - before).toBe(1);
  });

  it('a revoked responder is not believed, whatever it says', async () => {
    for (const target of [pki.good, pki.revoked]) {
      const r = await checker().check(via(target, 'ocsp-revoked'), pki.ca);
      expect(r.status).toBe('unknown');
      expect(r.reason).toMatch(/signs with a revoked certificate \(CN=ocsp-revoked\), so its answer is not taken/);
    }
  });

  it('a responder whose own status is unknown may report a revocation, never a "good"', async () => {
    expect(await checker().check(via(pki.revoked, 'ocsp-bare'), pki.ca)).toMatchObject({ status: 'revoked', source: 'ocsp' });
    const r = await checker().check(via(pki.good, 'ocsp-bare'), pki.ca);
    expect(r.status).toBe('unknown');
    expect(r.reason).toMatch(/says good, but the revocation status of its own certificate CN=ocsp-bare is unknown .* no id-pkix-ocsp-nocheck/);
  });

  it('a responder cannot vouch for itself: its own certificate is answered for by the issuer only', async () => {
    // Its certificate names itself as its OCSP responder, and nothing else.
    const r = await checker().check(via(pki.good, 'ocsp-self'), pki.ca);
    expect(r.status).toBe('unknown');
    expect(r.reason).toMatch(/its own certificate CN=ocsp-self is unknown \(OCSP response not trusted: it is not signed by the issuer itself, and a delegated responder is not taken/);
  });

  it('no OCSPSigning EKU, or no digitalSignature key usage: the answer is not trusted', async () => {
    const eku = await checker().check(via(pki.good, 'good'), pki.ca);
    expect(eku.status).toBe('unknown');
    expect(eku.reason).toMatch(/lacks the OCSPSigning extended key usage/);
    const ku = await checker().check(via(pki.good, 'ocsp-nosig'), pki.ca);
    expect(ku.status).toBe('unknown');
    expect(ku.reason).toMatch(/key usage does not allow digital signatures/);
  });
});
