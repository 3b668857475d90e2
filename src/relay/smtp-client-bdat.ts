/**
 * The message sent by BDAT (RFC 3030 CHUNKING): each chunk preceded by its exact size, no
 * dot-stuffing and no end-of-data line, so any byte goes through unchanged. Used for BINARYMIME
 * content the worker could not give a 7-bit or 8-bit form (a signed binary part) and only to a
 * next hop that announced both CHUNKING and BINARYMIME; everything else still goes by DATA.
 *
 * Each BDAT waits for its reply before the next chunk goes (RFC 3030 §4.2 allows pipelining them
 * with PIPELINING; waiting keeps a refusal mid-message from being answered by chunks already in
 * flight). A chunk the next hop refuses ends the message: its reply is the answer, and the
 * session is reset (RSET) before it is used again, as §4.1 requires.
 */
import type { MessageSource } from './smtp-client-body.js';
import type { SmtpReply, SmtpSession } from './smtp-client-session.js';

const bdat = (n: number, last: boolean) => Buffer.from(`BDAT ${n}${last ? ' LAST' : ''}\r\n`, 'latin1');

/** Send the body as BDAT chunks; the reply to the last one (or to the first refused one). */
export async function sendChunks(session: SmtpSession, source: MessageSource): Promise<SmtpReply> {
  if (Buffer.isBuffer(source)) {
    await session.write(Buffer.concat([bdat(source.length, true), source]));
    return session.read('dot');
  }
  const stream = source.open();
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (!chunk.length) continue;
      await session.write(bdat(chunk.length, false));
      await session.write(chunk);
      const r = await session.read('dot');
      if (r.code !== 250) return r;
    }
  } finally {
    stream.destroy();
  }
  await session.write(bdat(0, true));
  return session.read('dot');
}
