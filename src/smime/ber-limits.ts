/**
 * Limits of a CMS object from the Internet, checked by the opener (open.ts) before asn1js or
 * sig-ber.ts build anything from it (core/limits.ts says where the values come from). The parsers
 * keep their own contract — any bytes give a result or an SmimeError — and refuse lengths past
 * the end before allocating too; this check is what names the limit for a hold:
 * - a length absurd for the object it is in (more than 4 × its whole size: 2^31 in a 300-byte
 *   blob) is refused before anything is allocated for it. A smaller overrun is a truncated object,
 *   left to the parsers to report as malformed, as before;
 * - nesting (definite or indefinite length) deeper than LIMITS.cmsDepth;
 * - more than LIMITS.cmsItems elements in one SET or context-tagged collection (RecipientInfos,
 *   certificates, CRLs, SignerInfos): each costs a key look-up, a parse or a signature check.
 *
 * One pass, iterative (an explicit stack, no recursion), O(input). Anything it cannot follow
 * (a truncated header, a primitive with indefinite length) ends the check silently: the parsers
 * that come next say what is wrong with it.
 */
import { LIMITS, LimitExceededError, sizeText } from '../core/limits.js';

/** A length may point this many times past the whole object before it counts as absurd, not truncated. */
const ABSURD_FACTOR = 4;

interface Frame {
  /** End offset of a definite-length element; -1 for indefinite length (ends at 00 00). */
  end: number;
  /** Children counted: a SET or a context-tagged constructed element. */
  counted: boolean;
  kids: number;
}

export function checkCmsLimits(der: Uint8Array, limits: { depth: number; items: number } = { depth: LIMITS.cmsDepth, items: LIMITS.cmsItems }): void {
  const n = der.length;
  const absurd = Math.max(ABSURD_FACTOR * n, 1024);
  const stack: Frame[] = [];
  let pos = 0;
  let done = false;
  while (!done) {
    const parent = stack[stack.length - 1];
    if (parent) {
      if (parent.end < 0 ? der[pos] === 0 && der[pos + 1] === 0 : pos >= parent.end) {
        if (parent.end < 0) pos += 2;
        stack.pop();
        done = stack.length === 0;
        continue;
      }
      if (pos >= n || (parent.end >= 0 && pos > parent.end)) return;
    } else if (pos > 0 || n === 0) return;
    // Identifier octets (high tag numbers in base 128).
    const id = der[pos++]!;
    const constructed = (id & 0x20) !== 0;
    const cls = id >> 6;
    let tag = id & 0x1f;
    if (tag === 0x1f) {
      tag = 0;
      for (let i = 0; ; i++) {
        if (pos >= n || i > 4) return;
        const b = der[pos++]!;
        tag = tag * 128 + (b & 0x7f);
        if (!(b & 0x80)) break;
      }
    }
    if (pos >= n) return;
    // The chunks of a constructed OCTET STRING (BER content in pieces, under the same [0] tag
    // certificates use) are data, not entries: not counted.
    if (parent?.counted && !(cls === 0 && tag === 4) && ++parent.kids > limits.items) {
      throw new LimitExceededError('cms_count', limits.items, `more than ${limits.items} entries in one set of a CMS object (recipients, certificates or signers)`);
    }
    const l0 = der[pos++]!;
    let len = -1;
    if (l0 < 0x80) len = l0;
    else if (l0 > 0x80) {
      const bytes = l0 & 0x7f;
      len = 0;
      for (let i = 0; i < bytes; i++) {
        if (pos >= n) return;
        len = len * 256 + der[pos++]!;
      }
      if (len > absurd) {
        const said = bytes > 6 ? `a ${bytes}-byte ASN.1 length` : `an ASN.1 length of ${len} bytes`;
        throw new LimitExceededError('cms_length', absurd, `${said} in a CMS object of ${sizeText(n)}: refused before anything was read`);
      }
    } else if (!constructed) return;
    if (constructed) {
      if (stack.length + 1 > limits.depth) throw new LimitExceededError('cms_depth', limits.depth, `a CMS object nested deeper than ${limits.depth} levels`);
      if (len >= 0 && pos + len > n) return;
      // RecipientInfos, SignerInfos, CRLs are SETs; certificates and crls are [0]/[1] IMPLICIT SETs.
      stack.push({ end: len < 0 ? -1 : pos + len, counted: (cls === 0 && tag === 17) || cls === 2, kids: 0 });
      continue;
    }
    pos += len;
    if (!parent) return;
  }
}
