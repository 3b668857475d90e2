/**
 * The checker's logic with fakes: CRLs built and signed here (internal CA code), a fake fetcher
 * counting downloads — caching until nextUpdate, refresh before it, the old CRL kept while the
 * new one cannot be had, failures remembered, garbage never thrown; the store view's
 * precedence; the seam's modes and summaries; the HTTP fetcher's body limit; the config section.
 */
import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfigText } from '../../../src/config/load.js';
import {
  buildCrl, createCa, issueSmimeCertificate, nodeHttpFetcher, parseCertificate, pathUsable, revocationSeam, revocationSummary,
  RevocationChecker, checkPath, parseCrl, type CertInfo, type HttpFetcher, type HttpRequest,
} from '../../../src/pki/index.js';

const URL_ = 'http://crl.test.invalid/ca.crl';
const DAY = 86_400_000;

describe('RevocationChecker (fakes)', () => {
  let ca: CertInfo;
  let caKey: Buffer;
  let alice: CertInfo;
  let bob: CertInfo;
  const t0 = new Date('2030-01-01T00:00:00Z');

  beforeAll(async () => {
    const m = await createCa({ commonName: 'Unit CA', now: new Date(t0.getTime() - DAY) });
    ca = parseCertificate(m.certDer);
    caKey = m.keyPkcs8;
    const issue = async (address: string) => parseCertificate((await issueSmimeCertificate({ ca: m, address, keyType: 'ec-p256', crlUrl: URL_, now: new Date(t0.getTime() - DAY) })).certDer);
    [alice, bob] = await Promise.all([issue('alice@example.com'), issue('bob@example.com')]);
  });

  const crl = (thisUpdate: Date, days: number, revoked: CertInfo[] = []) =>
    buildCrl({ issuer: ca, issuerKey: caKey, entries: revoked.map((c) => ({ serial: c.serial, revokedAt: thisUpdate, reason: 'superseded' })), thisUpdate, nextUpdate: new Date(thisUpdate.getTime() + days * DAY), crlNumber: BigInt(thisUpdate.getTime()) });

  function fakeFetch(answer: () => Buffer | Error) {
    const calls: HttpRequest[] = [];
    const fetch: HttpFetcher = async (req) => {
      calls.push(req);
      const a = answer();
      if (a instanceof Error) throw a;
      return { status: 200, body: a };
    };
    return { fetch, calls };
  }

  it('caches a CRL, refreshes it before nextUpdate, and keeps the old one while the new one cannot be had', async () => {
    let current: Buffer | Error = await crl(t0, 10, [alice]);
    const f = fakeFetch(() => current);
    const c = new RevocationChecker({ fetch: f.fetch, ocsp: false, cacheTtlMs: 30 * DAY, failureTtlMs: 0 });
    const at = (days: number) => ({ at: new Date(t0.getTime() + days * DAY) });
    expect(await c.check(alice, ca, at(0))).toMatchObject({ status: 'revoked', source: 'crl', revocationReason: 'superseded' });
    expect(await c.check(bob, ca, at(1))).toEqual({ status: 'good', source: 'crl' });
    expect(f.calls).toHaveLength(1);
    expect(f.calls[0]).toMatchObject({ method: 'GET', url: URL_, timeoutMs: 5_000 });
    // Within the last tenth of its period (capped at an hour): fetched again; the server is down, the old one serves.
    current = new Error('connection refused');
    expect(await c.check(bob, ca, { at: new Date(t0.getTime() + 10 * DAY - 30 * 60_000) })).toEqual({ status: 'good', source: 'crl' });
    expect(f.calls).toHaveLength(2);
    // Past nextUpdate with no successor: unknown, saying why.
    const late = await c.check(bob, ca, at(11));
    expect(late.status).toBe('unknown');
    expect(late.reason).toMatch(/connection refused/);
  });

  it('remembers a failed URL for failureTtl, so a dead server costs one attempt', async () => {
    const f = fakeFetch(() => new Error('timed out'));
    const c = new RevocationChecker({ fetch: f.fetch, ocsp: false, failureTtlMs: 60_000 });
    for (const cert of [alice, bob, alice]) expect((await c.check(cert, ca, { at: t0 })).status).toBe('unknown');
    expect(f.calls).toHaveLength(1);
    expect((await c.check(bob, ca, { at: t0 })).reason).toMatch(/not asked again until/);
  });

  it('never throws on garbage: a CRL or OCSP answer that is not one is a reason', async () => {
    const garbage = fakeFetch(() => Buffer.from('<html>captive portal</html>'));
    const c = new RevocationChecker({ fetch: garbage.fetch, failureTtlMs: 0 });
    const withOcsp = { ...alice, ocspUrls: ['http://ocsp.test.invalid'] };
    const r = await c.check(withOcsp, ca, { at: t0 });
    expect(r.status).toBe('unknown');
    expect(r.reason).toMatch(/OCSP response not trusted: malformed/);
    expect(r.reason).toMatch(/not a CRL/);
  });

  it('a CRL signed by another CA with the same name is refused', async () => {
    const other = await createCa({ commonName: 'Unit CA', now: new Date(t0.getTime() - DAY) });
    const forged = await buildCrl({ issuer: parseCertificate(other.certDer), issuerKey: other.keyPkcs8, entries: [], thisUpdate: t0, nextUpdate: new Date(t0.getTime() + DAY), crlNumber: 1n });
    const c = new RevocationChecker({ fetch: fakeFetch(() => forged).fetch, ocsp: false, failureTtlMs: 0 });
    const r = await c.check(alice, ca, { at: t0 });
    expect(r.status).toBe('unknown');
    expect(r.reason).toMatch(/signature does not verify/);
  });

  it('the internal CA\'s own records come first, imported CRLs next, offline', async () => {
    const f = fakeFetch(() => new Error('must not be asked'));
    const imported = await crl(t0, 10, [bob]);
    const c = new RevocationChecker({
      fetch: f.fetch,
      store: {
        importedCrls: async (issuer) => (issuer.fingerprint === ca.fingerprint ? [{ der: imported, source: 'import:ca.crl' }] : []),
        localStatus: async (cert) => (cert.fingerprint === alice.fingerprint ? { revoked: true, revokedAt: t0, reason: 'keyCompromise' } : undefined),
      },
    });
    expect(await c.check(alice, ca, { at: t0 })).toEqual({ status: 'revoked', source: 'local', revokedAt: t0, revocationReason: 'keyCompromise' });
    expect(await c.check(bob, ca, { at: t0 })).toMatchObject({ status: 'revoked', source: 'crl' });
    expect(f.calls).toHaveLength(0);
  });

  it('no revocation information at all is unknown, and says so', async () => {
    const bare = { ...alice, crlUrls: [], ocspUrls: [] };
    const r = await new RevocationChecker({ fetch: fakeFetch(() => Buffer.alloc(0)).fetch }).check(bare, ca, { at: t0 });
    expect(r).toMatchObject({ status: 'unknown', source: 'none' });
    expect(r.reason).toMatch(/names no OCSP responder or CRL distribution point/);
  });

  it('seam: soft lets unknown through and reports it, hard refuses it; summaries; an anchor alone is good', async () => {
    const bare = { ...alice, crlUrls: [], ocspUrls: [] };
    const c = new RevocationChecker({ fetch: fakeFetch(() => Buffer.alloc(0)).fetch });
    const p = await checkPath(c, [bare, ca], { at: t0 });
    expect(pathUsable(p, 'soft')).toBe(true);
    expect(pathUsable(p, 'hard')).toBe(false);
    expect(revocationSummary(p)).toMatch(/^unknown: the revocation status of CN=alice@example\.com/);
    let reported = '';
    expect(await revocationSeam(c, 'soft', { onResult: (r) => (reported = revocationSummary(r)) })([bare, ca], t0)).toBeUndefined();
    expect(reported).toMatch(/^unknown/);
    expect(await revocationSeam(c, 'hard')([bare, ca], t0)).toMatchObject({ revoked: true, reason: expect.stringMatching(/hard-fail/) });
    expect(revocationSummary(await checkPath(c, [ca]))).toMatch(/^good \(nothing to check/);
  });

  it('builds a CRL that parses back with reasons and number', async () => {
    const p = parseCrl(await crl(t0, 7, [alice, bob]));
    expect(p.issuer).toBe(ca.subject);
    expect(p.entries.size).toBe(2);
    expect([...p.entries.values()][0]).toMatchObject({ reason: 'superseded' });
    expect(p.crlNumber).toBe(BigInt(t0.getTime()));
    expect(p.nextUpdate!.getTime() - p.thisUpdate.getTime()).toBe(7 * DAY);
  });
});

describe('nodeHttpFetcher', () => {
  const server = createServer((req, res) => {
    if (req.url === '/big') res.end(Buffer.alloc(100_000));
    else res.end('ok');
  });
  let base: string;
  beforeAll(() => new Promise<void>((r) => server.listen(0, '127.0.0.1', () => ((base = `http://127.0.0.1:${(server.address() as { port: number }).port}`), r()))));
  afterAll(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));

  it('refuses a body over the limit and other schemes', async () => {
    const f = nodeHttpFetcher();
    expect((await f({ url: `${base}/small`, method: 'GET', timeoutMs: 2_000, maxBytes: 10 })).body.toString()).toBe('ok');
    await expect(f({ url: `${base}/big`, method: 'GET', timeoutMs: 2_000, maxBytes: 1_000 })).rejects.toThrow(/more than the limit of 1000/);
    await expect(f({ url: 'ldap://ldap.example/cn=CA', method: 'GET', timeoutMs: 2_000, maxBytes: 1_000 })).rejects.toThrow(/ldap: URLs are not fetched/);
  });
});

describe('revocation config', () => {
  it('defaults to soft both ways and reads durations', async () => {
    const base = 'data_dir: .\npolicy: /dev/null\n';
    const d = await checkConfigText(base, '/tmp/postern-rev.yaml');
    // the policy file is /dev/null (empty): fine for the loader
    expect(d.ok && d.config.revocation).toEqual({ mode: { inbound: 'soft', outbound: 'soft' }, timeout: 5_000, ocsp: true, crl: true, cache_ttl: 3_600_000 });
    const h = await checkConfigText(`${base}revocation: { mode: { outbound: hard }, timeout: 2s, cache_ttl: 10m, ocsp: false }\n`, '/tmp/postern-rev.yaml');
    expect(h.ok && h.config.revocation).toEqual({ mode: { inbound: 'soft', outbound: 'hard' }, timeout: 2_000, ocsp: false, crl: true, cache_ttl: 600_000 });
    const bad = await checkConfigText(`${base}revocation: { mode: { outbound: strict } }\n`, '/tmp/postern-rev.yaml');
    expect(bad.ok).toBe(false);
  });
});
