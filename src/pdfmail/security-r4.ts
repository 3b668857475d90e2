/**
 * The standard security handler, revision 4 with the AESV2 crypt filter (ISO 32000-2 §7.6.4.3.2,
 * §7.6.4.4.2–4, §7.6.2 Algorithm 1): AES-128 for readers too old for revision 6. The file key is
 * derived from the user password (not random as in R6), O and U are RC4 constructions over MD5.
 * RC4 is written out here because OpenSSL 3 keeps it in the legacy provider; it only wraps the
 * 32-byte O and U values — the document itself is AES-128.
 */
import { createHash } from 'node:crypto';

/** The 32-byte padding string of Algorithm 2 step a. */
const PAD = Buffer.from(
  '28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a',
  'hex',
);

/** Key length in bytes for /Length 128. */
const N = 16;

export function padPassword(password: Uint8Array): Buffer {
  const out = Buffer.alloc(32);
  const n = Math.min(password.length, 32);
  Buffer.from(password.buffer, password.byteOffset, n).copy(out, 0);
  PAD.copy(out, n, 0, 32 - n);
  return out;
}

function rc4(key: Uint8Array, data: Uint8Array): Buffer {
  const s = new Uint8Array(256);
  for (let i = 0; i < 256; i++) s[i] = i;
  for (let i = 0, j = 0; i < 256; i++) {
    j = (j + s[i]! + key[i % key.length]!) & 0xff;
    const t = s[i]!;
    s[i] = s[j]!;
    s[j] = t;
  }
  const out = Buffer.alloc(data.length);
  for (let n = 0, i = 0, j = 0; n < data.length; n++) {
    i = (i + 1) & 0xff;
    j = (j + s[i]!) & 0xff;
    const t = s[i]!;
    s[i] = s[j]!;
    s[j] = t;
    out[n] = data[n]! ^ s[(s[i]! + s[j]!) & 0xff]!;
  }
  return out;
}

/** RC4 with the key, then 19 more passes with each key byte XORed by the pass number (R ≥ 3). */
function rc4Twenty(key: Uint8Array, data: Uint8Array): Buffer {
  let out = rc4(key, data);
  const k = Buffer.alloc(key.length);
  for (let i = 1; i <= 19; i++) {
    for (let b = 0; b < key.length; b++) k[b] = key[b]! ^ i;
    out = rc4(k, out);
  }
  return out;
}

function md5(...parts: Uint8Array[]): Buffer {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MD5, then 50 more MD5s of the first N bytes (R ≥ 3). */
function md5Fifty(first: Buffer): Buffer {
  let h = first;
  for (let i = 0; i < 50; i++) h = md5(h.subarray(0, N));
  return h.subarray(0, N);
}

/** Algorithm 3: O from the owner and user passwords. */
export function computeR4O(ownerPassword: Uint8Array, userPassword: Uint8Array): Buffer {
  const key = md5Fifty(md5(padPassword(ownerPassword)));
  return rc4Twenty(key, padPassword(userPassword));
}

/** Algorithm 2: the file key. `P` as the signed 32-bit /P value, `id0` the first trailer /ID string. */
export function computeR4FileKey(userPassword: Uint8Array, O: Uint8Array, P: number, id0: Uint8Array, encryptMetadata: boolean): Buffer {
  const p = Buffer.alloc(4);
  p.writeInt32LE(P, 0);
  const parts: Uint8Array[] = [padPassword(userPassword), O, p, id0];
  if (!encryptMetadata) parts.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  return md5Fifty(md5(...parts));
}

/** Algorithm 5: U (R ≥ 3): 16 significant bytes, padded to 32 with arbitrary bytes (here PAD's). */
export function computeR4U(fileKey: Uint8Array, id0: Uint8Array): Buffer {
  const head = rc4Twenty(fileKey, md5(PAD, id0));
  return Buffer.concat([head, PAD.subarray(0, 16)]);
}

/** Algorithm 1 with AESV2: the key for one object's strings and stream. */
export function r4ObjectKey(fileKey: Uint8Array, objectNumber: number, generation: number): Buffer {
  const suffix = Buffer.from([
    objectNumber & 0xff,
    (objectNumber >> 8) & 0xff,
    (objectNumber >> 16) & 0xff,
    generation & 0xff,
    (generation >> 8) & 0xff,
    0x73, 0x41, 0x6c, 0x54, // "sAlT"
  ]);
  return md5(fileKey, suffix).subarray(0, Math.min(N + 5, 16));
}
