/**
 * The portal's packet walker (portal/packets.ts): fingerprints of a key's primary key and subkeys
 * from the packet bytes alone, as openpgp.js computes them for v4 and v6 keys, and the refusals
 * (secret material, a second primary key, damage) shared with the "public packets only" check.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { generatePgpKey, type ParsedPgpKey } from '../../../src/openpgp/index.js';
import { keyFingerprints, publicPacketsOnly } from '../../../src/portal/packets.js';

let v4: ParsedPgpKey;
let v4rsa: ParsedPgpKey;
let v6: ParsedPgpKey;
beforeAll(async () => {
  [v4, v4rsa, v6] = await Promise.all([
    generatePgpKey({ address: 'alice@example.com' }),
    generatePgpKey({ address: 'rsa@example.com', type: 'rsa', rsaBits: 2048 }),
    generatePgpKey({ address: 'six@example.com', v6: true }),
  ]);
}, 60_000);

describe('keyFingerprints', () => {
  it('gives the fingerprints openpgp.js gives, for v4 (ECC and RSA) and v6 keys', () => {
    for (const k of [v4, v4rsa, v6]) {
      expect(keyFingerprints(k.publicKey)).toEqual({ version: k.info.version, primary: k.info.fingerprint, subkeys: k.info.subkeys.map((s) => s.fingerprint) });
    }
    expect(v6.info.fingerprint).toHaveLength(64);
  });

  it('refuses secret material, two keys in one, and damaged bytes', () => {
    expect(keyFingerprints(v4.secretKey!)).toBeNull();
    expect(keyFingerprints(Buffer.concat([v4.publicKey, v4rsa.publicKey]))).toBeNull();
    expect(keyFingerprints(v4.publicKey.subarray(0, v4.publicKey.length - 1))).toBeNull();
    expect(keyFingerprints(Buffer.from('not a key'))).toBeNull();
    expect(keyFingerprints(Buffer.alloc(0))).toBeNull();
    // Starting with anything but the primary key (here: its user id packet onwards).
    expect(keyFingerprints(v4.publicKey.subarray(2 + v4.publicKey[1]!))).toBeNull();
  });

  it('agrees with publicPacketsOnly on what is public', () => {
    expect([publicPacketsOnly(v4.publicKey), publicPacketsOnly(v4.secretKey!), publicPacketsOnly(Buffer.alloc(0))]).toEqual([true, false, false]);
  });
});
