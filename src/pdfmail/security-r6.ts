/**
 * The standard security handler, revision 6 (ISO 32000-2 §7.6.4.3.3–4, §7.6.4.4.7–10): AES-256
 * with a random file key that both passwords unwrap. Only the writing side is here — Postern makes
 * encrypted PDFs, it never opens them — but `fileKeyFromUserPassword` (Algorithm 2.A, user part)
 * exists so the tests can check U/UE against the same password without trusting this code's
 * writer alone.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export type R6Entries = {
  /** 48 bytes: hash ‖ validation salt ‖ key salt. */
  U: Uint8Array;
  /** 32 bytes: the file key wrapped by the user password. */
  UE: Uint8Array;
  O: Uint8Array;
  OE: Uint8Array;
  /** 16 bytes: the permissions sealed with the file key, so a reader can see they were not altered. */
  Perms: Uint8Array;
};

const ZERO_IV = Buffer.alloc(16);

/**
 * Algorithm 2.B: the hash revision 6 puts in front of every password check. SHA-256 first, then at
 * least 64 rounds where each round's AES-128 output picks the next SHA-2 width — a deliberate cost
 * against guessing (about 1 ms here). `udata` is the 48-byte U for owner hashes, empty otherwise.
 */
export function hash2B(password: Uint8Array, salt: Uint8Array, udata: Uint8Array): Buffer {
  let k: Buffer = createHash('sha256').update(password).update(salt).update(udata).digest();
  // Sized for the widest K (SHA-512): the round input is (password ‖ K ‖ udata) × 64.
  const k1 = Buffer.allocUnsafe(64 * (password.length + 64 + udata.length));
  for (let round = 0; ; ) {
    const unit = password.length + k.length + udata.length;
    k1.set(password, 0);
    k1.set(k, password.length);
    k1.set(udata, password.length + k.length);
    // Doubling copies: 6 memmoves instead of 63.
    for (let filled = unit; filled < 64 * unit; filled *= 2) k1.copyWithin(filled, 0, Math.min(filled, 64 * unit - filled));
    const cipher = createCipheriv('aes-128-cbc', k.subarray(0, 16), k.subarray(16, 32));
    cipher.setAutoPadding(false);
    // The input is a multiple of 16 bytes (64 repetitions), so update() returns all of it.
    const e = cipher.update(k1.subarray(0, 64 * unit));
    // The first 16 bytes of E as a 128-bit big-endian number mod 3 equals their byte sum mod 3,
    // since 256 ≡ 1 (mod 3).
    let sum = 0;
    for (let i = 0; i < 16; i++) sum += e[i]!;
    k = createHash(SHA2[sum % 3]!).update(e).digest();
    round++;
    if (round >= 64 && e[e.length - 1]! <= round - 32) break;
  }
  return k.subarray(0, 32);
}

const SHA2 = ['sha256', 'sha384', 'sha512'];

function aes256CbcNoPad(key: Uint8Array, data: Uint8Array): Buffer {
  const c = createCipheriv('aes-256-cbc', key, ZERO_IV);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

/**
 * Algorithms 8, 9 and 10: U/UE from the user password, O/OE from the owner password (which hashes
 * U in too), Perms from the permission bits. Passwords are already SASLprep'd UTF-8, ≤ 127 bytes.
 */
export function computeR6Entries(
  fileKey: Uint8Array,
  userPassword: Uint8Array,
  ownerPassword: Uint8Array,
  permissions: number,
  encryptMetadata: boolean,
): R6Entries {
  const uSalts = randomBytes(16); // validation salt ‖ key salt
  const U = Buffer.concat([hash2B(userPassword, uSalts.subarray(0, 8), Buffer.alloc(0)), uSalts]);
  const UE = aes256CbcNoPad(hash2B(userPassword, uSalts.subarray(8, 16), Buffer.alloc(0)), fileKey);
  const oSalts = randomBytes(16);
  const O = Buffer.concat([hash2B(ownerPassword, oSalts.subarray(0, 8), U), oSalts]);
  const OE = aes256CbcNoPad(hash2B(ownerPassword, oSalts.subarray(8, 16), U), fileKey);
  const perms = Buffer.alloc(16);
  perms.writeInt32LE(permissions, 0);
  perms.writeUInt32LE(0xffffffff, 4);
  perms[8] = encryptMetadata ? 0x54 /* T */ : 0x46; /* F */
  perms.write('adb', 9, 'latin1');
  randomBytes(4).copy(perms, 12);
  const ecb = createCipheriv('aes-256-ecb', fileKey, null);
  ecb.setAutoPadding(false);
  const Perms = Buffer.concat([ecb.update(perms), ecb.final()]);
  return { U, UE, O, OE, Perms };
}

/**
 * Algorithm 2.A for the user password: the file key if `password` opens a file with these U/UE,
 * else undefined. What a reader does; here for checking our own output.
 */
export function fileKeyFromUserPassword(password: Uint8Array, U: Uint8Array, UE: Uint8Array): Buffer | undefined {
  const check = hash2B(password, U.subarray(32, 40), Buffer.alloc(0));
  if (!timingSafeEqual(check, U.subarray(0, 32))) return undefined;
  const d = createDecipheriv('aes-256-cbc', hash2B(password, U.subarray(40, 48), Buffer.alloc(0)), ZERO_IV);
  d.setAutoPadding(false);
  return Buffer.concat([d.update(UE), d.final()]);
}
