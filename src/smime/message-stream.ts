/**
 * signMessage / encryptMessage of message.ts for a message that streams: the same bytes out for
 * the same entity in (apart from the random parts: boundary, content key, IV, signing time), made
 * with constant memory. The outer header is given as a Buffer (it is small); the body entity as
 * chunks, already canonical for signing (the caller checks it with canonicalScan and falls back
 * to the Buffer path when it is not: re-encoding 8-bit parts is not streamed).
 */
import { base64LineChunks, messageChunks, pkcs7Head } from '../mime/index.js';
import { encryptChunks } from './encrypt-stream.js';
import type { EncryptOptions } from './encrypt.js';
import type { SmimeRecipient } from './recipient-keys.js';
import { signedEntityChunks, type StreamSignOptions } from './sign-stream.js';
import type { SmimeSigner } from './signer.js';

export interface StreamMessageOptions {
  /** Sign first (detached or opaque per `sign.form`). */
  signer?: SmimeSigner;
  sign?: StreamSignOptions;
  /** Then encrypt to these recipients (one CMS object for all). */
  recipients?: readonly SmimeRecipient[];
  encrypt?: EncryptOptions;
  /**
   * Edit the top-level header block (outer fields, MIME-Version, the Content-* fields, the empty
   * line) before it is written: the worker's header edits (mime editHeaders).
   */
  editHeader?: (header: Buffer) => Buffer;
}

/**
 * The whole message: `outer` (header fields other than Content-* and MIME-Version, CRLF-ended),
 * MIME-Version, and the entity signed and/or encrypted as asked.
 */
export async function* smimeMessageChunks(outer: Buffer, entity: AsyncIterable<Buffer>, opts: StreamMessageOptions): AsyncGenerator<Buffer> {
  let inner: AsyncIterable<Buffer> = entity;
  if (opts.signer) inner = signedEntityChunks(inner, opts.signer, opts.sign ?? {});
  if (opts.recipients) {
    const gcm = (opts.encrypt?.cipher ?? 'aes-256-cbc').endsWith('-gcm');
    inner = prefixed(Buffer.from(pkcs7Head(gcm ? 'authEnveloped-data' : 'enveloped-data'), 'latin1'), base64LineChunks(encryptChunks(inner, opts.recipients, opts.encrypt ?? {})));
  }
  // The first chunk of every entity form starts with its whole header block.
  yield* messageChunks(outer, inner, opts.editHeader);
}

async function* prefixed(head: Buffer, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield head;
  yield* rest;
}
