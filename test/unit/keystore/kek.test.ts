import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KekError, openFileKek, openKek, openPassphraseKek, rewrap, seal, unseal, type Kek } from '../../../src/keystore/kek/index.js';
import { tempDir } from '../../helpers/config.js';
import { rejection } from '../../helpers/rejection.js';

// Cheapest parameters the salt-file check accepts, to keep the suite fast.
const FAST = { N: 2 ** 15, r: 8, p: 1 };

let dir: string;
let cleanup: () => Promise<void>;
const opened: Kek[] = [];
const track = (k: Kek): Kek => (opened.push(k), k);

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('postern-kek-'));
});
afterEach(async () => {
  for (const k of opened.splice(0)) await k.close();
  await cleanup();
});


describe('file KEK', () => {
  it('is created 0600 in a 0700 directory and reopens with the same id', async () => {
    const path = join(dir, 'sub', 'kek.key');
    const a = track(await openFileKek(path, { create: true }));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'sub'))).mode & 0o777).toBe(0o700);
    expect((await stat(path)).size).toBe(32);
    expect(a.id).toMatch(/^file:[0-9a-f]{16}$/);
    expect(a.algorithm).toBe('AES-256-GCM');
    // The id is a fingerprint, never the key.
    const key = await readFile(path);
    expect(a.id).not.toContain(key.toString('hex').slice(0, 16));

    const dek = randomBytes(32);
    const aad = Buffer.from('row 1');
    const wrapped = await a.wrap(dek, aad);
    expect(wrapped[0]).toBe(1);
    expect(wrapped.length).toBe(1 + 12 + 32 + 16);

    const b = track(await openFileKek(path, { create: true }));
    expect(b.id).toBe(a.id);
    expect((await b.unwrap(wrapped, aad)).equals(dek)).toBe(true);
  });

  it('refuses to create when create is false', async () => {
    const e = await rejection(openFileKek(join(dir, 'kek.key'), { create: false }), KekError);
    expect(e.message).toContain('does not exist');
  });

  it('concurrent creators agree on one key', async () => {
    const path = join(dir, 'kek.key');
    const keks = await Promise.all([1, 2, 3, 4].map(() => openFileKek(path, { create: true })));
    keks.forEach(track);
    expect(new Set(keks.map((k) => k.id)).size).toBe(1);
  });

  it('refuses a group-readable file, naming path, mode and the fix', async () => {
    const path = join(dir, 'kek.key');
    await writeFile(path, randomBytes(32), { mode: 0o600 });
    await chmod(path, 0o640);
    const e = await rejection(openFileKek(path, { create: true }), KekError);
    expect(e.message).toContain(path);
    expect(e.message).toContain('0640');
    expect(e.message).toContain(`chmod 600 ${path}`);
    await chmod(path, 0o604);
    expect((await rejection(openFileKek(path, { create: false }), KekError)).message).toContain('0604');
  });

  it('refuses a file of the wrong size and a directory', async () => {
    const path = join(dir, 'kek.key');
    await writeFile(path, randomBytes(31), { mode: 0o600 });
    const e = await rejection(openFileKek(path, { create: true }), KekError);
    expect(e.message).toMatch(/31 bytes, expected exactly 32/);
    const d = join(dir, 'adir');
    await mkdir(d, { mode: 0o700 });
    expect((await rejection(openFileKek(d, { create: true }), KekError)).message).toContain('not a regular file');
  });

  it('detects tampering and a wrong aad', async () => {
    const kek = track(await openFileKek(join(dir, 'kek.key'), { create: true }));
    const dek = randomBytes(32);
    const wrapped = await kek.wrap(dek, Buffer.from('row 1'));
    const tampered = Buffer.from(wrapped);
    tampered[20]! ^= 1;
    expect((await rejection(kek.unwrap(tampered, Buffer.from('row 1')), KekError)).message).toContain('authentication failed');
    await rejection(kek.unwrap(wrapped, Buffer.from('row 2')), KekError);
    await rejection(kek.unwrap(wrapped.subarray(0, 20), Buffer.from('row 1')), KekError);
    const badVersion = Buffer.from(wrapped);
    badVersion[0] = 9;
    expect((await rejection(kek.unwrap(badVersion, Buffer.from('row 1')), KekError)).message).toContain('version 9');
  });

  it('cannot be used after close', async () => {
    const kek = await openFileKek(join(dir, 'kek.key'), { create: true });
    await kek.close();
    expect((await rejection(kek.wrap(randomBytes(32), Buffer.alloc(0)), KekError)).message).toContain('closed');
  });
});

