/**
 * Revocation against real peers on loopback: a real `openssl ocsp` responder over an `openssl ca`
 * database, a second one signing with a key nobody authorised, CRLs from `openssl ca -gencrl`
 * served by node:http, a responder that hangs, and an old answer replayed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeHttpFetcher, RevocationChecker, checkPath, revocationSeam, type CertInfo, type PathRevocation } from '../../src/pki/index.js';
import { tempDir } from '../helpers/config.js';
import { run } from '../helpers/pki-openssl.js';
import { freePort, httpServer, makeTestPki, startOpensslOcsp, stopProcess, type TestPki } from '../helpers/ocsp-pki.js';

describe('revocation: OCSP and CRL against openssl', () => {
  let cleanup: () => Promise<void>;
  let pki: TestPki;
  let ocsp: ChildProcess;
  let rogue: ChildProcess;
  let rogueUrl: string;
  let byCa: ChildProcess;
  let byCaUrl: string;
  let crlServer: Awaited<ReturnType<typeof httpServer>>;
  let fakeServer: Awaited<ReturnType<typeof httpServer>>;
  let fakeUrl: string;
  let crls: Record<string, Buffer> = {};
  let replay: Buffer;
  const fetch = nodeHttpFetcher();
  const checker = (o: Partial<ConstructorParameters<typeof RevocationChecker>[0]> = {}) => new RevocationChecker({ fetch, timeoutMs: 2_000, failureTtlMs: 0, ...o });
  const withUrls = (c: CertInfo, ocspUrls: string[], crlUrls: string[] = c.crlUrls): CertInfo => ({ ...c, ocspUrls, crlUrls });

  beforeAll(async () => {
    let dir: string;
    ({ dir, cleanup } = await tempDir('postern-revocation-'));
    const [ocspPort, roguePort, crlPort, fakePort, byCaPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    crlServer = await httpServer(crlPort, (path) => (crls[path] ? { body: crls[path]! } : { status: 404, body: Buffer.alloc(0) }));
    pki = await makeTestPki(dir, ocspPort, crlPort);
    crls['/ca.crl'] = await pki.gencrl();
    [ocsp, rogue, byCa] = await Promise.all([startOpensslOcsp(pki, ocspPort), startOpensslOcsp(pki, roguePort, { signer: 'rogue' }), startOpensslOcsp(pki, byCaPort, { signer: 'ca' })]);
    rogueUrl = `http://127.0.0.1:${roguePort}`;
    byCaUrl = `http://127.0.0.1:${byCaPort}`;
    // An answer fetched once by openssl's own client (with its own nonce), to be replayed.
    await run('openssl', ['ocsp', '-issuer', pki.caPem, '-cert', join(dir, 'good.pem'), '-url', pki.ocspUrl, '-respout', join(dir, 'old.der'), '-noverify']);
    replay = await readFile(join(dir, 'old.der'));
    fakeServer = await httpServer(fakePort, (path) => (path === '/hang' ? 'hang' : { body: replay }));
    fakeUrl = `http://127.0.0.1:${fakePort}`;
  });
  afterAll(async () => {
    await Promise.all([stopProcess(ocsp), stopProcess(rogue), stopProcess(byCa), crlServer?.close(), fakeServer?.close()]);
    await cleanup?.();
  });

  it('OCSP: good, revoked with reason and date, unknown', async () => {
    const c = checker({ crl: false });
    expect(await c.check(pki.good, pki.ca)).toEqual({ status: 'good', source: 'ocsp' });
    const r = await c.check(pki.revoked, pki.ca);
    expect(r).toMatchObject({ status: 'revoked', source: 'ocsp', revocationReason: 'keyCompromise' });
    expect(Math.abs(r.revokedAt!.getTime() - Date.now())).toBeLessThan(10 * 60_000);
    const u = await c.check(pki.unknown, pki.ca);
    expect(u).toMatchObject({ status: 'unknown', source: 'none' });
    expect(u.reason).toMatch(/does not know the certificate/);
  });

  it('OCSP answers signed by the issuer itself are trusted too; answers are cached until nextUpdate', async () => {
    let asked = 0;
    const counting: typeof fetch = (req) => (asked++, fetch(req));
    const c = checker({ crl: false, fetch: counting });
    const viaCa = withUrls(pki.revoked, [byCaUrl]);
    expect(await c.check(viaCa, pki.ca)).toMatchObject({ status: 'revoked', source: 'ocsp', revocationReason: 'keyCompromise' });
    expect(await c.check(viaCa, pki.ca)).toMatchObject({ status: 'revoked', source: 'ocsp' });
    expect(asked).toBe(1);
    // a day and a half later (openssl ocsp -ndays 1) the cached answer is gone: asked again
    await c.check(viaCa, pki.ca, { at: new Date(Date.now() + 36 * 3_600_000) });
    expect(asked).toBe(2);
  });

  it('soft and hard modes over a whole path (signer, CA)', async () => {
    const c = checker({ crl: false });
    const seen: PathRevocation[] = [];
    const soft = revocationSeam(c, 'soft', { onResult: (p) => seen.push(p) });
    const hard = revocationSeam(c, 'hard');
    expect(await soft([pki.good, pki.ca], new Date())).toEqual({ revoked: false });
    expect(await hard([pki.good, pki.ca], new Date())).toEqual({ revoked: false });
    for (const seam of [soft, hard]) {
      const r = await seam([pki.revoked, pki.ca], new Date());
      expect(r?.revoked).toBe(true);
      expect(r?.reason).toMatch(/CN=revoked .*revoked on .*keyCompromise/);
    }
    // unknown: soft lets the signature stand and reports it; hard makes it unusable, saying why
    expect(await soft([pki.unknown, pki.ca], new Date())).toBeUndefined();
    expect(seen.at(-1)).toMatchObject({ status: 'unknown' });
    expect(seen.at(-1)!.reason).toMatch(/CN=unknown.*unknown: .*does not know/);
    const h = await hard([pki.unknown, pki.ca], new Date());
    expect(h).toMatchObject({ revoked: true });
    expect(h!.reason).toMatch(/^not usable \(revocation hard-fail\): .*does not know/);
  });

  it('an expired OCSP answer (nextUpdate passed) is not trusted', async () => {
    const at = new Date(Date.now() + 2 * 86_400_000); // openssl ocsp -ndays 1
    const r = await checker({ crl: false }).check(pki.good, pki.ca, { at });
    expect(r.status).toBe('unknown');
    expect(r.reason).toMatch(/OCSP response not trusted: it expired at .*nextUpdate/);
  });

  it('an answer signed by a responder the issuer did not authorise is not trusted', async () => {
    const r = await checker({ crl: false }).check(withUrls(pki.revoked, [rogueUrl]), pki.ca);
    expect(r.status).toBe('unknown');
    expect(r.reason).toMatch(/not trusted: its responder certificate was not issued by the certificate's issuer/);
  });

  it('an old answer replayed (someone else\'s nonce) is not trusted', async () => {
    const r = await checker({ crl: false }).check(withUrls(pki.good, [fakeUrl]), pki.ca);
    expect(r.status).toBe('unknown');
    expect(r.reason).toMatch(/nonce is not the one we sent/);
  });

  it('a responder that hangs is cut off at the time-out, and CRLs take over', async () => {
    // The responder never answers, so only the 300 ms deadline can end the check: the reason names
    // it, and the test's own time-out guards against a check that never ends (no stopwatch: they
    // flake on a loaded machine).
    const hung = withUrls(pki.revoked, [`${fakeUrl}/hang`]);
    const r = await checker({ timeoutMs: 300, crl: false }).check(hung, pki.ca);
    expect(r).toMatchObject({ status: 'unknown' });
    expect(r.reason).toMatch(/no complete answer within 300 ms/);
    // The same, with CRLs on: the distribution point answers instead.
    expect(await checker({ timeoutMs: 300 }).check(hung, pki.ca)).toMatchObject({ status: 'revoked', source: 'crl', revocationReason: 'keyCompromise' });
  });

  it('CRL: good and revoked from the distribution point, cached until its nextUpdate', async () => {
    const c = checker({ ocsp: false });
    const before = crlServer.hits.get('/ca.crl') ?? 0;
    expect(await c.check(pki.good, pki.ca)).toEqual({ status: 'good', source: 'crl' });
    expect(await c.check(pki.revoked, pki.ca)).toMatchObject({ status: 'revoked', source: 'crl', revocationReason: 'keyCompromise' });
    expect(crlServer.hits.get('/ca.crl')! - before).toBe(1);
    // The unknown certificate is not on the CRL: by CRL it is good (the CRL knows only revocations).
    expect(await c.check(pki.unknown, pki.ca)).toEqual({ status: 'good', source: 'crl' });
  });

  it('CRL with a bad signature is refused', async () => {
    const bad = Buffer.from(crls['/ca.crl']!);
    bad[bad.length - 5] = bad[bad.length - 5]! ^ 0xff;
    crls['/bad.crl'] = bad;
    const r = await checker({ ocsp: false }).check(withUrls(pki.revoked, [], [pki.crlUrl.replace('/ca.crl', '/bad.crl')]), pki.ca);
    expect(r.status).toBe('unknown');
    expect(r.reason).toMatch(/refused: the CRL's signature does not verify/);
  });

  it('CRL whose nextUpdate passed is refused, and fetched again when the cached one expires', async () => {
    const ts = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
    const now = Date.now();
    crls['/stale.crl'] = await pki.gencrl('-crl_lastupdate', ts(new Date(now - 2 * 86_400_000)), '-crl_nextupdate', ts(new Date(now - 86_400_000)));
    const stale = await checker({ ocsp: false }).check(withUrls(pki.revoked, [], [pki.crlUrl.replace('/ca.crl', '/stale.crl')]), pki.ca);
    expect(stale.status).toBe('unknown');
    expect(stale.reason).toMatch(/the CRL expired at .*nextUpdate/);

    // A one-day CRL is cached; two days later the checker fetches again and gets the new one.
    const url = pki.crlUrl.replace('/ca.crl', '/rolling.crl');
    crls['/rolling.crl'] = await pki.gencrl('-crldays', '1');
    const c = checker({ ocsp: false, cacheTtlMs: 30 * 86_400_000 });
    const cert = withUrls(pki.revoked, [], [url]);
    expect((await c.check(cert, pki.ca)).status).toBe('revoked');
    expect((await c.check(cert, pki.ca)).status).toBe('revoked');
    expect(crlServer.hits.get('/rolling.crl')).toBe(1);
    crls['/rolling.crl'] = await pki.gencrl('-crldays', '10');
    expect((await c.check(cert, pki.ca, { at: new Date(now + 2 * 86_400_000) })).status).toBe('revoked');
    expect(crlServer.hits.get('/rolling.crl')).toBe(2);
  });

  it('checkPath reports each certificate of the chain', async () => {
    const p = await checkPath(checker(), [pki.good, pki.ca]);
    expect(p.status).toBe('good');
    expect(p.certificates).toHaveLength(1);
    expect(p.certificates[0]).toMatchObject({ subject: 'CN=good', result: { status: 'good', source: 'ocsp' } });
  });
});
