/**
 * Issue 15: the public key file the supervisor publishes for the unprivileged portal
 * (keystore/public.ts) and the portal's reader of it (portal/key-file.ts).
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodePublicKeys, encodePublicKeys, publicKeysFile, publishPublicKeys, PublicFileError, writePublicFile } from '../../../src/keystore/public.js';
import { PublicKeyFile } from '../../../src/portal/index.js';
import { tempDir } from '../../helpers/config.js';

const FPR_A = 'A'.repeat(40);
const FPR_B = 'B'.repeat(40);
const stored = (fpr: string, addresses: string[], hasSecret: boolean, bytes: string) => ({
  hasSecret,
  publicKey: Buffer.from(bytes),
  info: { fingerprint: fpr, addresses, canEncrypt: true, created: new Date(1_700_000_000_000) },
});

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('postern-keyfile-')));
afterEach(() => cleanup());

describe('the published file', () => {
  it('round-trips what WKD needs', () => {
    const keys = [{ fingerprint: FPR_B, addresses: ['bob@example.com'], canEncrypt: false, created: new Date(5), publicKey: Buffer.from([1, 2, 3]) }];
    expect(decodePublicKeys(encodePublicKeys(keys))).toEqual(keys);
  });

  it('refuses anything else, naming the file', () => {
    const good = JSON.parse(encodePublicKeys([{ fingerprint: FPR_A, addresses: ['a@example.com'], canEncrypt: true, created: new Date(1), publicKey: Buffer.from('k') }]).toString());
    const bad = (doc: unknown) => () => decodePublicKeys(Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc)), 'F');
    expect(bad('{')).toThrow(PublicFileError);
    expect(bad({ ...good, version: 2 })).toThrow(/^F: not a postern-openpgp-public-keys file, version 1$/);
    expect(bad({ ...good, keys: [{ ...good.keys[0], fingerprint: 'x' }] })).toThrow(/^F: key 0 is malformed$/);
    expect(bad({ ...good, keys: [{ ...good.keys[0], public_key: 'not base64!' }] })).toThrow(/key 0 is malformed/);
    expect(bad({ ...good, keys: [{ ...good.keys[0], addresses: [1] }] })).toThrow(/key 0 is malformed/);
  });

  it('publishes only the keys the store holds a secret for, owner-only without a group, group-readable with one', async () => {
    const source = { listPgpKeys: async () => [stored(FPR_A, ['alice@example.com'], true, 'pub-a'), stored(FPR_B, ['partner@partner.example'], false, 'pub-b')] };
    const bytes = await publishPublicKeys(source, { data_dir: dir });
    const file = publicKeysFile({ data_dir: dir });
    expect(decodePublicKeys(await readFile(file)).map((k) => k.fingerprint)).toEqual([FPR_A]);
    expect([(await stat(file)).mode & 0o777, (await stat(join(dir, 'public'))).mode & 0o777]).toEqual([0o600, 0o700]);
    // Unchanged content: the file is left alone (same inode), so the portal keeps its cache.
    const ino = (await stat(file)).ino;
    expect(await publishPublicKeys(source, { data_dir: dir }, { previous: bytes })).toBe(bytes);
    expect((await stat(file)).ino).toBe(ino);
    const gid = process.getgid!();
    await writePublicFile(file, bytes, gid);
    const st = await stat(file);
    expect([st.mode & 0o777, st.gid, (await stat(join(dir, 'public'))).mode & 0o777]).toEqual([0o640, gid, 0o750]);
  });
});

describe('PublicKeyFile (the portal role\'s key source)', () => {
  it('nothing before the first publication; then the keys, by canonical address; a replaced file is read again', async () => {
    const file = publicKeysFile({ data_dir: dir });
    const portal = new PublicKeyFile(file);
    expect(await portal.listPgpKeys()).toEqual([]);
    await publishPublicKeys({ listPgpKeys: async () => [stored(FPR_A, ['alice@example.com'], true, 'pub-a')] }, { data_dir: dir });
    expect((await portal.pgpKeysFor('Alice@EXAMPLE.com')).map((k) => [k.info.fingerprint, k.hasSecret, k.publicKey.toString()])).toEqual([[FPR_A, true, 'pub-a']]);
    expect(await portal.pgpKeysFor('bob@example.com')).toEqual([]);
    await publishPublicKeys({ listPgpKeys: async () => [stored(FPR_A, ['alice@example.com'], true, 'pub-a'), stored(FPR_B, ['bob@example.com'], true, 'pub-b')] }, { data_dir: dir });
    expect((await portal.pgpKeysFor('bob@example.com')).map((k) => k.info.fingerprint)).toEqual([FPR_B]);
  });

  it('a damaged file fails the request (the portal answers 503) rather than serving something else', async () => {
    const file = publicKeysFile({ data_dir: dir });
    await publishPublicKeys({ listPgpKeys: async () => [] }, { data_dir: dir });
    await writeFile(file, '{"format":"something else"}');
    await expect(new PublicKeyFile(file).listPgpKeys()).rejects.toThrow(PublicFileError);
  });
});
