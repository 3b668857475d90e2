/**
 * OpenPGP as a method (RFC 9580 / 4880, PGP/MIME RFC 3156): opening (decrypt with our users'
 * keys, verify against known keys, encrypted attachments and armour in HTML when a rule asks),
 * signing, and encryption — PGP/MIME, or inline for text-only mail when the rule says so, with
 * the signature inside the encryption in one step.
 */
import { joinMessage, splitMessage } from '../../mime/index.js';
import { decryptAttachments, isPgpCiphertext, PgpError, pgpEncryptMessage, pgpInlineMessage, pgpOpenMessage, pgpResults, pgpSignMessage, type AttachmentResult, type PgpRecipient, type PgpSigner } from '../../openpgp/index.js';
import { isStoreUnavailable } from '../../keystore/index.js';
import { pgpStreamSeal } from './pgp-stream.js';
import type { CryptoMethod, TransformContext } from './types.js';

const quote = (s: string) => s.replace(/[\r\n"]+/g, ' ').slice(0, 200);
const attachmentHeaders = (list: AttachmentResult[]): [string, string][] =>
  list.map((a) => ['X-Postern-Attachment', `${a.status}; method=pgp; name="${quote(a.name)}"${a.reason ? `; reason="${quote(a.reason)}"` : ''}`]);

/** Inline PGP where the policy asks for it and the mail is plain text; PGP/MIME otherwise. */
async function inlineOrMime(body: Buffer, keys: PgpRecipient[], signer: PgpSigner | null, ctx: TransformContext): Promise<Buffer> {
  try {
    return await pgpInlineMessage(body, keys, signer ? { signer } : {});
  } catch (err) {
    if (!(err instanceof PgpError) || err.code !== 'not-text') throw err;
    ctx.log.info({ event: 'worker.pgp_inline_not_possible', queueId: ctx.queueId, reason: err.message }, 'not plain text: sent as PGP/MIME');
    return pgpEncryptMessage(body, keys, signer ? { signer } : {});
  }
}

export const pgp: CryptoMethod = {
  id: 'pgp',
  label: 'OpenPGP',
  keyName: 'OpenPGP key',
  signsInside: true,
  perRecipient: false,
  protectsHeaders: true,
  keepsSignature: true,

  keyFacts(records, role) {
    return records.pgpKeys.some((k) => (role === 'sender' ? k.hasSecret && k.info.canSign : k.info.canEncrypt));
  },

  async isCiphertext(found) {
    return found.method === 'pgp' && (await isPgpCiphertext(found.data));
  },

  async open(body, how, recipients, ctx) {
    // OpenPGP decrypts with the keys of the recipients it was sent to.
    const keysFor = (ids: string[]) => ctx.pgp.decryptionKeys(ids, recipients, ctx.lookups);
    const result = await pgpOpenMessage(body, {
      decrypt: how.decrypt,
      verify: how.verify,
      ...(how.pgpInlineHtml ? { inlineHtml: true } : {}),
      ...(how.pgpAttachments ? { attachmentFiles: true } : {}),
      keysFor,
      verificationKeysFor: (ids, from) => ctx.pgp.verificationKeys(ids, from, ctx.lookups),
      maxDecompressedSize: ctx.config.worker.max_decompressed_size,
    });
    let attachments: AttachmentResult[] = [];
    if (how.decrypt && how.pgpAttachments) {
      const { outer, entity } = splitMessage(result.message);
      const r = await decryptAttachments(entity, keysFor, ctx.config.worker.max_decompressed_size);
      attachments = r.results;
      if (r.entity !== entity) result.message = joinMessage(outer, r.entity);
      for (const a of attachments) ctx.log.info({ event: a.status === 'decrypted' ? 'worker.attachment_decrypted' : 'worker.attachment_not_decrypted', queueId: ctx.queueId, name: a.name, reason: a.reason }, 'OpenPGP attachment');
    }
    const e = result.encryption;
    if (e) ctx.log.info({ event: e.status === 'decrypted' ? 'worker.decrypted' : 'worker.not_decrypted', queueId: ctx.queueId, method: 'pgp', cipher: e.cipher, reason: e.reason }, e.status === 'decrypted' ? 'OpenPGP message decrypted' : 'OpenPGP message not decrypted');
    for (const s of result.signatures) ctx.log.info({ event: 'worker.signature', queueId: ctx.queueId, method: 'pgp', status: s.status, scope: s.scope, signer: s.address, reason: s.reason }, 'OpenPGP signature checked');
    return { opened: result, results: pgpResults(result), extra: attachmentHeaders(attachments) };
  },

  async sign(body, ctx, payload) {
    try {
      const signer = await ctx.pgp.signer(ctx.sender, ctx.lookups);
      if (!signer) {
        ctx.log.warn({ event: 'worker.not_signed', queueId: ctx.queueId, sender: ctx.sender, method: 'pgp', reason: 'no usable OpenPGP signing key' }, 'message not signed');
        return null;
      }
      return await pgpSignMessage(body, signer, payload ? { payload } : {});
    } catch (err) {
      // The signing key could not be fetched now: deferred and signed later, not sent unsigned.
      if (isStoreUnavailable(err)) throw err;
      ctx.log.error({ event: 'worker.not_signed', queueId: ctx.queueId, sender: ctx.sender, reason: (err as Error).message }, 'message not signed');
      return null;
    }
  },

  async encrypt(input, ctx) {
    const keys: PgpRecipient[] = [];
    for (const r of input.recipients) {
      const k = await ctx.pgp.recipient(r, ctx.lookups);
      if (!k) return { kind: 'hold', reason: `encryption with OpenPGP was decided for ${r}, but no usable OpenPGP key is there now` };
      keys.push(k);
    }
    const signer = input.signInside ? await ctx.pgp.signer(ctx.sender, ctx.lookups) : null;
    if (input.signInside && !signer) ctx.log.warn({ event: 'worker.not_signed', queueId: ctx.queueId, sender: ctx.sender, method: 'pgp', reason: 'no usable OpenPGP signing key' }, 'message not signed');
    try {
      const body = input.inline ? await inlineOrMime(input.body, keys, signer, ctx) : await pgpEncryptMessage(input.body, keys, { ...(signer ? { signer } : {}), ...(input.payload ? { payload: input.payload } : {}) });
      return { kind: 'ok', body, signed: signer !== null };
    } catch (err) {
      return { kind: 'hold', reason: `OpenPGP encryption failed: ${(err as Error).message}` };
    }
  },

  streamSeal: pgpStreamSeal,
};
