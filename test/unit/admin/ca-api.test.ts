/**
 * The admin API's internal CA routes (api/ca.ts) against a real keystore, with openssl as the
 * independent judge: the certificates issued verify for S/MIME under the CA's certificate, and the
 * CRL the API publishes and hands out is signed by the CA and lists what was revoked.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CA_ROUTES } from '../../../src/admin/api/ca.js';
import { KEY_ROUTES } from '../../../src/admin/api/keys.js';
import type { ApiRequest, ApiRoute } from '../../../src/admin/routes.js';
import { initCa } from '../../../src/keystore/index.js';
import { file, handlerHarness, json, refusal, type HandlerHarness } from '../../helpers/admin-handlers.js';
import { run } from '../../helpers/pki-openssl.js';

interface Issued {
  fingerprint: string;
  subject: string;
  addresses: string[];
  serial: string;
  pem: string;
}


describe('admin API: internal CA', () => {
  let admin: HandlerHarness;
  let dir: string;
  const call = (method: ApiRoute['method'], url: string, req?: Partial<Omit<ApiRequest, 'caller'>>) => admin.call([...CA_ROUTES, ...KEY_ROUTES], method, url, req);

  beforeAll(async () => {
    admin = await handlerHarness({ ca: { key_type: 'rsa-2048', validity: 730 * 86_400_000, crl_url: 'http://gw.test.example/crl/ca.crl' } });
    dir = admin.dir;
  });
  afterAll(() => admin?.close());

  it('says there is no CA yet: 404 to read, 409 to change', async () => {
    expect((await refusal(call('GET', '/ca'))).status).toBe(404);
    expect((await refusal(call('GET', '/ca/crl'))).status).toBe(404);
    const e = await refusal(call('POST', '/ca/issue', { body: { address: 'bob@example.com' } }));
    expect(e.status).toBe(409);
    expect(e.message).toMatch(/postern ca init/);
    expect((await refusal(call('POST', '/ca/crl/publish', { body: {} }))).status).toBe(409);
    expect(admin.audits).toEqual([]);
  });

  it('shows the CA and issues certificates that openssl verifies for S/MIME under it', async () => {
    await initCa(admin.ctx.store, { commonName: 'Example Mail CA', organization: 'Example Ltd', keyType: 'ec-p256', actor: 'cli:test' });
    const ca = json<{ fingerprint: string; subject: string; pem: string; crl: unknown; crlUrl: string; revocations: unknown[] }>(await call('GET', '/ca'));
    expect(ca).toMatchObject({ subject: 'CN=Example Mail CA,O=Example Ltd', crl: null, crlUrl: 'http://gw.test.example/crl/ca.crl', revocations: [] });
    await writeFile(join(dir, 'ca.pem'), ca.pem);

    const bob = json<Issued>(await call('POST', '/ca/issue', { body: { address: 'Bob@EXAMPLE.com', name: 'Bob Example', keyType: 'ec-p256' } }));
    expect(bob.addresses).toEqual(['Bob@example.com']);
    expect(bob.subject).toMatch(/CN=Bob Example/);
    await writeFile(join(dir, 'bob.pem'), bob.pem);
    expect((await run('openssl', ['verify', '-purpose', 'smimesign', '-CAfile', join(dir, 'ca.pem'), join(dir, 'bob.pem')])).stdout).toMatch(/bob\.pem: OK/);
    expect((await run('openssl', ['x509', '-in', join(dir, 'bob.pem'), '-noout', '-text'])).stdout).toContain('http://gw.test.example/crl/ca.crl');
    expect(admin.audits).toEqual([expect.objectContaining({ action: 'ca.issue', object: `cert:${bob.fingerprint}` })]);
    // Issued with its key in the store.
    expect(json<{ hasKey: boolean; chain: { state: string } }>(await call('GET', '/certificates/:fingerprint', { params: { fingerprint: bob.fingerprint } }))).toMatchObject({ hasKey: true, chain: { state: 'trusted' } });

    for (const address of ['not an address', 'x@y\r\nBcc: z@example.com', '@example.com']) {
      expect((await refusal(call('POST', '/ca/issue', { body: { address } }))).status).toBe(400);
    }
    expect(admin.audits).toHaveLength(1);
  });

  it('revokes by address and publishes at once a CRL that openssl verifies and that lists the serial; offline lists see it', async () => {
    const [bob] = json<{ certificates: { fingerprint: string; serial: string }[] }>(await call('GET', '/certificates', { query: { address: 'bob@example.com' } })).certificates;
    const n = admin.audits.length;
    const r = json<{ revoked: { fingerprint: string; status: string }[]; crlPublished: boolean }>(await call('POST', '/ca/revoke', { body: { address: 'bob@example.com', reason: 'keyCompromise' } }));
    expect(r).toMatchObject({ revoked: [{ fingerprint: bob!.fingerprint, status: 'revoked' }], crlPublished: true });
    expect(admin.audits.slice(n)).toEqual([expect.objectContaining({ action: 'ca.revoke', object: `cert:${bob!.fingerprint}` })]);

    const crl = file(await call('GET', '/ca/crl'));
    expect(crl.type).toBe('application/pkix-crl');
    await writeFile(join(dir, 'ca.crl'), crl.bytes);
    const text = await run('openssl', ['crl', '-inform', 'DER', '-in', join(dir, 'ca.crl'), '-CAfile', join(dir, 'ca.pem'), '-noout', '-text']);
    expect(text.stderr).toMatch(/verify OK/);
    expect(text.stdout.replace(/\s+/g, ' ')).toMatch(new RegExp(`Serial Number: 0*${bob!.serial.toUpperCase()} .*Key Compromise`, 'i'));
    await run('openssl', ['crl', '-inform', 'DER', '-in', join(dir, 'ca.crl'), '-out', join(dir, 'ca-crl.pem')]);
    const verdict = await run('openssl', ['verify', '-crl_check', '-CAfile', join(dir, 'ca.pem'), '-CRLfile', join(dir, 'ca-crl.pem'), join(dir, 'bob.pem')]).then((x) => x.stdout + x.stderr, (e: { stdout: string; stderr: string }) => e.stdout + e.stderr);
    expect(verdict).toMatch(/certificate revoked/);

    expect(json<{ certificates: { revocation: { status: string; revocationReason?: string } }[] }>(await call('GET', '/certificates', { query: { address: 'bob@example.com' } })).certificates[0]!.revocation).toMatchObject({ status: 'revoked', revocationReason: 'keyCompromise' });
    expect(json<{ revocations: { serial: string; reason: string }[]; crl: { entries: number } }>(await call('GET', '/ca'))).toMatchObject({ revocations: [{ serial: bob!.serial, reason: 'keyCompromise' }], crl: { entries: 1 } });

    // Again: already revoked, nothing new in the trail.
    const again = json<{ revoked: { status: string }[] }>(await call('POST', '/ca/revoke', { body: { serial: bob!.serial } }));
    expect(again.revoked[0]!.status).toBe('already revoked');
    expect(admin.audits).toHaveLength(n + 1);
  });

  it('refuses to revoke what it never issued, and bad requests', async () => {
    expect((await refusal(call('POST', '/ca/revoke', { body: { serial: 'abcdef0123' } }))).status).toBe(404);
    expect((await refusal(call('POST', '/ca/revoke', { body: { address: 'nobody@example.com' } }))).status).toBe(404);
    expect((await refusal(call('POST', '/ca/revoke', { body: { address: 'bob@example.com', serial: '01' } }))).status).toBe(400);
    expect((await refusal(call('POST', '/ca/revoke', { body: {} }))).status).toBe(400);
    expect((await refusal(call('POST', '/ca/revoke', { body: { address: 'bob@example.com', reason: 'certificateHold' } }))).status).toBe(400);
  });

  it('publishes a fresh CRL on request and audits it', async () => {
    const before = file(await call('GET', '/ca/crl')).bytes;
    const r = json<{ published: boolean; entries: number; thisUpdate: string }>(await call('POST', '/ca/crl/publish', { body: {} }));
    expect(r).toMatchObject({ published: true, entries: 1 });
    // A new CRL (its number is the signing time in ms), still signed by the CA.
    const after = file(await call('GET', '/ca/crl')).bytes;
    expect(after.equals(before)).toBe(false);
    await writeFile(join(dir, 'ca2.crl'), after);
    expect((await run('openssl', ['crl', '-inform', 'DER', '-in', join(dir, 'ca2.crl'), '-CAfile', join(dir, 'ca.pem'), '-noout'])).stderr).toMatch(/verify OK/);
    expect(admin.audits.at(-1)).toMatchObject({ action: 'ca.crl-publish' });
  });
});
