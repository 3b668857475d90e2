/**
 * The admin API's OpenPGP routes (api/pgp.ts) against a real keystore, with gpg 2.2 as the
 * independent peer: keys gpg made are imported (public, secret, a revocation certificate), and
 * what the API exports is read back by gpg — the public key, and the secret key only with the
 * passphrase it was exported under.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGP_ROUTES } from '../../../src/admin/api/pgp.js';
import type { ApiRequest, ApiRoute } from '../../../src/admin/routes.js';
import { file, handlerHarness, json, refusal, type HandlerHarness } from '../../helpers/admin-handlers.js';
import type { GpgHome } from '../../helpers/gpg-home.js';
import { genRevoke, useGpgHome } from '../../helpers/gpg-revoke.js';

const exec = promisify(execFile);

interface Report {
  keys: { fingerprint: string; status: string; hasSecret: boolean; userIds: string[]; warnings: string[] }[];
  problems: { input: string; problem: string }[];
}
interface KeyJson {
  fingerprint: string;
  userIds: string[];
  hasSecret: boolean;
  revoked: boolean;
  flags: string[];
  subkeys?: { canEncrypt: boolean }[];
  armored?: string;
}


describe('admin API: OpenPGP keys', () => {
  const gpg = useGpgHome();
  let admin: HandlerHarness;
  let home: GpgHome;
  let dave: string;
  let erin: string;
  const call = (method: ApiRoute['method'], url: string, req?: Partial<Omit<ApiRequest, 'caller'>>) => admin.call(PGP_ROUTES, method, url, req);

  beforeAll(async () => {
    admin = await handlerHarness();
    home = gpg();
    dave = home.generate('Dave <dave@partner.example>', 'ed25519');
    erin = home.generate('Erin <erin@example.com>', 'ed25519');
  });
  afterAll(async () => {
    // The gpg homes below made agents of their own.
    for (const h of ['gnupg-other', 'gnupg-public']) await exec('gpgconf', ['--homedir', join(admin.dir, h), '--kill', 'gpg-agent']).catch(() => undefined);
    await admin?.close();
  });

  it('imports a public key gpg made, once; lists and shows it', async () => {
    const armored = home.exportPublic(dave).toString();
    const r = json<Report>(await call('POST', '/pgp/import', { body: { armored } }));
    expect(r).toEqual({ keys: [expect.objectContaining({ fingerprint: dave, status: 'added', hasSecret: false, userIds: ['Dave <dave@partner.example>'], warnings: [] })], problems: [] });
    expect(admin.audits).toEqual([expect.objectContaining({ action: 'pgp.import', object: `pgp:${dave}` })]);
    expect(json<Report>(await call('POST', '/pgp/import', { body: { armored } })).keys[0]!.status).toBe('duplicate');
    expect(admin.audits).toHaveLength(1);

    const list = json<{ total: number; keys: KeyJson[] }>(await call('GET', '/pgp', { query: { address: 'DAVE@partner.example' } }));
    expect(list.keys).toEqual([expect.objectContaining({ fingerprint: dave, hasSecret: false, revoked: false, flags: ['encrypt', 'sign'] })]);
    const shown = json<KeyJson>(await call('GET', '/pgp/:fingerprint', { params: { fingerprint: dave.toLowerCase() } }));
    expect(shown.subkeys).toEqual([expect.objectContaining({ canEncrypt: true })]);
    expect(shown.armored).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    expect((await refusal(call('GET', '/pgp/:fingerprint', { params: { fingerprint: 'C'.repeat(40) } }))).status).toBe(404);
  });

  it('imports a secret key and exports it only under a passphrase, with which gpg imports and uses it', async () => {
    const r = json<Report>(await call('POST', '/pgp/import', { body: { armored: home.run(['--armor', '--export-secret-keys', erin]).stdout.toString() } }));
    expect(r.keys).toEqual([expect.objectContaining({ fingerprint: erin, status: 'added', hasSecret: true })]);
    expect(json<{ keys: KeyJson[] }>(await call('GET', '/pgp', { query: { secret: true } })).keys.map((k) => k.fingerprint)).toEqual([erin]);

    const pass = 'erins export passphrase';
    const out = file(await call('POST', '/pgp/:fingerprint/export-secret', { params: { fingerprint: erin }, body: { passphrase: pass } }));
    expect(out.type).toBe('application/pgp-keys');
    expect(out.bytes.toString()).toMatch(/^-----BEGIN PGP PRIVATE KEY BLOCK-----/);
    expect(admin.audits.at(-1)).toMatchObject({ action: 'pgp.export-secret', object: `pgp:${erin}` });
    expect(JSON.stringify(admin.audits)).not.toContain(pass);

    const other = join(admin.dir, 'gnupg-other');
    await mkdir(other, { mode: 0o700 });
    const keyFile = join(admin.dir, 'erin-secret.asc');
    await writeFile(keyFile, out.bytes);
    const g = (pp: string, ...a: string[]) => exec('gpg', ['--homedir', other, '--batch', '--pinentry-mode', 'loopback', '--passphrase', pp, ...a]);
    // Protected: gpg sees an S2K-encrypted secret key, not a plain one.
    expect((await g('', '--list-packets', keyFile)).stdout).toMatch(/iter\+salt S2K|protected/i);
    await g(pass, '--import', keyFile);
    expect((await g(pass, '--with-colons', '--list-secret-keys', erin)).stdout).toMatch(/^sec:/m);
    await writeFile(join(admin.dir, 'msg.txt'), 'from Erin\n');
    await expect(g('not the passphrase', '--local-user', erin, '--output', join(admin.dir, 'bad.sig'), '--detach-sign', join(admin.dir, 'msg.txt'))).rejects.toThrow();
    await g(pass, '--local-user', erin, '--output', join(admin.dir, 'msg.sig'), '--detach-sign', join(admin.dir, 'msg.txt'));
    expect((await g('', '--verify', join(admin.dir, 'msg.sig'), join(admin.dir, 'msg.txt'))).stderr).toMatch(/Good signature from "Erin <erin@example\.com>"/);

    // The exported key comes back in only with its passphrase.
    await call('POST', '/pgp/:fingerprint/delete', { params: { fingerprint: erin } });
    const wrong = await refusal(call('POST', '/pgp/import', { body: { armored: out.bytes.toString(), passphrase: 'wrong' } }));
    expect(wrong.status).toBe(400);
    expect(wrong.message).toMatch(/wrong passphrase/);
    expect(json<Report>(await call('POST', '/pgp/import', { body: { armored: out.bytes.toString(), passphrase: pass } })).keys[0]).toMatchObject({ status: 'added', hasSecret: true });

    expect((await refusal(call('POST', '/pgp/:fingerprint/export-secret', { params: { fingerprint: dave }, body: { passphrase: pass } }))).status).toBe(404);
  });

  it('exports the public key, which gpg imports', async () => {
    const out = file(await call('GET', '/pgp/:fingerprint/export', { params: { fingerprint: dave } }));
    expect(out).toMatchObject({ type: 'application/pgp-keys', name: `${dave}.asc` });
    const other = join(admin.dir, 'gnupg-public');
    await mkdir(other, { mode: 0o700 });
    await writeFile(join(admin.dir, 'dave.asc'), out.bytes);
    await exec('gpg', ['--homedir', other, '--batch', '--import', join(admin.dir, 'dave.asc')]);
    expect((await exec('gpg', ['--homedir', other, '--with-colons', '--fingerprint', dave])).stdout).toContain(`fpr:::::::::${dave}:`);
  });

  it('applies a revocation certificate gpg made to the stored key', async () => {
    const rev = genRevoke(home, dave, 2, new Date()).toString();
    const r = json<Report>(await call('POST', '/pgp/import', { body: { armored: rev } }));
    expect(r.keys).toEqual([expect.objectContaining({ fingerprint: dave, status: 'revoked' })]);
    expect(admin.audits.at(-1)).toMatchObject({ action: 'pgp.revoke', object: `pgp:${dave}` });
    expect(json<KeyJson>(await call('GET', '/pgp/:fingerprint', { params: { fingerprint: dave } }))).toMatchObject({ revoked: true, flags: ['revoked'] });
  });

  it('refuses garbage with 400 and deletes a key', async () => {
    for (const armored of ['not a key', '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n']) {
      const e = await refusal(call('POST', '/pgp/import', { body: { armored } }));
      expect(e.status).toBe(400);
      expect(e.message).toMatch(/^nothing imported: /);
    }
    expect(json(await call('POST', '/pgp/:fingerprint/delete', { params: { fingerprint: dave } }))).toEqual({ deleted: dave, secretDeleted: false });
    expect(admin.audits.at(-1)).toMatchObject({ action: 'pgp.delete', object: `pgp:${dave}` });
    expect((await refusal(call('GET', '/pgp/:fingerprint/export', { params: { fingerprint: dave } }))).status).toBe(404);
  });
});
