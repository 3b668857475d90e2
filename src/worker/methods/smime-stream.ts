/**
 * S/MIME's streaming seal (Method.streamSeal): sign and/or encrypt a message too large to hold,
 * reading its body from the spool as often as needed — once to check the canonical form when
 * signing, once while the output is written. Keys are found and the content checked before any
 * byte is made, so the worker can still take the in-memory path (it holds with the reason there)
 * when something does not stream.
 */
import { canonicalScan, concatChunks, crlfChunks, editHeaders, splitMessage, toCrlf } from '../../mime/index.js';
import { smimeMessageChunks, signingBoundary, type SmimeRecipient, type SmimeSigner } from '../../smime/index.js';
import type { EncryptionTarget } from '../crypto-keys.js';
import { outboundProtection } from '../header-protection.js';
import { cipherFor } from './smime-cipher.js';
import type { StreamSealInput, StreamSealResult, TransformContext } from './types.js';

export async function smimeStreamSeal(input: StreamSealInput, ctx: TransformContext): Promise<StreamSealResult> {
  const { config, keys, lookups, log, queueId, sender } = ctx;
  const fallback = (reason: string): StreamSealResult => ({ kind: 'fallback', reason });
  let signer: SmimeSigner | null = null;
  if (input.sign) {
    signer = await keys.signer(sender, lookups).catch(() => null);
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
  } else {
    targets = [];
  }
  if (!signer && !recipients) return fallback('nothing left to do but an unsigned copy');
  // RFC 9788, as transform.ts does it: the payload carries the header fields (the header block
  // alone goes through protectHeaders; without the legacy display it never touches the body).
  if (input.encrypt && config.header_protection.legacy_display) return fallback('header protection with the legacy display');
  const head = toCrlf(input.head);
  const hp = outboundProtection(head, { sign: signer !== null, encrypt: input.encrypt, inlinePgp: false, ...(input.headerProtection ? { mode: input.headerProtection } : {}) }, config);
  const split = splitMessage(hp ? hp.message : head);
  const entityHead = hp ? hp.payload : split.entity;
  const boundary = signingBoundary();
  // What smtpd stores is CRLF already: then the body streams as it is, without the CRLF pass.
  let normalize = true;
  if (signer) {
    let scan = await canonicalScan(concatChunks(entityHead, input.body()), [boundary]);
    normalize = !scan.crlf;
    if (normalize && scan.canonical) scan = await canonicalScan(concatChunks(entityHead, crlfChunks(input.body())), [boundary]);
    if (!scan.canonical) return fallback('8-bit or long lines to be signed: canonical form needs re-encoding');
    if (scan.contains) return fallback('the boundary occurs in the content');
  }
  const entity = () => concatChunks(entityHead, normalize ? crlfChunks(input.body()) : input.body());
  const edits = input.edits;
  const opts = {
    ...(signer ? { signer, sign: { form: config.smime.signature, boundary } } : {}),
    ...(recipients ? { recipients, encrypt: { cipher: cipherFor(targets, config, input.smimeOptions), rsaPadding: input.smimeOptions?.rsa_padding ?? config.smime.rsa_padding } } : {}),
    ...(edits ? { editHeader: (h: Buffer) => editHeaders(h, edits) } : {}),
  };
  if (recipients) log.info({ event: 'worker.encrypted', queueId, recipients: input.recipients, method: 'smime', signed: signer !== null }, 'message encrypted');
  return { kind: 'stream', chunks: () => smimeMessageChunks(split.outer, entity(), opts), signed: signer !== null };
}
