/**
 * What every streamed seal (Method.streamSeal) makes first, whatever the method: the outer header
 * and the entity that its signature and encryption cover, with RFC 9788 header protection as
 * transform.ts does it for the Buffer path (the payload carries the header fields; the header
 * block alone goes through protectHeaders, so it never touches the body), and the check that
 * the entity is in the canonical form the Buffer path would give it — read from the spool once
 * more, before any byte is written, so the method can still fall back; a multipart that is not
 * gets canonicalEntity's re-encoding as a stream where the parts allow it.
 */
import { canonicalMultipartChunks, canonicalScan, concatChunks, crlfChunks, splitMessage, toCrlf } from '../../mime/index.js';
import { outboundProtection } from '../header-protection.js';
import type { StreamSealInput, TransformContext } from './types.js';

export type StreamedEntity = { kind: 'entity'; outer: Buffer; entity: () => AsyncIterable<Buffer> } | { kind: 'fallback'; reason: string };

export interface EntityNeeds {
  /** A signature will be made (header protection then applies even without encryption). */
  sign: boolean;
  /** The entity must be canonical (7-bit, lines ≤ 998) because the method canonicalises it. */
  canonical: boolean;
  /** Strings that must not occur in the entity (a multipart/signed boundary chosen beforehand). */
  absent?: readonly string[];
}

export async function streamedEntity(input: StreamSealInput, needs: EntityNeeds, ctx: TransformContext): Promise<StreamedEntity> {
  const fallback = (reason: string): StreamedEntity => ({ kind: 'fallback', reason });
  const { config } = ctx;
  if (input.encrypt && config.header_protection.legacy_display) return fallback('header protection with the legacy display');
  const head = toCrlf(input.head);
  const hp = outboundProtection(head, { sign: needs.sign, encrypt: input.encrypt, inlinePgp: false, ...(input.headerProtection ? { mode: input.headerProtection } : {}) }, config);
  const split = splitMessage(hp ? hp.message : head);
  const entityHead = hp ? hp.payload : split.entity;
  // What smtpd stores is CRLF already: then the body streams as it is, without the CRLF pass.
  let normalize = true;
  if (needs.canonical) {
    const absent = needs.absent ?? [];
    let scan = await canonicalScan(concatChunks(entityHead, input.body()), absent);
    normalize = !scan.crlf;
    if (normalize && scan.canonical) scan = await canonicalScan(concatChunks(entityHead, crlfChunks(input.body())), absent);
    if (!scan.canonical) {
      // 8-bit parts (a UTF-8 text beside a large file): canonicalEntity's re-encoding, streamed
      // where it can be (mime/canonical-stream.ts), checked once more as the method will read it.
      const canonical = await canonicalMultipartChunks(entityHead, () => crlfChunks(input.body()));
      const check = canonical ? await canonicalScan(canonical(), absent) : null;
      if (!canonical || !check?.canonical) return fallback(`8-bit or long lines to be ${needs.sign ? 'signed' : 'encrypted'}: canonical form needs re-encoding`);
      if (check.contains) return fallback('the boundary occurs in the content');
      return { kind: 'entity', outer: split.outer, entity: canonical };
    }
    if (scan.contains) return fallback('the boundary occurs in the content');
  }
  return { kind: 'entity', outer: split.outer, entity: () => concatChunks(entityHead, normalize ? crlfChunks(input.body()) : input.body()) };
}

/**
 * `chunks`, then `done()` once the last one is made: "message encrypted" is logged when the
 * ciphertext exists, not when the stream is set up — a stream that fails (and is tried again,
 * then held) does not leave an admin a log line saying the message was encrypted.
 */
export async function* thenLog(chunks: AsyncIterable<Buffer>, done: () => void): AsyncGenerator<Buffer> {
  yield* chunks;
  done();
}
