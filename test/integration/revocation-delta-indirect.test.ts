/**
 * Delta CRLs (RFC 5280 §5.2.4) and indirect CRLs (§5.3.3) against openssl on loopback: complete
 * and delta CRLs both made by `openssl ca` (the delta from the entries that changed since the
 * complete one, with a certificate released from hold by removeFromCRL), found through the
 * complete CRL's freshestCRL or the certificate's; an indirect CRL built with pkijs and checked
 * by `openssl crl -verify`, whose signer is named by the certificate's cRLIssuer and checked
 * itself; and the attacks: a delta that cannot be had, one on the wrong base, a forged one, a
 * CRL of another partition served in place of the right one, an indirect CRL from a signer
 * outside the path, or from a revoked signer.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeHttpFetcher, RevocationChecker, type CertInfo, type HttpFetcher, type RevocationStoreView } from '../../src/pki/index.js';
import { tempDir } from '../helpers/config.js';
import { buildIndirectCrl } from '../helpers/crl-pkijs.js';
import { run } from '../helpers/pki-openssl.js';
import { freePort, httpServer, makeTestPki, type TestPki } from '../helpers/ocsp-pki.js';

describe('revocation: delta and indirect CRLs against openssl', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let pki: TestPki;
  let base: string;
  let server: Awaited<ReturnType<typeof httpServer>>;
  const crls: Record<string, Buffer> = {};
  let later: CertInfo, held: CertInfo, steady: CertInfo, selfNamed: CertInfo, signer: CertInfo, indRevoked: CertInfo, indGood: CertInfo;
  const fetch = nodeHttpFetcher();
  const checker = (o: Partial<ConstructorParameters<typeof RevocationChecker>[0]> = {}) => new RevocationChecker({ fetch, timeoutMs: 2_000, failureTtlMs: 0, ocsp: false, ...o });
  const at = (c: CertInfo, ...paths: string[]): CertInfo => ({ ...c, crlUrls: paths.map((p) => `${base}${p}`), ocspUrls: [] });
  const signerView: RevocationStoreView = { importedCrls: async () => [], certificatesBySubject: async (s) => (s === signer.subject ? [signer] : []) };
  const opensslText = async (der: Buffer, ...args: string[]) => {
    const f = join(dir, `show-${Math.random().toString(36).slice(2)}.der`);
    await writeFile(f, der);
    const r = await run('openssl', ['crl', '-inform', 'DER', '-in', f, '-noout', '-text', ...args]);
    return r.stdout + r.stderr;
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-rev-delta-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = await httpServer(port, (path) => (crls[path] ? { body: crls[path]! } : { status: 404, body: Buffer.alloc(0) }));
    pki = await makeTestPki(dir, 9, port, {
      extraConfig: `
[crl_fresh]
authorityKeyIdentifier = keyid
freshestCRL = URI:${base}/delta.crl
[crl_fresh_gone]
authorityKeyIdentifier = keyid
freshestCRL = URI:${base}/gone-delta.crl
[crl_fresh_ahead]
authorityKeyIdentifier = keyid
freshestCRL = URI:${base}/ahead-delta.crl
[crl_fresh_stale]
authorityKeyIdentifier = keyid
freshestCRL = URI:${base}/stale-delta.crl
[crl_fresh_forged]
authorityKeyIdentifier = keyid
freshestCRL = URI:${base}/forged-delta.crl
[ee_fresh]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = emailProtection
crlDistributionPoints = URI:${base}/plain.crl
freshestCRL = URI:${base}/delta.crl
[idp_a]
authorityKeyIdentifier = keyid
issuingDistributionPoint = critical, @idp_a_sect
[idp_a_sect]
fullname = URI:${base}/partition-a.crl
[idp_b]
authorityKeyIdentifier = keyid
issuingDistributionPoint = critical, @idp_b_sect
[idp_b_sect]
fullname = URI:${base}/partition-b.crl
[crlsigner_ext]
basicConstraints = CA:FALSE
keyUsage = critical,cRLSign,digitalSignature
crlDistributionPoints = URI:${base}/ca.crl
[ee_indirect]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = emailProtection
crlDistributionPoints = indirect_dp
[indirect_dp]
fullname = URI:${base}/indirect.crl
CRLissuer = dirName:crlsigner_dn
[crlsigner_dn]
CN = Revocation CRL Signer
`,
    });
    [later, held, steady, selfNamed] = [await pki.issue('later', 'ee_ext'), await pki.issue('held', 'ee_ext'), await pki.issue('steady', 'ee_ext'), await pki.issue('self-named', 'ee_fresh')];
    await pki.ca_('-revoke', join(dir, 'held.pem'), '-crl_hold', 'holdInstructionReject');
    signer = await pki.issue('crlsigner', 'crlsigner_ext', { subj: '/CN=Revocation CRL Signer' });
    [indRevoked, indGood] = [await pki.issue('ind-revoked', 'ee_indirect'), await pki.issue('ind-good', 'ee_indirect')];
    crls['/ca.crl'] = await pki.gencrl();

    // The complete CRLs, all of one state of the database; then changes, and the delta of them.
    const snapshot = await pki.snapshot();
    crls['/full.crl'] = await pki.gencrl('-crlexts', 'crl_fresh');
    const baseNumber = await pki.crlNumber(crls['/full.crl']);
    crls['/full-gone.crl'] = await pki.gencrl('-crlexts', 'crl_fresh_gone');
    crls['/full-ahead.crl'] = await pki.gencrl('-crlexts', 'crl_fresh_ahead');
    crls['/full-forged.crl'] = await pki.gencrl('-crlexts', 'crl_fresh_forged');
    crls['/full-stale.crl'] = await pki.gencrl('-crlexts', 'crl_fresh_stale');
    crls['/plain.crl'] = await pki.gencrl();
    await pki.ca_('-revoke', join(dir, 'later.pem'), '-crl_reason', 'keyCompromise');
    await pki.ca_('-revoke', join(dir, 'self-named.pem'), '-crl_reason', 'superseded');
    // openssl ca has no command to release a hold: its database says so, as the CA would.
    const index = join(dir, 'index.txt');
    await writeFile(index, (await readFile(index, 'utf8')).replace(/,holdInstruction,holdInstructionReject/, ',removeFromCRL'));
    crls['/delta.crl'] = await pki.gendelta(snapshot, baseNumber);
    crls['/ahead-delta.crl'] = await pki.gendelta(snapshot, baseNumber + 100n);
    const ts = (d: number) => new Date(d).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
    crls['/stale-delta.crl'] = await pki.gendelta(snapshot, baseNumber, '-crl_lastupdate', ts(Date.now() - 2 * 86_400_000), '-crl_nextupdate', ts(Date.now() - 86_400_000));
    const forged = Buffer.from(crls['/delta.crl']);
    forged[forged.length - 7] = forged[forged.length - 7]! ^ 0x40;
    crls['/forged-delta.crl'] = forged;
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await cleanup?.();
  });

  it('openssl reads what it made: a delta CRL on the complete one\'s number, with removeFromCRL', async () => {
    const text = (await opensslText(crls['/delta.crl']!, '-CAfile', pki.caPem)).replace(/\s+/g, ' ');
    expect(text).toMatch(/verify OK/);
    expect(text).toMatch(new RegExp(`Delta CRL Indicator: critical ${await pki.crlNumber(crls['/full.crl']!)}`));
    expect(text).toMatch(new RegExp(`Serial Number: ${later.serial.toUpperCase()} .*Key Compromise`));
    expect(text).toMatch(/Remove From CRL/);
    expect(await opensslText(crls['/full.crl']!)).toMatch(/Freshest CRL:\s+Full Name:\s+URI:http:\/\/127\.0\.0\.1:\d+\/delta\.crl/);
  });

  it('a revocation only the delta knows counts; a hold the delta releases is good; the rest as the complete CRL says', async () => {
    const c = checker();
    expect(await c.check(at(later, '/full.crl'), pki.ca)).toMatchObject({ status: 'revoked', source: 'crl', revocationReason: 'keyCompromise' });
    expect(await c.check(at(held, '/full.crl'), pki.ca)).toEqual({ status: 'good', source: 'crl' });
    expect(await c.check(at(steady, '/full.crl'), pki.ca)).toEqual({ status: 'good', source: 'crl' });
    expect(await c.check(at(pki.revoked, '/full.crl'), pki.ca)).toMatchObject({ status: 'revoked', revocationReason: 'keyCompromise' });
    // The complete CRL alone still has the hold.
    expect(await checker().check(at(held, '/plain.crl'), pki.ca)).toMatchObject({ status: 'revoked', revocationReason: 'certificateHold' });
    expect(server.hits.get('/delta.crl')).toBeGreaterThanOrEqual(1);
  });

  it('a certificate that names its delta CRLs itself (freshestCRL) is checked against them', async () => {
    const r = await checker().check(selfNamed, pki.ca);
    expect(r).toMatchObject({ status: 'revoked', source: 'crl', revocationReason: 'superseded' });
  });

  it('without a current delta, "not listed" is not good: unknown, saying why; a listing still counts', async () => {
    const gone = await checker().check(at(later, '/full-gone.crl'), pki.ca);
    expect(gone.status).toBe('unknown');
    expect(gone.reason).toMatch(/publishes delta CRLs and no current one could be had.*gone-delta\.crl failed: HTTP status 404/);
    expect(await checker().check(at(pki.revoked, '/full-gone.crl'), pki.ca)).toMatchObject({ status: 'revoked' });
    const ahead = await checker().check(at(later, '/full-ahead.crl'), pki.ca);
    expect(ahead.status).toBe('unknown');
    expect(ahead.reason).toMatch(/builds on CRL number \d+, newer than the complete CRL/);
    const stale = await checker().check(at(later, '/full-stale.crl'), pki.ca);
    expect(stale.status).toBe('unknown');
    expect(stale.reason).toMatch(/stale-delta\.crl: the CRL expired at .*nextUpdate/);
    const forged = await checker().check(at(later, '/full-forged.crl'), pki.ca);
    expect(forged.status).toBe('unknown');
    expect(forged.reason).toMatch(/forged-delta\.crl is refused: the CRL's signature does not verify/);
  });

  it('a delta CRL served where the complete one belongs is not taken for it', async () => {
    const r = await checker().check(at(steady, '/delta.crl'), pki.ca);
    expect(r.status).toBe('unknown');
    expect(r.reason).toMatch(/is a delta CRL where a complete one belongs/);
  });

  it('imported complete and delta CRLs combine offline', async () => {
    const offline: HttpFetcher = async (req) => {
      throw new Error(`offline: ${req.url}`);
    };
    const store: RevocationStoreView = { importedCrls: async () => [{ der: crls['/plain.crl']!, source: 'import:plain' }, { der: crls['/delta.crl']!, source: 'import:delta' }] };
    const c = checker({ fetch: offline, store });
    expect(await c.check(at(later, '/nowhere.crl'), pki.ca)).toMatchObject({ status: 'revoked', revocationReason: 'keyCompromise' });
    expect(await c.check(at(held, '/nowhere.crl'), pki.ca)).toEqual({ status: 'good', source: 'crl' });
  });

  it('a CRL of another partition (issuingDistributionPoint) served in place of the right one does not make a revoked certificate good', async () => {
    crls['/partition-a.crl'] = await pki.gencrl('-crlexts', 'idp_b');
    const swapped = await checker().check(at(pki.revoked, '/partition-a.crl'), pki.ca);
    expect(swapped.status).toBe('unknown');
    expect(swapped.reason).toMatch(/does not cover this certificate/);
    crls['/partition-a.crl'] = await pki.gencrl('-crlexts', 'idp_a');
    expect(await checker().check(at(pki.revoked, '/partition-a.crl'), pki.ca)).toMatchObject({ status: 'revoked', revocationReason: 'keyCompromise' });
    expect(await checker().check(at(steady, '/partition-a.crl'), pki.ca)).toEqual({ status: 'good', source: 'crl' });
  });

  describe('indirect CRLs', () => {
    const indirect = (o: Partial<Parameters<typeof buildIndirectCrl>[0]> = {}) =>
      buildIndirectCrl({ signerCertFile: join(dir, 'crlsigner.pem'), signerKeyFile: join(dir, 'crlsigner.key'), idpUrl: `${base}/indirect.crl`, entries: [{ serial: indRevoked.serial, issuerCertFile: pki.caPem }], ...o });

    beforeAll(async () => {
      crls['/indirect.crl'] = await indirect();
    });

    it('openssl verifies the indirect CRL and reads its certificate issuer', async () => {
      await writeFile(join(dir, 'bundle.pem'), `${await readFile(join(dir, 'crlsigner.pem'), 'latin1')}${await readFile(pki.caPem, 'latin1')}`);
      const text = (await opensslText(crls['/indirect.crl']!, '-CAfile', join(dir, 'bundle.pem'))).replace(/\s+/g, ' ');
      expect(text).toMatch(/verify OK/);
      expect(text).toMatch(/Issuer: CN = Revocation CRL Signer/);
      expect(text).toMatch(/Indirect CRL/);
      expect(text).toMatch(/Certificate Issuer: critical DirName:\/O=Revocation Test\/CN=Revocation Test Root/);
    });

    it('the signer named by cRLIssuer speaks for the CA: listed is revoked, not listed good; the signer\'s own status was checked', async () => {
      const before = server.hits.get('/ca.crl') ?? 0;
      const c = checker({ store: signerView });
      expect(await c.check(indRevoked, pki.ca)).toMatchObject({ status: 'revoked', source: 'crl', revocationReason: 'keyCompromise' });
      expect(await c.check(indGood, pki.ca)).toEqual({ status: 'good', source: 'crl' });
      expect((server.hits.get('/ca.crl') ?? 0) - before).toBe(1);
    });

    it('with the signer\'s own status unknown, a listing counts but silence is not good', async () => {
      const noCaCrl: HttpFetcher = (req) => (req.url.endsWith('/ca.crl') ? Promise.reject(new Error('unreachable')) : fetch(req));
      const c = checker({ store: signerView, fetch: noCaCrl });
      expect(await c.check(indRevoked, pki.ca)).toMatchObject({ status: 'revoked', revocationReason: 'keyCompromise' });
      const r = await c.check(indGood, pki.ca);
      expect(r.status).toBe('unknown');
      expect(r.reason).toMatch(/status of the indirect CRL's signer CN=Revocation CRL Signer is unknown .*silence is not taken as good/);
    });

    it('refused: a signer nobody knows, one outside the path, a CRL not marked indirect, a signer the certificate did not name', async () => {
      const unknownSigner = await checker().check(indGood, pki.ca);
      expect(unknownSigner.status).toBe('unknown');
      expect(unknownSigner.reason).toMatch(/no certificate of its issuer CN=Revocation CRL Signer is known/);

      // Same name, own key, self-signed: not issued by a CA of the path.
      await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'fake.key'), '-out', join(dir, 'fake.pem'), '-days', '5',
        '-subj', '/CN=Revocation CRL Signer', '-addext', 'keyUsage=critical,cRLSign,digitalSignature']);
      const { parseCertificate } = await import('../../src/pki/index.js');
      const fake = parseCertificate(Buffer.from((await readFile(join(dir, 'fake.pem'), 'latin1')).replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64'));
      crls['/indirect.crl'] = await indirect({ signerCertFile: join(dir, 'fake.pem'), signerKeyFile: join(dir, 'fake.key'), entries: [] });
      const fakeAtDp = await checker({ store: { importedCrls: async () => [], certificatesBySubject: async () => [fake] } }).check(indGood, pki.ca);
      expect(fakeAtDp.status).toBe('unknown');
      expect(fakeAtDp.reason).toMatch(/not issued by a CA of the certificate's path/);

      // A genuine indirect CRL, for a certificate whose distribution point names no cRLIssuer: its issuer alone may speak.
      crls['/indirect.crl'] = await indirect();
      const unnamed = await checker({ store: signerView }).check({ ...pki.revoked, crlUrls: [`${base}/indirect.crl`], ocspUrls: [] }, pki.ca);
      expect(unnamed.status).toBe('unknown');
      expect(unnamed.reason).toMatch(/issued by CN=Revocation CRL Signer, but the distribution point names CN=Revocation Test Root,O=Revocation Test/);

      // Entries for another issuer in a CRL that does not say it is indirect: the CRL is malformed.
      crls['/indirect.crl'] = await indirect({ indirect: false });
      const unmarked = await checker({ store: signerView }).check(indRevoked, pki.ca);
      expect(unmarked.status).toBe('unknown');
      expect(unmarked.reason).toMatch(/names a certificate issuer, but the CRL is not an indirect CRL/);

      crls['/indirect.crl'] = await indirect({ indirect: false, entries: [] });
      const plain = await checker({ store: signerView }).check(indGood, pki.ca);
      expect(plain.status).toBe('unknown');
      expect(plain.reason).toMatch(/is not an indirect CRL/);
      crls['/indirect.crl'] = await indirect();
    });

    it('a revoked signer\'s CRL is not believed', async () => {
      await pki.ca_('-revoke', join(dir, 'crlsigner.pem'), '-crl_reason', 'keyCompromise');
      crls['/ca.crl'] = await pki.gencrl();
      const r = await checker({ store: signerView }).check(indGood, pki.ca);
      expect(r.status).toBe('unknown');
      expect(r.reason).toMatch(/the certificate of the CRL signer CN=Revocation CRL Signer is revoked/);
    });
  });
});
