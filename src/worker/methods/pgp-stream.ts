/**
 * OpenPGP's streaming seal (Method.streamSeal): PGP/MIME sign and/or encrypt of a message too
 * large to hold, as pgp.ts's sign/encrypt do it on the Buffer path — the signature inside the
 * encryption in one step when both are asked (RFC 3156 6.2), a detached multipart/signed when
 * only signing, the same header protection, the same packet format for v4 and v6 recipients.
 *
 * Keys are found and the entity checked (canonical form, the boundary absent) before any byte is
 * made, so the worker can still take the in-memory path, which holds with the reason: a missing
 * key, inline PGP (text-only mail, not streamed), content that needs re-encoding.
 */
import { isStoreUnavailable } from '../../keystore/index.js';
import { editHeaders, newBoundary } from '../../mime/index.js';
import { pgpMessageChunks, type PgpRecipient, type PgpSigner } from '../../openpgp/index.js';
import { streamedEntity, thenLog } from './stream-entity.js';
import type { StreamSealInput, StreamSealResult, TransformContext } from './types.js';

export async function pgpStreamSeal(input: StreamSealInput, ctx: TransformContext): Promise<StreamSealResult> {
  const { pgp, lookups, log, queueId, sender } = ctx;
  const fallback = (reason: string): StreamSealResult => ({ kind: 'fallback', reason });
  if (input.encrypt && input.pgpInline) return fallback('OpenPGP inline is not streamed');
  let recipients: PgpRecipient[] | undefined;
  if (input.encrypt) {
    recipients = [];
    for (const r of input.recipients) {
      const k = await pgp.recipient(r, lookups);
      if (!k) return fallback(`no usable OpenPGP key for ${r} now`);
      recipients.push(k);
    }
  }
  let signer: PgpSigner | null = null;
  if (input.sign) {
    signer = await pgp.signer(sender, lookups).catch((err: unknown) => {
      if (isStoreUnavailable(err)) throw err; // deferred: signed later, not sent unsigned now
      return null;
    });
    if (!signer) log.warn({ event: 'worker.not_signed', queueId, sender, method: 'pgp', reason: 'no usable OpenPGP signing key' }, 'message not signed');
  }
  if (!signer && !recipients) return fallback('nothing left to do but an unsigned copy');
  // Any boundary newBoundary() makes: for signing, the scan below makes sure it is not in the content.
  const boundary = newBoundary(Buffer.alloc(0));
  // As pgp.ts: canonical for a signature and for encryption alike (the decrypted entity may travel on over 7-bit hops).
  const made = await streamedEntity(input, { sign: input.sign, canonical: true, ...(recipients ? {} : { absent: [boundary] }) }, ctx);
  if (made.kind === 'fallback') return made;
  const edits = input.edits;
  const opts = {
    boundary,
    ...(signer ? { signer } : {}),
    ...(recipients ? { recipients } : {}),
    ...(edits ? { editHeader: (h: Buffer) => editHeaders(h, edits) } : {}),
  };
  return { kind: 'stream', chunks: () => thenLog(pgpMessageChunks(made.outer, made.entity(), opts), () => {
    if (recipients) log.info({ event: 'worker.encrypted', queueId, recipients: input.recipients, method: 'pgp', signed: signer !== null }, 'message encrypted');
  }), signed: signer !== null };
}
