/**
 * pgpSignMessage / pgpEncryptMessage of message.ts for a message that streams (the worker's
 * large-message path): the same MIME structure for the same entity — apart from the random parts
 * (boundary, session key, signature time) — made with bounded memory through openpgp.js' own
 * streams, so the output is produced while the entity is read, never after it.
 *
 * The entity comes as chunks already in canonical form (CRLF, 7-bit: the caller checks it with
 * canonicalScan and takes the Buffer path when re-encoding would be needed), so canonicalEntity()
 * of the Buffer path would leave it as it is; for signing, without the boundary in it.
 *
 * openpgp.js reads web ReadableStreams: the chunks are handed to it as one that is pulled, so the
 * spool is read no faster than the output is written. Its top-level detached sign() reads the
 * whole data into memory to drive the hash (readToEnd), so a detached signature is made from its
 * Signature object instead while the literal data — exactly the bytes hashed — is written out.
 */
import * as openpgp from 'openpgp';
import { messageChunks, multipartSignedHead, multipartSignedTail, type SignatureSpec } from '../mime/index.js';
import { crlfArmor, micalgOf, multipartEncryptedHead, multipartEncryptedTail, OUT_CONFIG, PGP_SIGNATURE, sessionKeyFor } from './message.js';
import { armoredMessageChunks } from './armor-stream.js';
import { PgpError } from './pgp-errors.js';
import type { PgpRecipient, PgpSigner } from './prepared.js';

export interface PgpStreamOptions {
  /** Sign (detached, multipart/signed) or, with recipients, inside the encryption (RFC 3156 6.2). */
  signer?: PgpSigner;
  /** Encrypt to these (one OpenPGP message for all). */
  recipients?: readonly PgpRecipient[];
  /**
   * The multipart boundary. For signing it must not occur in the entity: the caller picks it and
   * checks the content for it before streaming (canonicalScan's needles). Armour cannot hold one
   * made by newBoundary() ("=_" is not base64), so the encrypted form needs no such check.
   */
  boundary: string;
  /** The signature's creation time and the key validity date (default now). */
  date?: Date;
  /** Edit the top-level header block before it is written (the worker's header edits). */
  editHeader?: (header: Buffer) => Buffer;
}

/** The whole message: `outer`, MIME-Version, and the entity signed and/or encrypted as asked. */
export function pgpMessageChunks(outer: Buffer, entity: AsyncIterable<Buffer>, opts: PgpStreamOptions): AsyncGenerator<Buffer> {
  let inner: AsyncIterable<Buffer>;
  if (opts.recipients?.length) inner = encryptedEntityChunks(entity, opts.recipients, opts);
  else if (opts.signer) inner = signedEntityChunks(entity, opts.signer, opts);
  else throw new PgpError('nothing to sign or encrypt with', 'no-recipient');
  return messageChunks(outer, inner, opts.editHeader);
}

/** multipart/encrypted around the armored OpenPGP message of the entity (signed inside when a signer is given). */
async function* encryptedEntityChunks(entity: AsyncIterable<Buffer>, recipients: readonly PgpRecipient[], opts: PgpStreamOptions): AsyncGenerator<Buffer> {
  const aead = recipients.every((r) => r.aead);
  const failed = (err: unknown) => new PgpError(`OpenPGP encryption failed: ${(err as Error).message.replace(/^Error: /, '')}`, 'encrypt-failed', { cause: err });
  let encrypted: ReadableStream<Uint8Array>;
  try {
    const sessionKey = await sessionKeyFor(recipients, opts.date);
    // Binary literal data, as the Buffer path makes it from a Buffer.
    const message = await openpgp.createMessage({ binary: pulled(entity, (c) => new Uint8Array(c)) });
    encrypted = (await openpgp.encrypt({
      message,
      encryptionKeys: recipients.map((r) => r.key),
      sessionKey,
      ...(opts.signer ? { signingKeys: opts.signer.key } : {}),
      format: 'binary',
      config: OUT_CONFIG,
      ...(opts.date ? { date: opts.date } : {}),
    })) as unknown as ReadableStream<Uint8Array>;
  } catch (err) {
    throw failed(err);
  }
  yield Buffer.from(multipartEncryptedHead(opts.boundary), 'latin1');
  try {
    // The CRC-24 for v4 peers, as encryptData() writes it.
    yield* armoredMessageChunks(readStream(encrypted), !aead);
  } catch (err) {
    throw err instanceof PgpError ? err : failed(err);
  }
  yield Buffer.from(multipartEncryptedTail(opts.boundary), 'latin1');
}

