/**
 * The key and CA routes through the admin app (app.inject with a signed-in session): what the
 * schemas and body limits refuse before a handler runs (hostile fingerprints, oversized bodies,
 * short export passwords, stray fields), downloads as files, and the audit trail as the app
 * writes it (account, client, channel, before/after), never holding a secret.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCa } from '../../../src/keystore/index.js';
import { adminHarness, type AdminHarness } from '../../helpers/admin.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../../helpers/pki-openssl.js';

describe('admin API over HTTP: certificates, OpenPGP keys, internal CA', () => {
  let h: AdminHarness;
  let ca: Issued;
  let bob: Issued;
  let caFp: string;
  let bobFp: string;
  const fp = async (pem: string) => (await run('openssl', ['x509', '-in', pem, '-noout', '-fingerprint', '-sha256'])).stdout.trim().split('=')[1]!.replace(/:/g, '').toLowerCase();

  beforeAll(async () => {
    h = await adminHarness({ prefix: 'postern-keys-http-' });
    ca = await opensslCa(h.dir, 'Http Partner');
    bob = await opensslMailbox(h.dir, ca, 'bob@example.com');
    caFp = await fp(ca.cert);
    bobFp = await fp(bob.cert);
  }, 60_000);
  afterAll(() => h?.close());

  it('imports as the User Operator; the audit trail names the account, client and channel, never the key', async () => {
    const user = await h.as('user_operator');
    const key = await readFile(bob.key, 'utf8');
    const res = await h.call(user, 'POST', '/certificates/import', { pem: `${await readFile(ca.cert, 'utf8')}${await readFile(bob.cert, 'utf8')}`, key });
    expect(res.statusCode, res.body).toBe(200);
    expect((res.json() as { certificates: { status: string }[] }).certificates.map((c) => c.status)).toEqual(['added', 'added']);
    const trail = await h.store.auditLog({ object: `cert:${bobFp}` });
    expect(trail.find((a) => a.action === 'cert.import')).toMatchObject({ actor: 'op-user_operator', via: 'api', client: '127.0.0.1' });
    const body = key.split('\n')[1]!;
    expect(JSON.stringify(await h.store.auditLog({}))).not.toContain(body);
  });

  it('trusts a CA as the CA Operator with before and after in the trail; the User Operator may neither trust it nor delete the anchor', async () => {
    expect((await h.call(await h.as('user_operator'), 'POST', `/certificates/${caFp}/trust`)).statusCode).toBe(403);
    const res = await h.call(await h.as('ca_operator'), 'POST', `/certificates/${caFp}/trust`);
    expect(res.statusCode, res.body).toBe(200);
    const [rec] = (await h.store.auditLog({ object: `cert:${caFp}` })).filter((a) => a.action === 'cert.trust');
    expect(rec).toMatchObject({ actor: 'op-ca_operator', before: '{"trusted":false}', after: '{"trusted":true}' });
    // Nor may the User Operator end that trust by deleting the anchor: it must be distrusted first.
    const del = await h.call(await h.as('user_operator'), 'POST', `/certificates/${caFp}/delete`, {});
    expect(del.statusCode, del.body).toBe(409);
    expect((del.json() as { error: string }).error).toMatch(/distrust it first/);
    expect((await h.store.trustAnchors()).map((c) => c.fingerprint)).toEqual([caFp]);
  });

  it('refuses malformed fingerprints, stray fields, short passwords and bad base64 with 400 before any handler', async () => {
    const admin = await h.as('administrator');
    for (const bad of ['xyz', bobFp.slice(0, 63), `${bobFp}0`, '..%2F..%2Fetc%2Fpasswd', `${'g'.repeat(64)}`, `${bobFp.slice(0, 60)}%00abc`]) {
      const res = await h.call(admin, 'GET', `/certificates/${bad}`);
      expect(res.statusCode, `${bad}: ${res.body}`).toBe(400);
    }
    expect((await h.call(admin, 'GET', `/pgp/${'A'.repeat(39)}`)).statusCode).toBe(400);
    expect((await h.call(admin, 'GET', '/certificates', undefined, { expiringWithin: '-1' })).statusCode).toBe(400);
    expect((await h.call(admin, 'GET', '/certificates', undefined, { sort: 'x' })).statusCode).toBe(400);
    const short = await h.call(admin, 'POST', `/certificates/${bobFp}/export-private`, { password: 'short' });
    expect(short.statusCode).toBe(400);
    expect(short.body).not.toContain('short"');
    expect((await h.call(admin, 'POST', `/certificates/${bobFp}/export-private`, { password: 'long enough password', extra: 1 })).statusCode).toBe(400);
    expect((await h.call(admin, 'POST', '/certificates/import', { base64: 'not base64!' })).statusCode).toBe(400);
    expect((await h.call(admin, 'POST', '/ca/issue', { address: 'x@example.com', name: 'Evil\r\nName' })).statusCode).toBe(400);
  });

  it('refuses oversized bodies with 413: a password body over 4 KiB, an import over its cap', async () => {
    const admin = await h.as('administrator');
    expect((await h.call(admin, 'POST', `/certificates/${bobFp}/export-private`, { password: 'p'.repeat(8 * 1024) })).statusCode).toBe(413);
    expect((await h.call(admin, 'POST', '/certificates/import', { pem: 'A'.repeat(600 * 1024) })).statusCode).toBe(413);
    expect((await h.call(admin, 'POST', '/pgp/import', { armored: 'A'.repeat(600 * 1024) })).statusCode).toBe(413);
  });

  it('answers garbage imports with 400 and a reason, never 500', async () => {
    const admin = await h.as('administrator');
    for (const body of [
      { pem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' },
      { pem: '-----BEGIN PKCS7-----\nMIIB\n-----END PKCS7-----\n' },
      { base64: Buffer.from([0x30, 0x82, 0xff, 0xff, 0x02, 0x01]).toString('base64') },
      { base64: Buffer.alloc(3000, 0x30).toString('base64') },
      { pem: '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n', password: 'x' },
    ]) {
      const res = await h.call(admin, 'POST', '/certificates/import', body);
      expect(res.statusCode, res.body).toBe(400);
      expect((res.json() as { error: string }).error).toMatch(/^nothing imported: /);
    }
    for (const armored of ['-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n=AAAA\n-----END PGP PUBLIC KEY BLOCK-----\n', '\u0000\u0001garbage']) {
      const res = await h.call(admin, 'POST', '/pgp/import', { armored });
      expect(res.statusCode, res.body).toBe(400);
    }
  });

  it('downloads certificates, the PKCS#12 and the CRL as files with their types', async () => {
    const admin = await h.as('administrator');
    const der = await h.call(admin, 'GET', `/certificates/${bobFp}/export`, undefined, { format: 'der' });
    expect(der.statusCode).toBe(200);
    expect(der.headers['content-type']).toBe('application/pkix-cert');
    expect(der.headers['content-disposition']).toBe(`attachment; filename="${bobFp.slice(0, 16)}.cer"`);
    expect(der.rawPayload.equals((await run('openssl', ['x509', '-in', bob.cert, '-outform', 'DER'], { encoding: 'buffer' })).stdout as unknown as Buffer)).toBe(true);

    // The Auditor reads, but the private key is not for them.
    const auditor = await h.as('auditor');
    expect((await h.call(auditor, 'GET', `/certificates/${bobFp}`)).statusCode).toBe(200);
    expect((await h.call(auditor, 'POST', `/certificates/${bobFp}/export-private`, { password: 'long enough password' })).statusCode).toBe(403);
    const p12 = await h.call(await h.as('user_operator'), 'POST', `/certificates/${bobFp}/export-private`, { password: 'long enough password' });
    expect(p12.statusCode).toBe(200);
    expect(p12.headers['content-type']).toBe('application/x-pkcs12');
    expect(JSON.stringify(await h.store.auditLog({}))).not.toContain('long enough password');

    await initCa(h.store, { commonName: 'Http Mail CA', keyType: 'ec-p256', actor: 'test' });
    const caOp = await h.as('ca_operator');
    expect((await h.call(caOp, 'POST', '/ca/crl/publish', {})).statusCode).toBe(200);
    const crl = await h.call(caOp, 'GET', '/ca/crl');
    expect(crl.statusCode).toBe(200);
    expect(crl.headers['content-type']).toBe('application/pkix-crl');
    expect(crl.rawPayload[0]).toBe(0x30);
  });
});
