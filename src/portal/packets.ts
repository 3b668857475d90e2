/**
 * The last check before a key leaves the portal: walk the OpenPGP packet headers (RFC 9580 §4.2)
 * and refuse anything holding a secret-key or secret-subkey packet, or anything that does not
 * parse as a plain sequence of packets. The keystore only ever stores public keys in that column;
 * this makes "only public keys ever leave" a property of the portal, not a hope about the data.
 */
const SECRET_KEY = 5;
const SECRET_SUBKEY = 7;

/** True when `data` is a well-formed packet sequence without secret key material. */
export function publicPacketsOnly(data: Uint8Array): boolean {
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
    if (tag === SECRET_KEY || tag === SECRET_SUBKEY) return false;
    i += len;
    if (i > data.length) return false;
  }
  return true;
}
