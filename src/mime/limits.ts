/**
 * The MIME limits a message must keep before a transform opens it (core/limits.ts says where the
 * values come from): nesting depth, number of parts, size of one header field. The other MIME
 * walks (facts.ts, crypto-tree.ts) stop quietly at their bounds, which keeps them cheap but would
 * let a transform work on a message it only half read; this check names the limit instead, so the
 * worker holds such a message with the reason.
 *
 * Untrusted input: the whole message. The walk is iterative (a stack, not recursion), each level
 * scans its own body once, and it stops at the first limit passed: a 10,000-level bomb costs 50
 * scans, a million empty parts stop at the 1001st.
 */
import { LIMITS, LimitExceededError, sizeText } from '../core/limits.js';
import { multipartLayout } from './entity.js';
import { contentTypeOf, parseHeaders, splitHeader } from './header-fields.js';

export interface MimeLimits {
  depth: number;
  parts: number;
  headerBytes: number;
}

export const MIME_LIMITS: MimeLimits = { depth: LIMITS.mimeDepth, parts: LIMITS.mimeParts, headerBytes: LIMITS.headerBytes };

interface Item {
  raw: Buffer;
  /** Multipart and message/rfc822 levels above this entity. */
  depth: number;
  fallback: string;
}

/** Identity transfer encodings: an encapsulated message under them is readable as it is (RFC 2046 5.2.1 allows only these). */
const IDENTITY = new Set(['', '7bit', '8bit', 'binary']);

/** Throws LimitExceededError when `message` (or any part of it) goes past one of the limits. */
export function checkMimeLimits(message: Buffer, limits: MimeLimits = MIME_LIMITS): void {
  const stack: Item[] = [{ raw: message, depth: 0, fallback: 'text/plain' }];
  let parts = 0;
  while (stack.length) {
    const item = stack.pop()!;
    const { header, bodyOffset } = splitHeader(item.raw);
    const headers = parseHeaders(header);
    for (const [name, values] of headers) {
      for (const v of values) {
        // Postfix's header_size_limit is per (multi-line) header field.
        if (v.length > limits.headerBytes) throw new LimitExceededError('header_size', limits.headerBytes, `a ${name} header field of ${sizeText(v.length)}, more than the ${sizeText(limits.headerBytes)} a header field may have`);
      }
    }
    const type = contentTypeOf(headers, item.fallback);
    const boundary = type.params.get('boundary');
    const multipart = type.type.startsWith('multipart/') && boundary !== undefined && boundary !== '';
    const encapsulated = (type.type === 'message/rfc822' || type.type === 'message/global') && IDENTITY.has((headers.get('content-transfer-encoding')?.[0] ?? '').trim().toLowerCase());
    if (!multipart && !encapsulated) continue;
    if (item.depth >= limits.depth) throw new LimitExceededError('mime_depth', limits.depth, `MIME parts nested deeper than ${limits.depth} levels`);
    const body = item.raw.subarray(bodyOffset);
    if (encapsulated) {
      stack.push({ raw: body, depth: item.depth + 1, fallback: 'text/plain' });
      continue;
    }
    // One more than may remain, to tell "exactly at the limit" from "past it".
    const layout = multipartLayout(body, boundary!, limits.parts - parts + 1);
    parts += layout.parts.length;
    if (parts > limits.parts) throw new LimitExceededError('mime_parts', limits.parts, `more than ${limits.parts} MIME parts`);
    const fallback = type.type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
    for (let i = layout.parts.length - 1; i >= 0; i--) stack.push({ raw: layout.parts[i]!, depth: item.depth + 1, fallback });
  }
}
