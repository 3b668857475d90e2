/**
 * RSA session keys of OpenPGP messages (v3 PKESK, what gpg 2.2 writes), decrypted with Node's
 * RSA (RSA_NO_PADDING) and our PKCS#1 v1.5 unpadding with implicit rejection (smime/rsa-pkcs1.ts)
 * instead of openpgp.js' constant-time JavaScript big-number path, which costs ~250 ms per
 * RSA-3072 message on Node 20 (Node itself refuses PKCS#1 private decryption since the Marvin
 * fix): a gateway that takes that long per message is easy to stall.
 *
 * A bad padding, a wrong key or a bad checksum all yield a session key that fails the data's
 * integrity check (MDC / AEAD) exactly like a modified message: no oracle. Secrets: the private
 * key as a Node KeyObject, cached per prepared key, never logged.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import * as openpgp from 'openpgp';
import { pkcs1Unpad, rejectionSecret, rsaRaw, syntheticKey } from '../pki/index.js';
import type { PgpDecryptionKey } from './prepared.js';

/**
 * Symmetric algorithm ids (RFC 9580 §9.3) and their key lengths: what a v3 PKESK may carry. The
 * ciphers openpgp.js accepts whatever the key says (its fallbacks: AES, 3DES, CAST5), those it
 * accepts only when the key advertises them (Blowfish, Twofish), and those it does not implement
 * (IDEA, Camellia): a session key for one of the last is reported unsupported, not as damage.
 */
const ALGORITHMS: { id: number; name: string; len: number; accept: 'always' | 'advertised' | 'never' }[] = [
  { id: 9, name: 'aes256', len: 32, accept: 'always' },
  { id: 7, name: 'aes128', len: 16, accept: 'always' },
  { id: 8, name: 'aes192', len: 24, accept: 'always' },
  { id: 2, name: 'tripledes', len: 24, accept: 'always' },
  { id: 3, name: 'cast5', len: 16, accept: 'always' },
  { id: 4, name: 'blowfish', len: 16, accept: 'advertised' },
  { id: 10, name: 'twofish', len: 32, accept: 'advertised' },
  { id: 1, name: 'IDEA', len: 16, accept: 'never' },
  { id: 11, name: 'Camellia-128', len: 16, accept: 'never' },
  { id: 12, name: 'Camellia-192', len: 24, accept: 'never' },
  { id: 13, name: 'Camellia-256', len: 32, accept: 'never' },
];

export interface RsaSessionKeys {
  candidates: openpgp.DecryptedSessionKey[];
  /** Ciphers of consistent blocks Postern does not decrypt (IDEA, Camellia, a legacy cipher the key does not advertise). */
  unsupported: string[];
}

interface RsaMaterial {
  keyId: string;
  key: KeyObject;
  k: number;
  secret: Buffer;
}

const materials = new WeakMap<PgpDecryptionKey, RsaMaterial[]>();
const b64u = (b: Uint8Array | bigint) => {
  if (typeof b === 'bigint') {
    let hex = b.toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    return Buffer.from(hex, 'hex').toString('base64url');
  }
  return Buffer.from(b).toString('base64url');
};
const big = (b: Uint8Array) => BigInt(`0x${Buffer.from(b).toString('hex') || '0'}`);

/** The RSA (sub)keys of a prepared decryption key as Node KeyObjects (built once). */
function rsaMaterial(k: PgpDecryptionKey): RsaMaterial[] {
  let m = materials.get(k);
  if (m) return m;
  m = [];
  for (const key of [k.key, ...k.key.subkeys]) {
    const pkt = key.keyPacket as unknown as { algorithm: number; publicParams: { n?: Uint8Array; e?: Uint8Array }; privateParams?: { d?: Uint8Array; p?: Uint8Array; q?: Uint8Array; u?: Uint8Array }; getKeyID(): openpgp.KeyID };
    if (pkt.algorithm !== openpgp.enums.publicKey.rsaEncryptSign && pkt.algorithm !== openpgp.enums.publicKey.rsaEncrypt) continue;
    const { n, e } = pkt.publicParams;
    const priv = pkt.privateParams;
    if (!n || !e || !priv?.d || !priv.p || !priv.q || !priv.u) continue;
    try {
      // OpenPGP keeps p < q and u = p⁻¹ mod q; JWK wants qi = q⁻¹ mod p: swap p and q.
      const d = big(priv.d);
      const p = big(priv.q);
      const q = big(priv.p);
      const jwk = { kty: 'RSA', n: b64u(n), e: b64u(e), d: b64u(priv.d), p: b64u(p), q: b64u(q), dp: b64u(d % (p - 1n)), dq: b64u(d % (q - 1n)), qi: b64u(priv.u) };
      const keyObject = createPrivateKey({ key: jwk, format: 'jwk' });
      const kLen = n.length;
      m.push({ keyId: pkt.getKeyID().toHex().toUpperCase(), key: keyObject, k: kLen, secret: rejectionSecret(Buffer.from(priv.d), kLen) });
    } catch {
      // A key Node cannot load: openpgp.js' own path is used for it.
    }
  }
  materials.set(k, m);
  return m;
}

