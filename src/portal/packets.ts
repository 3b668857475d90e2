/**
 * OpenPGP packet headers (RFC 9580 §4.2), walked without parsing what is inside:
 * - the last check before a key leaves the portal: refuse anything holding a secret-key or
 *   secret-subkey packet, or anything that does not parse as a plain sequence of packets. The
 *   keystore only ever stores public keys in that column; this makes "only public keys ever
 *   leave" a property of the portal, not a hope about the data;
 * - the fingerprints of a key's primary key and subkeys (§5.5.4), for the key server's index:
 *   a hash of each key packet, where a full parse would verify every signature (~8 ms a key).
 */
import { createHash } from 'node:crypto';

const SECRET_KEY = 5;
const SECRET_SUBKEY = 7;
const PUBLIC_KEY = 6;
const PUBLIC_SUBKEY = 14;

/** Call `visit` with each packet's tag and body; false when `data` is not a well-formed packet sequence. */
function walkPackets(data: Uint8Array, visit: (tag: number, body: Uint8Array) => boolean): boolean {
  let i = 0;
  if (!data.length) return false;
  while (i < data.length) {
    const b = data[i++]!;
    if ((b & 0x80) === 0) return false;
    let tag: number;
    let len: number;
    if (b & 0x40) {
      tag = b & 0x3f;
      const o1 = data[i++];
      if (o1 === undefined) return false;
      if (o1 < 192) len = o1;
      else if (o1 < 224) {
        const o2 = data[i++];
        if (o2 === undefined) return false;
        len = ((o1 - 192) << 8) + o2 + 192;
      } else if (o1 === 255) {
        if (i + 4 > data.length) return false;
        len = ((data[i]! << 24) | (data[i + 1]! << 16) | (data[i + 2]! << 8) | data[i + 3]!) >>> 0;
        i += 4;
      } else return false; // partial lengths never occur in transferable keys
    } else {
      tag = (b >> 2) & 0x0f;
      const type = b & 3;
      if (type === 3) return false; // indeterminate length
      const n = 1 << type;
      if (i + n > data.length) return false;
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + data[i + k]!;
      i += n;
    }
    if (i + len > data.length) return false;
    if (!visit(tag, data.subarray(i, i + len))) return false;
    i += len;
  }
  return true;
}

/** True when `data` is a well-formed packet sequence without secret key material. */
export function publicPacketsOnly(data: Uint8Array): boolean {
  return walkPackets(data, (tag) => tag !== SECRET_KEY && tag !== SECRET_SUBKEY);
}

/** A v4 key's fingerprint is SHA-1 over 0x99, a two-byte length and the packet; a v6 key's SHA-256 over 0x9B and a four-byte length. */
function fingerprintOf(body: Uint8Array): string | null {
  const version = body[0];
  if (version === 4) {
    const head = Buffer.from([0x99, (body.length >> 8) & 0xff, body.length & 0xff]);
    return createHash('sha1').update(head).update(body).digest('hex').toUpperCase();
  }
  if (version === 6) {
    const head = Buffer.alloc(5);
    head[0] = 0x9b;
    head.writeUInt32BE(body.length, 1);
    return createHash('sha256').update(head).update(body).digest('hex').toUpperCase();
  }
  return null;
}

/**
 * The primary key's and subkeys' fingerprints (upper-case hex) and the key version of one
 * transferable public key; null when it is not one (no leading public-key packet, a second
 * primary key, secret material, or a key version other than 4 and 6).
 */
export function keyFingerprints(data: Uint8Array): { version: 4 | 6; primary: string; subkeys: string[] } | null {
  let primary: string | null = null;
  let version: 4 | 6 | null = null;
  const subkeys: string[] = [];
  const ok = walkPackets(data, (tag, body) => {
    if (tag === SECRET_KEY || tag === SECRET_SUBKEY) return false;
    if (tag === PUBLIC_KEY) {
      if (primary !== null) return false;
      primary = fingerprintOf(body);
      version = body[0] === 4 || body[0] === 6 ? body[0] : null;
      return primary !== null;
    }
    if (primary === null) return false;
    if (tag === PUBLIC_SUBKEY) {
      const f = fingerprintOf(body);
      if (f) subkeys.push(f);
    }
    return true;
  });
  return ok && primary !== null && version !== null ? { version, primary, subkeys } : null;
}