describe('sealed secrets', () => {
  it('seal, unseal and rewrap between two file KEKs', async () => {
    const a = track(await openFileKek(join(dir, 'a.key'), { create: true }));
    const b = track(await openFileKek(join(dir, 'b.key'), { create: true }));
    expect(a.id).not.toBe(b.id);
    const secret = Buffer.from('-----BEGIN PRIVATE KEY-----\nMII…\n');
    const aad = Buffer.from('cert:42');
    const sealed = await seal(a, secret, aad);
    expect(sealed.kekId).toBe(a.id);
    expect(sealed.kekAlg).toBe('AES-256-GCM');
    expect(sealed.iv.length).toBe(12);
    expect(sealed.ciphertext.length).toBe(secret.length + 16);
    expect(sealed.ciphertext.includes(Buffer.from('PRIVATE'))).toBe(false);
    expect((await unseal(a, sealed, aad)).equals(secret)).toBe(true);

    const moved = await rewrap(a, b, sealed, aad);
    expect(moved.kekId).toBe(b.id);
    expect(moved.ciphertext.equals(sealed.ciphertext)).toBe(true);
    expect(moved.iv.equals(sealed.iv)).toBe(true);
    expect((await unseal(b, moved, aad)).equals(secret)).toBe(true);
    const back = await rewrap(b, a, moved, aad);
    expect((await unseal(a, back, aad)).equals(secret)).toBe(true);
  });

  it('unseal with the wrong KEK says which KEK is needed', async () => {
    const a = track(await openFileKek(join(dir, 'a.key'), { create: true }));
    const b = track(await openFileKek(join(dir, 'b.key'), { create: true }));
    const sealed = await seal(a, Buffer.from('s'), Buffer.from('r'));
    const e = await rejection(unseal(b, sealed, Buffer.from('r')), KekError);
    expect(e.message).toContain(`wrapped by KEK ${a.id}, the configured KEK is ${b.id}`);
    await rejection(rewrap(b, a, sealed, Buffer.from('r')), KekError);
    // Even a forged kekId does not help: the wrapped key does not authenticate under b.
    await rejection(unseal(b, { ...sealed, kekId: b.id }, Buffer.from('r')), KekError);
  });

  it('refuses an altered ciphertext or another row id', async () => {
    const a = track(await openFileKek(join(dir, 'a.key'), { create: true }));
    const sealed = await seal(a, Buffer.from('secret'), Buffer.from('row 1'));
    const ct = Buffer.from(sealed.ciphertext);
    ct[0]! ^= 0x80;
    expect((await rejection(unseal(a, { ...sealed, ciphertext: ct }, Buffer.from('row 1')), KekError)).message).toContain('failed authentication');
    await rejection(unseal(a, sealed, Buffer.from('row 2')), KekError);
  });
});

describe('passphrase KEK', () => {
  const env = { POSTERN_KEK_PASS: 'correct horse battery staple', OTHER_PASS: 'Tr0ub4dor&3', EMPTY: '' };

  it('same passphrase and salt give the same id; the salt file is 0600 and stable', async () => {
    const saltFile = join(dir, 'data', 'kek.salt');
    const a = track(await openPassphraseKek('POSTERN_KEK_PASS', { saltFile, create: true, env, scrypt: FAST }));
    expect(a.id).toMatch(/^passphrase:[0-9a-f]{16}$/);
    expect((await stat(saltFile)).mode & 0o777).toBe(0o600);
    const salt = await readFile(saltFile, 'utf8');
    expect(JSON.parse(salt)).toMatchObject({ v: 1, kdf: 'scrypt', N: FAST.N, r: 8, p: 1 });

    const sealed = await seal(a, Buffer.from('pk'), Buffer.from('row'));
    const b = track(await openKek({ passphrase_env: 'POSTERN_KEK_PASS' }, { saltFile, create: false, env }));
    expect(b.id).toBe(a.id);
    expect(await readFile(saltFile, 'utf8')).toBe(salt);
    expect((await unseal(b, sealed, Buffer.from('row'))).toString()).toBe('pk');
  });

  it('a different passphrase cannot unseal', async () => {
    const saltFile = join(dir, 'kek.salt');
    const a = track(await openPassphraseKek('POSTERN_KEK_PASS', { saltFile, create: true, env, scrypt: FAST }));
    const c = track(await openPassphraseKek('OTHER_PASS', { saltFile, create: true, env, scrypt: FAST }));
    expect(c.id).not.toBe(a.id);
    const sealed = await seal(a, Buffer.from('pk'), Buffer.from('row'));
    expect((await rejection(unseal(c, sealed, Buffer.from('row')), KekError)).message).toContain(`wrapped by KEK ${a.id}`);
    await rejection(unseal(c, { ...sealed, kekId: c.id }, Buffer.from('row')), KekError);
  });

  it('names the variable when it is unset or empty, and never shows the passphrase', async () => {
    const saltFile = join(dir, 'kek.salt');
    let e = await rejection(openKek({ passphrase_env: 'POSTERN_NO_SUCH_VAR' }, { saltFile, create: true, env }), KekError);
    expect(e.message).toContain('POSTERN_NO_SUCH_VAR');
    e = await rejection(openPassphraseKek('EMPTY', { saltFile, create: true, env }), KekError);
    expect(e.message).toContain('EMPTY');
    e = await rejection(openPassphraseKek('POSTERN_KEK_PASS', { saltFile, create: false, env }), KekError);
    expect(e.message).toContain('does not exist');
    expect(e.message).not.toContain(env.POSTERN_KEK_PASS);
  });

  it('works with the default (production) scrypt parameters', async () => {
    const saltFile = join(dir, 'kek.salt');
    const k = track(await openPassphraseKek('POSTERN_KEK_PASS', { saltFile, create: true, env }));
    expect(JSON.parse(await readFile(saltFile, 'utf8'))).toMatchObject({ N: 2 ** 17, r: 8, p: 1 });
    expect(k.id).toMatch(/^passphrase:/);
  });

  it('refuses a salt file with weakened parameters', async () => {
    const saltFile = join(dir, 'kek.salt');
    await writeFile(saltFile, JSON.stringify({ v: 1, kdf: 'scrypt', N: 1024, r: 8, p: 1, salt: randomBytes(16).toString('base64') }));
    expect((await rejection(openPassphraseKek('POSTERN_KEK_PASS', { saltFile, create: false, env }), KekError)).message).toContain('N=1024');
  });
});

describe('openKek', () => {
  it('dispatches to the file KEK', async () => {
    const path = join(dir, 'kek.key');
    const k = track(await openKek({ file: path }, { saltFile: join(dir, 'kek.salt'), create: true }));
    expect(k.id).toMatch(/^file:/);
  });
});
