/**
 * The PKCS#11 KEK against a real SoftHSM2 token created here, in a temporary token directory
 * (SOFTHSM2_CONF is set before the module is first loaded: SoftHSM2 reads it in C_Initialize).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KekError,
  createPkcs11Key,
  openFileKek,
  openKek,
  openPkcs11Kek,
  rewrap,
  seal,
  unseal,
  type Kek,
  type Pkcs11KekConfig,
} from '../../../src/keystore/kek/index.js';
import { acquireModule, pkcs11js } from '../../../src/keystore/kek/pkcs11-module.js';
import { tempDir } from '../../helpers/config.js';
import { rejection } from '../../helpers/rejection.js';

function hasSofthsmUtil(): boolean {
  try {
    execFileSync('softhsm2-util', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const HAVE_SOFTHSM = hasSofthsmUtil();
const MODULE =
  ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/local/lib/softhsm/libsofthsm2.so'].find(
    (p) => existsSync(p),
  ) ?? '/usr/lib/softhsm/libsofthsm2.so';

const suite = HAVE_SOFTHSM ? describe : describe.skip;
const title = HAVE_SOFTHSM ? 'PKCS#11 KEK (SoftHSM2)' : 'PKCS#11 KEK (SKIPPED: softhsm2-util is not installed, so no SoftHSM2 token can be created)';

suite(title, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let savedConf: string | undefined;
  const env: NodeJS.ProcessEnv = { POSTERN_HSM_PIN: '1234', POSTERN_BAD_PIN: '9999' };
  const cfg = (over: Partial<Pkcs11KekConfig> = {}): Pkcs11KekConfig => ({
    module: MODULE,
    token: 'postern-test',
    pin_env: 'POSTERN_HSM_PIN',
    key_label: 'postern-kek',
    ...over,
  });
  /** Token directory of "postern-gone", removed by the token-removal test. */
  let goneTokenDir = '';


  function initToken(conf: string, label: string): void {
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', '1234', '--so-pin', '5678'], {
      env: { ...process.env, SOFTHSM2_CONF: conf },
      stdio: 'ignore',
    });
  }

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-kek-hsm-'));
    const tokens = join(dir, 'tokens');
    await mkdir(tokens);
    const conf = join(dir, 'softhsm2.conf');
    await writeFile(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    savedConf = process.env.SOFTHSM2_CONF;
    process.env.SOFTHSM2_CONF = conf;
    // All tokens exist before the module is first initialised (SoftHSM2 scans them then).
    initToken(conf, 'postern-test');
    const before = new Set(await readdir(tokens));
    initToken(conf, 'postern-gone');
    const added = (await readdir(tokens)).filter((d) => !before.has(d));
    expect(added).toHaveLength(1);
    goneTokenDir = join(tokens, added[0]!);
  });

  afterAll(async () => {
    if (savedConf === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = savedConf;
    await cleanup?.();
  });

  it('creates a key in the token, refuses to create it twice, and seals/unseals', async () => {
    expect(await createPkcs11Key(cfg(), { env })).toBe('pkcs11:postern-test/postern-kek');
    const e = await rejection(createPkcs11Key(cfg(), { env }), KekError);
    expect(e.message).toContain('already has an object labelled "postern-kek"');

    const kek = await openKek({ pkcs11: cfg() }, { saltFile: join(dir, 'kek.salt'), create: true, env });
    try {
      expect(kek.id).toBe('pkcs11:postern-test/postern-kek');
      expect(kek.algorithm).toBe('AES-256-GCM');
      const secret = randomBytes(1200);
      const aad = Buffer.from('cert:7');
      const sealed = await seal(kek, secret, aad);
      expect(sealed.kekId).toBe(kek.id);
      expect(sealed.wrappedKey.length).toBe(1 + 12 + 32 + 16);
      expect((await unseal(kek, sealed, aad)).equals(secret)).toBe(true);
      // Many operations at once: the session runs them one at a time.
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => seal(kek, Buffer.from(`s${i}`), Buffer.from(`r${i}`))));
      const back = await Promise.all(many.map((s, i) => unseal(kek, s, Buffer.from(`r${i}`))));
      expect(back.map(String)).toEqual(many.map((_, i) => `s${i}`));
    } finally {
      await kek.close();
    }
  });

  it('the key is sensitive and cannot be extracted', async () => {
    const kek = await openPkcs11Kek(cfg(), { env });
    // With the KEK open, the module is initialised and the token logged in: look at the object.
    const p = pkcs11js();
    const mod = acquireModule(MODULE);
    const { lib } = mod;
    const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === 'postern-test')!;
    const session = lib.C_OpenSession(slot, p.CKF_SERIAL_SESSION);
    try {
      lib.C_FindObjectsInit(session, [{ type: p.CKA_LABEL, value: 'postern-kek' }]);
      const [key] = lib.C_FindObjects(session, 2);
      lib.C_FindObjectsFinal(session);
      expect(key).toBeDefined();
      expect(() => lib.C_GetAttributeValue(session, key!, [{ type: p.CKA_VALUE }])).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
      const attrs = lib.C_GetAttributeValue(session, key!, [
        { type: p.CKA_EXTRACTABLE },
        { type: p.CKA_SENSITIVE },
        { type: p.CKA_TOKEN },
        { type: p.CKA_VALUE_LEN },
      ]);
      expect(attrs.map((a) => a.value[0])).toEqual([0, 1, 1, 32]);
    } finally {
      lib.C_CloseSession(session);
      mod.release();
      await kek.close();
    }
  });

  it('rewraps file → pkcs11 → file and the secret stays readable', async () => {
    const file = await openFileKek(join(dir, 'kek.key'), { create: true });
    const hsm = await openPkcs11Kek(cfg(), { env });
    try {
      const secret = Buffer.from('private key bytes');
      const aad = Buffer.from('pgp:3');
      const s1 = await seal(file, secret, aad);
      const s2 = await rewrap(file, hsm, s1, aad);
      expect(s2.kekId).toBe(hsm.id);
      expect(s2.ciphertext.equals(s1.ciphertext)).toBe(true);
      expect((await unseal(hsm, s2, aad)).equals(secret)).toBe(true);
      expect((await rejection(unseal(file, s2, aad), KekError)).message).toContain(`wrapped by KEK ${hsm.id}, the configured KEK is ${file.id}`);
      const s3 = await rewrap(hsm, file, s2, aad);
      expect(s3.kekId).toBe(file.id);
      expect((await unseal(file, s3, aad)).equals(secret)).toBe(true);
    } finally {
      await hsm.close();
      await file.close();
    }
  });

  it('rejects a tampered wrapped key and a wrong aad inside the token', async () => {
    const kek = await openPkcs11Kek(cfg(), { env });
    try {
      const wrapped = await kek.wrap(randomBytes(32), Buffer.from('row 1'));
      const bad = Buffer.from(wrapped);
      bad[30]! ^= 1;
      expect((await rejection(kek.unwrap(bad, Buffer.from('row 1')), KekError)).message).toContain('authentication failed');
      await rejection(kek.unwrap(wrapped, Buffer.from('row 2')), KekError);
      // The session is still usable after a failed decryption.
      expect((await kek.unwrap(wrapped, Buffer.from('row 1'))).length).toBe(32);
    } finally {
      await kek.close();
    }
  });

  it('opens and closes repeatedly, and two open KEKs do not log each other out', async () => {
    for (let i = 0; i < 3; i++) {
      const k = await openPkcs11Kek(cfg(), { env });
      expect((await k.unwrap(await k.wrap(Buffer.alloc(32, i), Buffer.from('x')), Buffer.from('x')))[0]).toBe(i);
      await k.close();
      await k.close(); // idempotent
    }
    const a = await openPkcs11Kek(cfg(), { env });
    const b = await openPkcs11Kek(cfg(), { env });
    const wrapped = await a.wrap(randomBytes(32), Buffer.from('y'));
    await a.close();
    expect((await b.unwrap(wrapped, Buffer.from('y'))).length).toBe(32);
    expect((await rejection(a.wrap(randomBytes(32), Buffer.from('y')), KekError)).message).toContain('closed');
    await b.close();
  });

  it('session closed under it: reconnects once and carries on', async () => {
    const kek = await openPkcs11Kek(cfg(), { env });
    try {
      const wrapped = await kek.wrap(Buffer.alloc(32, 7), Buffer.from('z'));
      const mod = acquireModule(MODULE);
      const slot = mod.lib.C_GetSlotList(true).find((s) => mod.lib.C_GetTokenInfo(s).label.trim() === 'postern-test')!;
      mod.lib.C_CloseAllSessions(slot); // what a token reset or another thread's mistake looks like
      mod.release();
      expect((await kek.unwrap(wrapped, Buffer.from('z')))[0]).toBe(7);
    } finally {
      await kek.close();
    }
  });

  it('wrong PIN: a clear KekError, no crash, and the next open works', async () => {
    const e = await rejection(openPkcs11Kek(cfg({ pin_env: 'POSTERN_BAD_PIN' }), { env }), KekError);
    expect(e.message).toContain('wrong PIN');
    expect(e.message).toContain('CKR_PIN_INCORRECT');
    expect(e.message).toContain('POSTERN_BAD_PIN');
    expect(e.message).not.toContain('9999');
    const k = await openPkcs11Kek(cfg(), { env });
    await k.close();
  });

  it('PIN variable unset: names the variable', async () => {
    const e = await rejection(openPkcs11Kek(cfg({ pin_env: 'POSTERN_NO_PIN' }), { env }), KekError);
    expect(e.message).toContain('POSTERN_NO_PIN');
  });

  it('unknown token label: lists the labels found', async () => {
    const e = await rejection(openPkcs11Kek(cfg({ token: 'no-such-token' }), { env }), KekError);
    expect(e.message).toContain('no PKCS#11 token labelled "no-such-token"');
    expect(e.message).toContain('"postern-test"');
    expect(e.message).toContain('"postern-gone"');
  });

  it('missing key label', async () => {
    const e = await rejection(openPkcs11Kek(cfg({ key_label: 'nope' }), { env }), KekError);
    expect(e.message).toContain('no AES secret key labelled "nope" on PKCS#11 token "postern-test"');
  });

  it('module that cannot be loaded: names the path', async () => {
    const path = join(dir, 'missing-pkcs11.so');
    const e = await rejection(openPkcs11Kek(cfg({ module: path }), { env }), KekError);
    expect(e.message).toContain(`cannot load PKCS#11 module ${path}`);
  });

  it('token removed mid-use: a clear error, and close still works', async () => {
    const gone = cfg({ token: 'postern-gone', key_label: 'k' });
    await createPkcs11Key(gone, { env });
    const kek = await openPkcs11Kek(gone, { env });
    const sealed = await seal(kek, Buffer.from('secret'), Buffer.from('r'));
    await rm(goneTokenDir, { recursive: true, force: true });
    const e = await rejection(unseal(kek, sealed, Buffer.from('r')), KekError);
    expect(e.message).toContain('pkcs11:postern-gone/k');
    expect(e.message).toMatch(/gone from the token|removed|session/);
    expect(e.message).toContain('no PKCS#11 token labelled "postern-gone"');
    // Still failing cleanly on the next call, and closing does not throw.
    await rejection(kek.wrap(randomBytes(32), Buffer.from('r')), KekError);
    await kek.close();
    // The other token is unaffected.
    const k = await openPkcs11Kek(cfg(), { env });
    await k.close();
  });

  it('a configuration pointing at an empty token directory: no tokens found', async () => {
    const empty = join(dir, 'empty-tokens');
    await mkdir(empty);
    const conf = join(dir, 'empty.conf');
    await writeFile(conf, `directories.tokendir = ${empty}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    const saved = process.env.SOFTHSM2_CONF;
    process.env.SOFTHSM2_CONF = conf;
    try {
      // Every KEK is closed, so this open initialises the module afresh and reads the new conf.
      const e = await rejection(openPkcs11Kek(cfg(), { env }), KekError);
      expect(e.message).toContain('no initialised tokens found');
    } finally {
      process.env.SOFTHSM2_CONF = saved;
    }
    const k = await openPkcs11Kek(cfg(), { env });
    await k.close();
  });
});