/**
 * multipart/signed with a detached signature over the entity. A text-mode signature, as
 * signDetached() makes for UTF-8 content (7-bit canonical content always is): openpgp.js hashes
 * the text's CRLF form, which for a canonical entity is the entity byte for byte.
 */
async function* signedEntityChunks(entity: AsyncIterable<Buffer>, signer: PgpSigner, opts: PgpStreamOptions): AsyncGenerator<Buffer> {
  const failed = (err: unknown) => new PgpError(`OpenPGP signing with ${signer.fingerprint} failed: ${(err as Error).message.replace(/^Error: /, '')}`, 'sign-failed', { cause: err });
  let message: openpgp.Message<ReadableStream<string>>;
  let signature: openpgp.Signature;
  try {
    // 7-bit: latin1 is UTF-8 here, chunk borders included.
    message = await openpgp.createMessage({ text: pulled(entity, (c) => c.toString('latin1')) });
    signature = (await openpgp.sign({ message, signingKeys: signer.key, detached: true, format: 'object', config: OUT_CONFIG, ...(opts.date ? { date: opts.date } : {}) })) as unknown as openpgp.Signature;
  } catch (err) {
    throw failed(err);
  }
  // The hash is chosen with the signature packet, before any data is hashed: micalg goes first.
  const spec: SignatureSpec = { ...PGP_SIGNATURE, micalg: micalgOf(signature) };
  yield Buffer.from(multipartSignedHead(opts.boundary, spec), 'latin1');
  // The signature is read from the start: it waits for the hash, and when the data fails or the
  // output is left early, its failure is this promise's, handled — not an unhandled rejection
  // inside openpgp.js that would end the worker. openpgp 6 leaves the CRC-24 out; v4 peers such
  // as gpg 2.2 and old Enigmail like it there.
  const armored = readText(openpgp.armor(openpgp.enums.armor.signature, signature.write(), undefined, undefined, undefined, true) as unknown as ReadableStream<string> | string);
  armored.catch(() => undefined);
  // Reading the literal data is what feeds the hash: these are exactly the bytes signed.
  const data = message.getLiteralData() as unknown as ReadableStream<Uint8Array>;
  let text: string;
  try {
    for await (const c of readStream(data)) yield Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    text = await armored;
  } catch (err) {
    throw failed(err);
  }
  yield Buffer.from(multipartSignedTail(opts.boundary, spec, crlfArmor(text)), 'latin1');
}

async function readText(text: ReadableStream<string> | string): Promise<string> {
  if (typeof text === 'string') return text;
  let all = '';
  for await (const piece of readStream(text)) all += piece;
  return all;
}

/**
 * Chunks as a web ReadableStream that is read from the source only when its reader asks
 * (highWaterMark 0): nothing is read ahead. Each chunk is converted (copied) for openpgp.js,
 * which keeps what it is given while the source may reuse its buffers.
 */
function pulled<T>(chunks: AsyncIterable<Buffer>, convert: (chunk: Buffer) => T): ReadableStream<T> {
  const it = chunks[Symbol.asyncIterator]();
  return new ReadableStream<T>(
    {
      async pull(controller) {
        const r = await it.next();
        if (r.done) controller.close();
        else controller.enqueue(convert(r.value));
      },
      async cancel() {
        await it.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

/** A web ReadableStream as an async iterable; left early, the stream is cancelled (the spool file closed). */
async function* readStream<T>(stream: ReadableStream<T>): AsyncGenerator<T> {
  const reader = stream.getReader();
  let done = false;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) {
        done = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
