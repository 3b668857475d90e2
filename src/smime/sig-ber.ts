/**
 * A small BER reader for the outer layers of CMS: positions of tag-length-value elements, nothing
 * decoded eagerly. asn1js decodes every certificate inside a SignedData down to the last string,
 * which costs more than verifying the signature; here certificates stay byte ranges until needed
 * (and then are looked up in a cache), and only the small pieces (attributes, algorithm
 * parameters) go to asn1js. Definite and indefinite lengths are read; anything inconsistent
 * (lengths past the end, missing end-of-contents, absurd nesting) throws SmimeError('malformed').
 */
import { SmimeError } from './errors.js';

export interface Tlv {
  /** 0 universal, 1 application, 2 context, 3 private. */
  cls: number;
  constructed: boolean;
  tag: number;
  start: number;
  contentStart: number;
  contentEnd: number;
  end: number;
}

const MAX_DEPTH = 40;
const bad = (why: string): never => {
  throw new SmimeError(`malformed CMS structure: ${why}`, 'malformed');
};

/** Read the element at `pos`, which must end by `limit`. */
export function readTlv(buf: Buffer, pos: number, limit = buf.length, depth = 0): Tlv {
  if (depth > MAX_DEPTH) bad('nesting too deep');
  if (pos >= limit) bad('truncated (element expected)');
  const start = pos;
  const id = buf[pos++]!;
  const cls = id >> 6;
  const constructed = (id & 0x20) !== 0;
  let tag = id & 0x1f;
  if (tag === 0x1f) {
    tag = 0;
    for (let i = 0; ; i++) {
      if (pos >= limit || i > 4) bad('bad tag');
      const b = buf[pos++]!;
      tag = tag * 128 + (b & 0x7f);
      if (!(b & 0x80)) break;
    }
  }
  if (pos >= limit) bad('truncated (length expected)');
  const l0 = buf[pos++]!;
  if (l0 === 0x80) {
    if (!constructed) bad('indefinite length on a primitive element');
    const contentStart = pos;
    for (;;) {
      if (pos + 2 > limit) bad('missing end-of-contents');
      if (buf[pos] === 0 && buf[pos + 1] === 0) return { cls, constructed, tag, start, contentStart, contentEnd: pos, end: pos + 2 };
      pos = readTlv(buf, pos, limit, depth + 1).end;
    }
  }
  let len = l0;
  if (l0 & 0x80) {
    const n = l0 & 0x7f;
    if (n > 4 || pos + n > limit) bad('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos++]!;
  }
  if (pos + len > limit) bad('truncated (length past the end)');
  return { cls, constructed, tag, start, contentStart: pos, contentEnd: pos + len, end: pos + len };
}

/** The elements inside a constructed element. */
export function kidsOf(buf: Buffer, t: Tlv, depth = 0): Tlv[] {
  if (!t.constructed) return [];
  const out: Tlv[] = [];
  for (let p = t.contentStart; p < t.contentEnd; ) {
    const k = readTlv(buf, p, t.contentEnd, depth + 1);
    out.push(k);
    p = k.end;
  }
  return out;
}

export const isUniv = (t: Tlv | undefined, tag: number): t is Tlv => t?.cls === 0 && t.tag === tag;
export const isCtx = (t: Tlv | undefined, tag: number): t is Tlv => t?.cls === 2 && t.tag === tag;
export const slice = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.start, t.end);
export const content = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.contentStart, t.contentEnd);

/** OBJECT IDENTIFIER to dotted text. */
export function oidText(buf: Buffer, t: Tlv | undefined, what: string): string {
  if (!isUniv(t, 6) || t.constructed || t.contentEnd === t.contentStart) return bad(`${what} is not an OBJECT IDENTIFIER`);
  const arcs: number[] = [];
  let v = 0;
  for (let p = t.contentStart; p < t.contentEnd; p++) {
    const b = buf[p]!;
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 256) bad(`${what}: arc too large`);
    if (!(b & 0x80)) {
      if (!arcs.length) arcs.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else arcs.push(v);
      v = 0;
    } else if (p === t.contentEnd - 1) bad(`${what}: truncated arc`);
  }
  return arcs.join('.');
}

/** The octets of an OCTET STRING, primitive or constructed from BER chunks. */
export function octetsOf(buf: Buffer, t: Tlv | undefined, what: string, depth = 0): Buffer {
  if (!isUniv(t, 4) || depth > 8) return bad(`${what} is not an OCTET STRING`);
  if (!t.constructed) return content(buf, t);
  return Buffer.concat(kidsOf(buf, t).map((k) => octetsOf(buf, k, what, depth + 1)));
}
