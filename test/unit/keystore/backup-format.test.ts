/**
 * The backup file format on its own: what goes in comes out, across many chunks; a wrong
 * passphrase is told apart from damage; any changed, dropped, reordered or appended byte is
 * refused before the bytes it protects are handed out.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupReader, BackupWriter, CHUNK_BYTES, checkPassphrase } from '../../../src/keystore/backup/format.js';
import { tempDir } from '../../helpers/config.js';

const CHEAP = { N: 2 ** 10, r: 8, p: 1 };
const PASS = 'correct horse battery staple';
const contents = { keystore: true, portal: false, kek: 'file' as const, config_files: 1 };

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('postern-backup-format-')));
afterEach(() => cleanup());

async function write(file: string, pieces: Buffer[]): Promise<void> {
  const fh = await open(file, 'wx', 0o600);
  try {
    const w = await BackupWriter.start(fh, { passphrase: PASS, created: new Date('2026-12-03T12:00:00Z'), postern: '0.1.0', contents, cost: CHEAP });
    for (const p of pieces) await w.write(p);
    await w.finish();
  } finally {
    await fh.close();
  }
}

/** Read `n` bytes and check the end, as a restore does. */
async function readAll(file: string, n: number, passphrase = PASS): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const r = await BackupReader.open(fh, passphrase);
    const parts: Buffer[] = [];
    await r.pipe(n, async (p) => void parts.push(Buffer.from(p)));
    await r.end();
    r.close();
    return Buffer.concat(parts);
  } finally {
    await fh.close();
  }
}

describe('backup file format', () => {
  const data = randomBytes(3 * CHUNK_BYTES + 1234);

  it('gives back exactly what was written, in pieces of any size across chunk boundaries', async () => {
    const file = join(dir, 'b');
    await write(file, [data.subarray(0, 10), data.subarray(10, CHUNK_BYTES + 7), data.subarray(CHUNK_BYTES + 7)]);
    expect((await readAll(file, data.length)).equals(data)).toBe(true);
    const raw = await readFile(file);
    // Encrypted: no 16-byte run of the content appears in the file.
    expect(raw.includes(data.subarray(5000, 5016))).toBe(false);
    // The header says what is inside (in clear, authenticated by the passphrase).
    expect(raw.includes(Buffer.from('"config_files":1'))).toBe(true);
    const fh = await open(file, 'r');
    const r = await BackupReader.open(fh, PASS);
    r.close();
    await fh.close();
    expect(r.header).toMatchObject({ format: 1, postern: '0.1.0', created: '2026-12-03T12:00:00.000Z', contents, kdf: { name: 'scrypt', N: 1024, r: 8, p: 1 } });
  });

  it('tells a wrong passphrase apart from damage', async () => {
    const file = join(dir, 'b');
    await write(file, [data]);
    await expect(readAll(file, data.length, 'not the passphrase at all')).rejects.toThrow(/^wrong passphrase for this backup/);
  });

  it('refuses a flipped byte anywhere: header, chunk framing, ciphertext, tag', async () => {
    const file = join(dir, 'b');
    await write(file, [data]);
    const raw = await readFile(file);
    const headerLen = 8 + 4 + raw.readUInt32BE(8) + 32;
    const positions = [3, 20, headerLen - 1, headerLen + 2, headerLen + 4, headerLen + 100, headerLen + 5 + CHUNK_BYTES + 3, raw.length - 1, raw.length - 20];
    for (const at of positions) {
      const bad = Buffer.from(raw);
      bad[at]! ^= 0x01;
      await writeFile(file, bad);
      await expect(readAll(file, data.length), `byte ${at}`).rejects.toThrow(/not a Postern backup|wrong passphrase|damaged|altered|truncated|ends before/);
    }
  });

  it('refuses a file cut short at a chunk boundary, chunks swapped, or bytes appended', async () => {
    const file = join(dir, 'b');
    await write(file, [data]);
    const raw = await readFile(file);
    const headerLen = 8 + 4 + raw.readUInt32BE(8) + 32;
    const rec = 5 + CHUNK_BYTES + 16;
    // Cut after the second full chunk: every remaining chunk authenticates, but none is the last.
    await writeFile(file, raw.subarray(0, headerLen + 2 * rec));
    await expect(readAll(file, data.length)).rejects.toThrow(/truncated/);
    const c1 = raw.subarray(headerLen, headerLen + rec);
    const c2 = raw.subarray(headerLen + rec, headerLen + 2 * rec);
    await writeFile(file, Buffer.concat([raw.subarray(0, headerLen), c2, c1, raw.subarray(headerLen + 2 * rec)]));
    await expect(readAll(file, data.length)).rejects.toThrow(/chunk 0 .*fails authentication/);
    await writeFile(file, Buffer.concat([raw, Buffer.from('x')]));
    await expect(readAll(file, data.length)).rejects.toThrow(/1 bytes after its end/);
    // A reader that expects less than was written finds the surplus.
    await writeFile(file, raw);
    await expect(readAll(file, data.length - 1)).rejects.toThrow(/more than its manifest lists/);
  });

  it('refuses a chunk of another backup made with the same passphrase', async () => {
    const [a, b] = [join(dir, 'a'), join(dir, 'b')];
    await write(a, [data]);
    await write(b, [data]);
    const ra = await readFile(a);
    const rb = await readFile(b);
    const ha = 8 + 4 + ra.readUInt32BE(8) + 32;
    const hb = 8 + 4 + rb.readUInt32BE(8) + 32;
    await writeFile(a, Buffer.concat([ra.subarray(0, ha), rb.subarray(hb)]));
    await expect(readAll(a, data.length)).rejects.toThrow(/chunk 0 .*fails authentication/);
  });

  it('refuses a header whose scrypt cost would exhaust the machine, before running scrypt', async () => {
    const file = join(dir, 'b');
    await write(file, [data.subarray(0, 10)]);
    const raw = await readFile(file);
    const len = raw.readUInt32BE(8);
    const header = JSON.parse(raw.subarray(12, 12 + len).toString('utf8')) as { kdf: { N: number } };
    header.kdf.N = 2 ** 30;
    const json = Buffer.from(JSON.stringify(header));
    const lenBuf = Buffer.alloc(4);
    lenBuf.writeUInt32BE(json.length);
    await writeFile(file, Buffer.concat([raw.subarray(0, 8), lenBuf, json, raw.subarray(12 + len)]));
    await expect(readAll(file, 10)).rejects.toThrow(/scrypt cost N=1073741824.* outside what Postern accepts/);
  });

  it('refuses a missing or short passphrase', () => {
    expect(() => checkPassphrase(undefined, 'POSTERN_BACKUP_PASSPHRASE')).toThrow(/POSTERN_BACKUP_PASSPHRASE is not set or empty/);
    expect(() => checkPassphrase('', 'X')).toThrow(/X is not set or empty/);
    expect(() => checkPassphrase('short', 'X')).toThrow(/shorter than 12 characters/);
    expect(checkPassphrase(PASS, 'X')).toBe(PASS);
  });
});
