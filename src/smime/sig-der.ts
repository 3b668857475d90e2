/**
 * A minimal DER writer and the object identifiers of CMS SignedData. Signing builds its output
 * from these pieces instead of pkijs' schema objects: the constant parts of a signature (certificates,
 * identifiers, the signer's IssuerAndSerialNumber) are encoded once per signer and only the
 * per-message attributes are encoded per call, so a signature costs about one private-key operation.
 * Values are "ropes" (a list of chunks and their total length) so that large opaque content is
 * copied once, into the final buffer.
 */

/** Encoded DER as chunks; `len` is the sum of the chunk lengths. */
export interface Der {
  readonly len: number;
  readonly parts: readonly Buffer[];
}

export const raw = (b: Buffer): Der => ({ len: b.length, parts: [b] });
export const flat = (d: Der): Buffer => (d.parts.length === 1 ? d.parts[0]! : Buffer.concat(d.parts as Buffer[], d.len));

function lengthOctets(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV with `tag` (a single identifier octet) around the concatenation of `content`. */
export function tlv(tag: number, ...content: (Der | Buffer)[]): Der {
  const parts: Buffer[] = [];
  let len = 0;
  for (const c of content) {
    if (Buffer.isBuffer(c)) {
      parts.push(c);
      len += c.length;
    } else {
      parts.push(...c.parts);
      len += c.len;
    }
  }
  const head = Buffer.concat([Buffer.from([tag]), lengthOctets(len)]);
  return { len: head.length + len, parts: [head, ...parts] };
}

export const TAG = {
  INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, NULL: 0x05, OID: 0x06, UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18, SEQUENCE: 0x30, SET: 0x31, CTX0: 0xa0, CTX1: 0xa1, CTX2: 0xa2, CTX3: 0xa3,
} as const;

export const seq = (...c: (Der | Buffer)[]): Der => tlv(TAG.SEQUENCE, ...c);

/**
 * DER SET OF: elements sorted by their encodings (X.690 §11.6; the shorter one is compared as if
 * padded with zero octets).
 */
export function setOf(elements: (Der | Buffer)[], tag: number = TAG.SET): Der {
  const flatEls = elements.map((e) => (Buffer.isBuffer(e) ? e : flat(e)));
  flatEls.sort((a, b) => {
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const d = (a[i] ?? 0) - (b[i] ?? 0);
      if (d) return d;
    }
    return 0;
  });
  return tlv(tag, ...flatEls);
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const first = arcs[0]! * 40 + arcs[1]!;
  const body: number[] = [];
  for (const arc of [first, ...arcs.slice(2)]) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    body.push(...chunk);
  }
  return Buffer.concat([Buffer.from([TAG.OID]), lengthOctets(body.length), Buffer.from(body)]);
}

/** A small non-negative INTEGER. */
export function smallInt(n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  if (!bytes.length || bytes[0]! & 0x80) bytes.unshift(0);
  return Buffer.from([TAG.INTEGER, bytes.length, ...bytes]);
}

const NULL = Buffer.from([TAG.NULL, 0]);

/** AlgorithmIdentifier; `params` 'null' writes an explicit NULL, undefined leaves it absent. */
export function algId(dotted: string, params?: Der | Buffer | 'null'): Buffer {
  if (params === undefined) return flat(seq(oid(dotted)));
  return flat(seq(oid(dotted), params === 'null' ? NULL : params));
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** RFC 5652 §11.3: UTCTime for 1950–2049, GeneralizedTime otherwise; whole seconds, 'Z'. */
export function encodeTime(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  const utc = y >= 1950 && y < 2050;
  const text = Buffer.from(utc ? `${pad(y % 100)}${rest}` : `${pad(y, 4)}${rest}`, 'latin1');
  return flat(tlv(utc ? TAG.UTC_TIME : TAG.GENERALIZED_TIME, text));
}

export const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  smimeCapabilities: '1.2.840.113549.1.9.15',
  encryptionKeyPreference: '1.2.840.113549.1.9.16.2.11',
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsaOaep: '1.2.840.113549.1.1.7',
  mgf1: '1.2.840.113549.1.1.8',
  rsaPss: '1.2.840.113549.1.1.10',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  ed25519: '1.3.101.112',
  sha1: '1.3.14.3.2.26',
  sha224: '2.16.840.1.101.3.4.2.4',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  md5: '1.2.840.113549.2.5',
} as const;

/** Node hash names by digest OID. */
export const DIGEST_BY_OID: Record<string, string> = {
  [OID.sha1]: 'sha1', [OID.sha224]: 'sha224', [OID.sha256]: 'sha256', [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512', [OID.md5]: 'md5',
};
export const DIGEST_OID: Record<string, string> = Object.fromEntries(Object.entries(DIGEST_BY_OID).map(([o, n]) => [n, o]));
/** Display names ('SHA-256'), for results and reasons. */
export const digestLabel = (node: string): string => (node === 'md5' ? 'MD5' : node.replace(/^sha/, 'SHA-'));
export const WEAK_DIGESTS = new Set(['sha1', 'md5']);
