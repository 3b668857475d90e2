/**
 * S/MIME's streaming seal (Method.streamSeal): sign and/or encrypt a message too large to hold,
 * reading its body from the spool as often as needed — once to check the canonical form when
 * signing, once while the output is written. Keys are found and the content checked before any
 * byte is made, so the worker can still take the in-memory path (it holds with the reason there)
 * when something does not stream.
 */
import { editHeaders } from '../../mime/index.js';
import { smimeMessageChunks, signingBoundary, type SmimeRecipient, type SmimeSigner } from '../../smime/index.js';
import { isStoreUnavailable } from '../../keystore/index.js';
import type { EncryptionTarget } from '../crypto-keys.js';
import { cipherFor } from './smime-cipher.js';
import { streamedEntity, thenLog } from './stream-entity.js';
import type { StreamSealInput, StreamSealResult, TransformContext } from './types.js';

export async function smimeStreamSeal(input: StreamSealInput, ctx: TransformContext): Promise<StreamSealResult> {
  const { config, keys, lookups, log, queueId, sender } = ctx;
  const fallback = (reason: string): StreamSealResult => ({ kind: 'fallback', reason });
  let signer: SmimeSigner | null = null;
  if (input.sign) {
    signer = await keys.signer(sender, lookups).catch((err: unknown) => {
      if (isStoreUnavailable(err)) throw err; // deferred: signed later, not sent unsigned now
      return null;
    });
    if (!signer) log.warn({ event: 'worker.not_signed', queueId, sender, method: 'smime', reason: 'no usable signing certificate' }, 'message not signed');
  }
  let recipients: SmimeRecipient[] | undefined;
  let targets: EncryptionTarget[] = [];
  if (input.encrypt) {
    for (const r of input.recipients) {
      const t = await keys.encryptionTarget(r, lookups);
      if (!t) return fallback(`no usable certificate for ${r} now`);
      targets.push(t);
    }
    recipients = targets.map((t) => t.recipient);
    if (config.smime.encrypt_to_sender && sender) {
      const own = await keys.encryptionTarget(sender, lookups);
      if (own && !targets.some((t) => t.certificate.fingerprint === own.certificate.fingerprint)) recipients.push(own.recipient);
    }
  }
  if (!signer && !recipients) return fallback('nothing left to do but an unsigned copy');
  const boundary = signingBoundary();
  const made = await streamedEntity(input, { sign: signer !== null, canonical: signer !== null, absent: [boundary] }, ctx);
  if (made.kind === 'fallback') return made;
  const edits = input.edits;
  const opts = {
    ...(signer ? { signer, sign: { form: config.smime.signature, boundary } } : {}),
    ...(recipients ? { recipients, encrypt: { cipher: cipherFor(targets, config, input.smimeOptions), rsaPadding: input.smimeOptions?.rsa_padding ?? config.smime.rsa_padding } } : {}),
    ...(edits ? { editHeader: (h: Buffer) => editHeaders(h, edits) } : {}),
  };
  return { kind: 'stream', chunks: () => thenLog(smimeMessageChunks(made.outer, made.entity(), opts), () => {
    if (recipients) log.info({ event: 'worker.encrypted', queueId, recipients: input.recipients, method: 'smime', signed: signer !== null }, 'message encrypted');
  }), signed: signer !== null };
}
