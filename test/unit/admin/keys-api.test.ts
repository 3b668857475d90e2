/**
 * The admin API's certificate routes (api/keys.ts) against a real keystore in a temporary data
 * dir, with certificates and keys made by openssl (an independent issuer), and what they export
 * read back by openssl: the PEM and DER of a certificate, the PKCS#12 opened with its password.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEY_ROUTES } from '../../../src/admin/api/keys.js';
import type { ApiRequest, ApiRoute } from '../../../src/admin/routes.js';
import { file, handlerHarness, json, refusal, type HandlerHarness } from '../../helpers/admin-handlers.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../../helpers/pki-openssl.js';

interface CertJson {
  fingerprint: string;
  subject: string;
  addresses: string[];
  isCA: boolean;
  trusted: boolean;
  hasKey: boolean;
  flags: string[];
  revocation?: { status: string } | null;
}
interface Report {
  certificates: { fingerprint: string; status: string; isCA: boolean; trusted: boolean; problems: string[]; warnings: string[] }[];
  keys: { status: string; fingerprint?: string; problem?: string }[];
  unreadable: { input: string; problem: string }[];
}


const sha256Hex = async (pemFile: string) =>
  (await run('openssl', ['x509', '-in', pemFile, '-noout', '-fingerprint', '-sha256'])).stdout.trim().split('=')[1]!.replace(/:/g, '').toLowerCase();

describe('admin API: certificates', () => {
  let dir: string;
  let admin: HandlerHarness;
  let ca: Issued;
  let bob: Issued;
  let carol: Issued;
  let caFp: string;
  let bobFp: string;
  const call = (method: ApiRoute['method'], url: string, req?: Partial<Omit<ApiRequest, 'caller'>>) => admin.call(KEY_ROUTES, method, url, req);

  beforeAll(async () => {
    admin = await handlerHarness();
    dir = admin.dir;
    ca = await opensslCa(dir, 'Partner');
    bob = await opensslMailbox(dir, ca, 'bob@example.com');
    carol = await opensslMailbox(dir, ca, 'carol@partner.example', 'ec');
    caFp = await sha256Hex(ca.cert);
    bobFp = await sha256Hex(bob.cert);
  });
  afterAll(() => admin?.close());

  it('imports PEM certificates with a private key, reporting each as the CLI does, and audits what went in', async () => {
    const pem = `${await readFile(ca.cert, 'utf8')}${await readFile(bob.cert, 'utf8')}`;
    const r = json<Report>(await call('POST', '/certificates/import', { body: { pem, key: await readFile(bob.key, 'utf8') } }));
    expect(r.certificates.map((c) => [c.fingerprint, c.status, c.isCA, c.trusted])).toEqual([
      [caFp, 'added', true, false],
      [bobFp, 'added', false, false],
    ]);
    expect(r.certificates[0]!.warnings.join(' ')).toMatch(/not a trust anchor/);
    expect(r.keys).toEqual([expect.objectContaining({ status: 'added', fingerprint: bobFp, algorithm: 'rsa', bits: 2048 })]);
    expect(admin.audits.map((a) => [a.action, a.object])).toEqual([
      ['cert.import', `cert:${caFp}`],
      ['cert.import', `cert:${bobFp}`],
      ['cert.import-key', `cert:${bobFp}`],
    ]);

    // Again: duplicates, nothing changes and nothing is audited.
    const again = json<Report>(await call('POST', '/certificates/import', { body: { pem } }));
    expect(again.certificates.map((c) => c.status)).toEqual(['duplicate', 'duplicate']);
    expect(admin.audits).toHaveLength(3);
  });

  it('imports a PKCS#12 made by openssl (base64, with its password) and refuses a wrong password, garbage and a key without certificate with 400', async () => {
    const p12 = join(dir, 'carol.p12');
    await run('openssl', ['pkcs12', '-export', '-in', carol.cert, '-inkey', carol.key, '-certfile', ca.cert, '-passout', 'pass:carol-p12-pass', '-out', p12]);
    const base64 = (await readFile(p12)).toString('base64').replace(/.{76}/g, '$&\n');

    const wrong = await refusal(call('POST', '/certificates/import', { body: { base64, password: 'not-it' } }));
    expect(wrong.status).toBe(400);
    expect(wrong.message).toMatch(/nothing imported: .*password/i);
    expect(wrong.message).not.toContain('not-it');

    const r = json<Report>(await call('POST', '/certificates/import', { body: { base64, password: 'carol-p12-pass' } }));
    expect(r.certificates.find((c) => !c.isCA)).toMatchObject({ status: 'added', fingerprint: await sha256Hex(carol.cert) });
    expect(r.certificates.find((c) => c.isCA)).toMatchObject({ status: 'duplicate', fingerprint: caFp });
    expect(r.keys).toEqual([expect.objectContaining({ status: 'added', algorithm: 'ec', curve: 'P-256' })]);

    for (const body of [
      { base64: Buffer.from('hello, not DER').toString('base64') },
      { base64: (await readFile(p12)).subarray(0, 200).toString('base64') },
      { pem: '-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END CERTIFICATE-----\n' },
      { pem: 'just text' },
    ]) {
      const e = await refusal(call('POST', '/certificates/import', { body }));
      expect(e.status).toBe(400);
      expect(e.message).toMatch(/^nothing imported: /);
    }
    const other = await opensslMailbox(dir, ca, 'dan@example.com');
    const lonely = await refusal(call('POST', '/certificates/import', { body: { pem: await readFile(other.key, 'utf8') } }));
    expect(lonely.message).toMatch(/matches none of the certificates/);
    const both = await refusal(call('POST', '/certificates/import', { body: { pem: 'x', base64: 'eA==' } }));
    expect(both.status).toBe(400);
  });

  it('refuses a certificate that breaks the import rules, naming every reason, and stores nothing', async () => {
    const key = join(dir, 'weak.key');
    const cert = join(dir, 'weak.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:1024', '-nodes', '-subj', '/CN=Weak', '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=serverAuth', '-days', '10', '-keyout', key, '-out', cert]);
    const e = await refusal(call('POST', '/certificates/import', { body: { pem: await readFile(cert, 'utf8') } }));
    expect(e.status).toBe(400);
    const problems = (e.details as Report).certificates[0]!.problems.join('\n');
    expect(problems).toMatch(/no e-mail address/);
    expect(problems).toMatch(/1024 bits is too weak/);
    expect(problems).toMatch(/emailProtection/);
    expect((await admin.ctx.store.listCertificates()).some((c) => c.subject.includes('Weak'))).toBe(false);
  });

  it('lists by address, CA, key and expiry, with the offline revocation state', async () => {
    const list = async (query: Record<string, unknown>) => json<{ total: number; certificates: CertJson[] }>(await call('GET', '/certificates', { query }));
    const all = await list({});
    expect(all.total).toBe(3);
    expect(all.certificates.find((c) => c.fingerprint === bobFp)).toMatchObject({ addresses: ['bob@example.com'], hasKey: true, isCA: false, flags: ['key'], revocation: { status: 'unknown' } });
    expect(all.certificates.find((c) => c.fingerprint === caFp)).toMatchObject({ isCA: true, revocation: null });
    expect((await list({ ca: true })).certificates.map((c) => c.fingerprint)).toEqual([caFp]);
    expect((await list({ ca: false, key: true })).total).toBe(2);
    expect((await list({ key: false })).certificates.map((c) => c.fingerprint)).toEqual([caFp]);
    expect((await list({ address: 'BOB@example.com' })).certificates.map((c) => c.fingerprint)).toEqual([bobFp]);
    // openssl made them valid for 30 days.
    expect((await list({ expiringWithin: 29 })).total).toBe(0);
    expect((await list({ expiringWithin: 31 })).total).toBe(3);
    expect((await list({ limit: 1, offset: 1 })).certificates).toHaveLength(1);
    expect((await list({ revocation: 'none' })).certificates[0]).not.toHaveProperty('revocation');
    // Online checks ask a responder per certificate: a page of at most 100.
    const tooMany = await refusal(call('GET', '/certificates', { query: { revocation: 'online' } }));
    expect(tooMany.status).toBe(400);
    expect(tooMany.message).toMatch(/at most 100/);
    // openssl's certificates name no responder and no distribution point: online says unknown, at once.
    expect((await list({ revocation: 'online', limit: 100, address: 'bob@example.com' })).certificates[0]!.revocation).toMatchObject({ status: 'unknown' });
  });

  it('shows a certificate with its chain, and trusts and distrusts its CA with before and after in the audit trail', async () => {
    const show = async () => json<{ chain: { state: string; issuers: { fingerprint: string; trusted: boolean }[] }; pem: string; internalCa: boolean }>(await call('GET', '/certificates/:fingerprint', { params: { fingerprint: bobFp.toUpperCase() } }));
    const before = await show();
    expect(before.chain).toEqual({ state: 'untrusted', issuers: [expect.objectContaining({ fingerprint: caFp, trusted: false })] });
    expect(before.pem).toBe(await readFile(bob.cert, 'utf8'));
    expect(before.internalCa).toBe(false);

    const notCa = await refusal(call('POST', '/certificates/:fingerprint/trust', { params: { fingerprint: bobFp } }));
    expect(notCa.status).toBe(409);

    const n = admin.audits.length;
    expect(json(await call('POST', '/certificates/:fingerprint/trust', { params: { fingerprint: caFp } }))).toEqual({ fingerprint: caFp, trusted: true, changed: true });
    expect((await show()).chain.state).toBe('trusted');
    expect(admin.audits.slice(n)).toEqual([expect.objectContaining({ action: 'cert.trust', object: `cert:${caFp}`, before: '{"trusted":false}', after: '{"trusted":true}' })]);
    // Trusting it again changes nothing and is not a change in the trail.
    expect(json(await call('POST', '/certificates/:fingerprint/trust', { params: { fingerprint: caFp } }))).toMatchObject({ changed: false });
    expect(admin.audits).toHaveLength(n + 1);
    expect((await admin.ctx.store.trustAnchors()).map((c) => c.fingerprint)).toEqual([caFp]);

    await call('POST', '/certificates/:fingerprint/distrust', { params: { fingerprint: caFp } });
    expect(admin.audits.at(-1)).toMatchObject({ action: 'cert.distrust', before: '{"trusted":true}', after: '{"trusted":false}' });
    expect(await admin.ctx.store.trustAnchors()).toEqual([]);

    const missing = await refusal(call('GET', '/certificates/:fingerprint', { params: { fingerprint: 'b'.repeat(64) } }));
    expect(missing.status).toBe(404);
  });

  it('exports the certificate as PEM and DER that openssl reads as the original', async () => {
    const pem = file(await call('GET', '/certificates/:fingerprint/export', { params: { fingerprint: bobFp }, query: {} }));
    expect(pem).toMatchObject({ type: 'application/x-pem-file', name: `${bobFp.slice(0, 16)}.pem` });
    expect(pem.bytes.toString()).toBe(await readFile(bob.cert, 'utf8'));
    const der = file(await call('GET', '/certificates/:fingerprint/export', { params: { fingerprint: bobFp }, query: { format: 'der' } }));
    expect(der.type).toBe('application/pkix-cert');
    await writeFile(join(dir, 'bob.der'), der.bytes);
    const fromDer = (await run('openssl', ['x509', '-inform', 'DER', '-in', join(dir, 'bob.der'), '-noout', '-fingerprint', '-sha256'])).stdout;
    expect(fromDer.split('=')[1]!.trim().replace(/:/g, '').toLowerCase()).toBe(bobFp);
  });

  it('exports the private key only as a PKCS#12 under the password given, which openssl opens (and a wrong password does not)', async () => {
    const n = admin.audits.length;
    const p12 = file(await call('POST', '/certificates/:fingerprint/export-private', { params: { fingerprint: bobFp }, body: { password: 'bobs export password' } }));
    expect(p12).toMatchObject({ type: 'application/x-pkcs12', name: `${bobFp.slice(0, 16)}.p12` });
    await writeFile(join(dir, 'bob-out.p12'), p12.bytes);
    const { stdout } = await run('openssl', ['pkcs12', '-in', join(dir, 'bob-out.p12'), '-passin', 'pass:bobs export password', '-nodes']);
    expect(stdout).toMatch(/BEGIN PRIVATE KEY/);
    expect(stdout).toMatch(/subject=.*bob@example\.com/);
    // The chain the store proves goes along.
    expect(stdout).toMatch(/subject=.*Partner Root/);
    const keyOut = join(dir, 'bob-out.key');
    await writeFile(keyOut, stdout.slice(stdout.indexOf('-----BEGIN PRIVATE KEY-----')));
    const modulus = async (args: string[]) => (await run('openssl', args)).stdout.trim();
    expect(await modulus(['rsa', '-in', keyOut, '-noout', '-modulus'])).toBe(await modulus(['rsa', '-in', bob.key, '-noout', '-modulus']));
    await expect(run('openssl', ['pkcs12', '-in', join(dir, 'bob-out.p12'), '-passin', 'pass:wrong password!', '-nodes'])).rejects.toThrow();

    expect(admin.audits.slice(n)).toEqual([expect.objectContaining({ action: 'cert.export-private', object: `cert:${bobFp}` })]);
    expect(JSON.stringify(admin.audits)).not.toContain('bobs export password');
    expect((await admin.ctx.store.auditLog(`cert:${bobFp}`)).map((a) => [a.actor, a.action])).toContainEqual(['ops', 'export']);

    const noKey = await refusal(call('POST', '/certificates/:fingerprint/export-private', { params: { fingerprint: caFp }, body: { password: 'long enough password' } }));
    expect(noKey.status).toBe(404);
  });

  it('deletes a certificate, with its key when asked', async () => {
    const carolFp = await sha256Hex(carol.cert);
    expect(json(await call('POST', '/certificates/:fingerprint/delete', { params: { fingerprint: carolFp }, body: {} }))).toEqual({ deleted: carolFp, keyDeleted: false, keyKept: true });
    expect(json(await call('POST', '/certificates/:fingerprint/delete', { params: { fingerprint: bobFp }, body: { withKey: true } }))).toEqual({ deleted: bobFp, keyDeleted: true, keyKept: false });
    expect(admin.audits.at(-1)).toMatchObject({ action: 'cert.delete', object: `cert:${bobFp}` });
    expect((await refusal(call('GET', '/certificates/:fingerprint', { params: { fingerprint: bobFp } }))).status).toBe(404);
    // Bob's key went with the certificate: importing the certificate again brings no key back.
    const again = json<Report>(await call('POST', '/certificates/import', { body: { pem: await readFile(bob.cert, 'utf8') } }));
    expect(again.certificates[0]!.status).toBe('added');
    expect(json<{ hasKey: boolean }>(await call('GET', '/certificates/:fingerprint', { params: { fingerprint: bobFp } })).hasKey).toBe(false);
  });
});
