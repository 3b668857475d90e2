/** Multipart bodies split into their parts (RFC 2046 5.1.1), exactly, byte for byte. */

/**
 * The body parts of a multipart body, without preamble and epilogue (RFC 2046 5.1.1): a delimiter
 * is "--boundary" at the start of a line, followed by "--" (the last) or only white space, so
 * "--b" is not taken for "--b1" of a nested multipart. At most `limit` parts.
 */
export function splitMultipart(body: Buffer, boundary: string, limit: number): Buffer[] {
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  const parts: Buffer[] = [];
  let start = -1;
  for (let i = body.indexOf(delim); i >= 0 && parts.length < limit; i = body.indexOf(delim, i + 1)) {
    if (i > 0 && body[i - 1] !== 0x0a) continue;
    let after = i + delim.length;
    const closing = body[after] === 0x2d && body[after + 1] === 0x2d;
    if (!closing) {
      while (body[after] === 0x20 || body[after] === 0x09) after++;
      if (after < body.length && body[after] !== 0x0d && body[after] !== 0x0a) continue;
    }
    // The line break before the delimiter belongs to it.
    if (start >= 0) parts.push(body.subarray(start, Math.max(start, i - (i >= 2 && body[i - 2] === 0x0d ? 2 : i >= 1 ? 1 : 0))));
    if (closing) return parts;
    const eol = body.indexOf(0x0a, after);
    if (eol < 0) return parts;
    start = eol + 1;
  }
  // No closing delimiter (truncated mail): the last part runs to the end.
  if (start >= 0 && start < body.length && parts.length < limit) parts.push(body.subarray(start));
  return parts;
}

