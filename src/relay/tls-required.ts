/**
 * RFC 8689 §5: a message whose header says `TLS-Required: No` asks that the recipient domain's
 * TLS policies (DANE, MTA-STS) not stop its delivery — for a report about a broken TLS set-up,
 * for instance. Postern honours it for those published policies only; a level the admin set on
 * the route (encrypt, verify) still holds, and REQUIRETLS on the same message wins over it.
 *
 * Only the header block is read, at most HEADER_LIMIT bytes of it, from the spooled message
 * (in memory, or the start of its file range).
 */
import type { MessageSource } from './smtp-client-body.js';

const HEADER_LIMIT = 64 * 1024;

/** True when the header has a `TLS-Required` field whose value is "No" (any case, folded or not). */
export async function tlsRequiredNo(body: MessageSource): Promise<boolean> {
  return headerSaysNo(await headOf(body));
}

export function headerSaysNo(head: Buffer): boolean {
  const text = head.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const block = end >= 0 ? text.slice(0, end) : text;
  // Unfold (RFC 5322 §2.2.3), then look at each field.
  for (const field of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const m = /^TLS-Required[ \t]*:(.*)$/i.exec(field);
    if (m && m[1]!.trim().toLowerCase() === 'no') return true;
  }
  return false;
}

async function headOf(body: MessageSource): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body.subarray(0, HEADER_LIMIT);
  const stream = body.open();
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const c = chunk as Buffer;
      chunks.push(c);
      size += c.length;
      if (size >= HEADER_LIMIT || c.includes('\n\r\n') || c.includes('\n\n')) break;
    }
  } catch {
    // Unreadable now: the delivery itself will find out and defer. Here it only means "no".
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, HEADER_LIMIT);
}
