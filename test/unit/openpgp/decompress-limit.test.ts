/**
 * OpenPGP decompression bombs, made by gpg (the peer): compressed data inflates only up to
 * worker.max_decompressed_size — exactly that many bytes pass, one more is refused with a
 * LimitExceededError naming the limit — inside encryption (PGP/MIME), in a signed-only inline
 * message (inflated when read), and never at all where ciphertext is only recognised.
 */
import { inflateSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LimitExceededError } from '../../../src/core/index.js';
import { isPgpCiphertext, pgpOpenMessage, preparePgpDecryptionKey, type PgpDecryptionKey, type PgpOpenOptions } from '../../../src/openpgp/index.js';
import { decryptPgp, readPgpMessage } from '../../../src/openpgp/pgp-decrypt.js';
import { gpgAvailable, gpgHome, type GpgHome } from '../../helpers/gpg-home.js';

let gpg: GpgHome;
let fpr: string;
let key: PgpDecryptionKey;
/** gpg, zlib at level 9: a 32 MB run of zeros comes out at ~32 KB. */
let bomb: string;
let small: string;
const ZEROS = 32 << 20;

const pgpMime = (armored: string) =>
  Buffer.from(`From: gina@example.org\r\nTo: pat@example.com\r\nSubject: bomb\r\nMIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b1"\r\n\r\n--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b1\r\nContent-Type: application/octet-stream\r\n\r\n${armored}\r\n--b1--\r\n`);

async function refusal(p: Promise<unknown>): Promise<LimitExceededError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(LimitExceededError);
  return e as LimitExceededError;
}

/**
 * The exact size the compressed packet inflates to, by gpg and Node's zlib (not openpgp.js): gpg
 * --unwrap takes the encryption off and leaves the packets, here one compressed packet of
 * indeterminate length (old format, tag 8: 0xa3), its algorithm octet, then the zlib stream.
 */
function inflatedSize(armored: string): number {
  const packets = gpg.run(['--decrypt', '--unwrap'], armored).stdout;
  expect(packets[0]).toBe(0xa3);
  expect(packets[1]).toBe(openpgp.enums.compression.zlib);
  return inflateSync(packets.subarray(2)).length;
}

beforeAll(async () => {
  if (!gpgAvailable()) throw new Error('gpg is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
  gpg = gpgHome();
  fpr = gpg.generate('Pat <pat@example.com>', 'ed25519');
  key = await preparePgpDecryptionKey(gpg.exportSecret(fpr));
  const enc = (input: Buffer) => gpg.run(['--armor', '--compress-algo', 'zlib', '-z', '9', '--encrypt', '--recipient', fpr], input).stdout.toString();
  bomb = enc(Buffer.alloc(ZEROS));
  small = enc(Buffer.from('Content-Type: text/plain\r\n\r\nhello, compressed\r\n'.repeat(50)));
}, 120_000);
afterAll(() => gpg?.close());

describe('OpenPGP decompressed size', () => {
  it('exactly the limit inflates; one byte less as the limit is refused, naming it', async () => {
    const size = inflatedSize(small);
    const d = await decryptPgp(await readPgpMessage(small, size), async () => [key], null);
    expect(d.data.toString()).toContain('hello, compressed');
    const e = await refusal(decryptPgp(await readPgpMessage(small, size - 1), async () => [key], null));
    expect(e.limit).toBe('decompressed_size');
    expect(e.max).toBe(size - 1);
    expect(e.message).toMatch(/^OpenPGP compressed data inflates to more than .* \(worker\.max_decompressed_size\): a decompression bomb, not opened$/);
  });

  it('a 32 MB bomb in PGP/MIME: the opener throws the limit (for the worker to hold it) and never holds the 32 MB', async () => {
    expect(bomb.length).toBeLessThan(100_000);
    const opts: PgpOpenOptions = { keysFor: async () => [key], verificationKeysFor: async () => [], maxDecompressedSize: 1 << 20 };
    const before = process.memoryUsage().arrayBuffers;
    const e = await refusal(pgpOpenMessage(pgpMime(bomb), opts));
    expect(e.message).toMatch(/inflates to more than 1 MB/);
    // Cut off at 1 MB (plus a chunk): nothing near the 32 MB was ever allocated.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 << 20);
    // With room enough it opens (the limit is the only thing in the way).
    const r = await pgpOpenMessage(pgpMime(bomb), { ...opts, maxDecompressedSize: 64 << 20 });
    expect(r.encryption?.status).toBe('decrypted');
  });

  it('a signed-only compressed message inflates when read: the same limit applies there', async () => {
    const signed = gpg.run(['--armor', '--compress-algo', 'zlib', '-z', '9', '--sign', '--local-user', fpr], Buffer.alloc(4 << 20)).stdout.toString();
    const e = await refusal(readPgpMessage(signed, 1 << 20));
    expect(e.limit).toBe('decompressed_size');
    await expect(readPgpMessage(signed, 8 << 20)).resolves.toBeDefined();
  });

  it('recognising ciphertext inflates nothing: compressed data at the top is not ciphertext', async () => {
    const compressedOnly = gpg.run(['--compress-algo', 'zlib', '-z', '9', '--store'], Buffer.alloc(ZEROS)).stdout;
    expect(await isPgpCiphertext(compressedOnly)).toBe(false);
    expect(await isPgpCiphertext(Buffer.from(bomb))).toBe(true);
  });
});