const checksum = (key: Buffer) => {
  let s = 0;
  for (const b of key) s = (s + b) & 0xffff;
  return s;
};

/**
 * Session-key candidates for the RSA v3 PKESKs of `message` addressed to `k` (by key id, or the
 * wildcard of a hidden recipient); null when there is none (not RSA, or not ours: use openpgp.js).
 *
 * An unsupported cipher is no padding oracle: it is reported only for a block whose cipher octet
 * and checksum are consistent, and a bad padding gives a synthetic block that is tested the same
 * way, so a modified ciphertext is "unsupported" exactly as rarely (2^-24) as a random block is.
 */
export function rsaSessionKeys(message: openpgp.Message<Uint8Array>, k: PgpDecryptionKey, wildcard: string): RsaSessionKeys | null {
  const mats = rsaMaterial(k);
  if (!mats.length) return null;
  const consistent: openpgp.DecryptedSessionKey[] = [];
  const synthetic: openpgp.DecryptedSessionKey[] = [];
  const unsupported: string[] = [];
  let addressed = false;
  for (const p of message.packets.filterByTag(openpgp.enums.packet.publicKeyEncryptedSessionKey)) {
    const pkt = p as unknown as { version: number; publicKeyID: openpgp.KeyID; publicKeyAlgorithm: number; encrypted?: { c?: Uint8Array } };
    if (pkt.version !== 3 || !pkt.encrypted?.c) continue;
    if (pkt.publicKeyAlgorithm !== openpgp.enums.publicKey.rsaEncryptSign && pkt.publicKeyAlgorithm !== openpgp.enums.publicKey.rsaEncrypt) continue;
    const id = pkt.publicKeyID.toHex().toUpperCase();
    for (const mat of mats) {
      if (id !== mat.keyId && id !== wildcard) continue;
      addressed = true;
      const c = Buffer.from(pkt.encrypted.c);
      const em = c.length <= mat.k ? rsaRaw(mat.key, Buffer.concat([Buffer.alloc(mat.k - c.length), c])) : null;
      // Every length is tried and the first consistent block taken; a block that is none of them
      // gives a synthetic AES-256 key, which fails the integrity check like a modified message.
      let found: openpgp.DecryptedSessionKey | null = null;
      let refused: string | null = null;
      for (const a of ALGORITHMS) {
        const m = pkcs1Unpad(em, mat.k, a.len + 3, syntheticKey(mat.secret, c, mat.k, a.len + 3));
        const key = m.subarray(1, 1 + a.len);
        if (found || refused || m[0] !== a.id || m.readUInt16BE(1 + a.len) !== checksum(key)) continue;
        if (a.accept === 'always' || (a.accept === 'advertised' && k.ciphers?.includes(a.id))) found = { data: new Uint8Array(key), algorithm: a.name as openpgp.enums.symmetricNames };
        else refused = a.accept === 'never' ? a.name : `${a.name} (a legacy cipher the key does not advertise)`;
      }
      if (found) consistent.push(found);
      else {
        if (refused) unsupported.push(refused);
        synthetic.push({ data: new Uint8Array(syntheticKey(mat.secret, c, mat.k, 32)), algorithm: 'aes256' });
      }
    }
  }
  // Consistent blocks first (the real key, but for a 1-in-2^24 accident); then the synthetic ones,
  // so that a message whose every block is bad still goes through the same integrity failure.
  return addressed ? { candidates: [...consistent, ...synthetic], unsupported } : null;
}
