/**
 * S/MIME as a method (RFC 8551): opening (decrypt, verify, revocation of the signer's path, RFC 8550
 * auto-import of correspondents' certificates), signing with the sender's certificate, and one CMS
 * EnvelopedData (or AuthEnvelopedData) per group of recipients.
 */
import { createHash } from 'node:crypto';
import { checkForImport, parseCertificate, revocationSeam, revocationSummary, type PathRevocation } from '../../pki/index.js';
import { encryptMessage, envelopeRecipients, openMessage, signMessage, smimeResults, type OpenResult, type SmimeRecipient } from '../../smime/index.js';
import { isStoreUnavailable } from '../../keystore/index.js';
import type { EncryptionTarget } from '../crypto-keys.js';
import { canEncryptTo, canSignWith, usableCertificate } from './certificate-use.js';
import type { CryptoMethod, OpenChoice, TransformContext } from './types.js';
import { cipherFor } from './smime-cipher.js';
import { smimeStreamSeal } from './smime-stream.js';

async function open(body: Buffer, how: OpenChoice, ctx: TransformContext): Promise<{ result: OpenResult; revocation: PathRevocation[] }> {
  const trust = await ctx.keys.trustStore();
  const revocation: PathRevocation[] = [];
  const checker = ctx.keys.revocation;
  const result = await openMessage(body, {
    ...(checker ? { revocation: revocationSeam(checker, ctx.config.revocation.mode.inbound, { onResult: (r) => revocation.push(r) }) } : {}),
    trust,
    decrypt: how.decrypt,
    verify: how.verify,
    allowSha1: ctx.config.smime.allow_sha1,
    stripRemoteContent: ctx.config.smime.strip_remote_content,
    keysFor: (rids) => ctx.keys.decryptionKeys(rids.map((r) => ({ ...(r.serial ? { serial: r.serial } : {}), ...(r.subjectKeyId ? { subjectKeyId: r.subjectKeyId } : {}) }))),
  });
  const e = result.encryption;
  if (e) ctx.log.info({ event: e.status === 'decrypted' ? 'worker.decrypted' : 'worker.not_decrypted', queueId: ctx.queueId, cipher: e.cipher, reason: e.reason }, e.status === 'decrypted' ? 'S/MIME message decrypted' : 'S/MIME message not decrypted');
  for (const s of result.signatures) ctx.log.info({ event: 'worker.signature', queueId: ctx.queueId, status: s.status, scope: s.scope, signer: s.address, reason: s.reason }, 'S/MIME signature checked');
  if (ctx.config.smime.auto_import) await learn(result, ctx);
  return { result, revocation };
}

/**
 * RFC 8550 auto-import: certificates of valid signatures on incoming mail are kept (source
 * "mail"), with the capabilities the signature advertised; the chain certificates too, never as
 * anchors. A new certificate for a known address is flagged and audited by the store.
 */
async function learn(result: OpenResult, ctx: TransformContext): Promise<void> {
  for (const s of result.signatures) {
    if (s.status !== 'valid' || s.scope === 'outer' || !s.certDer) continue;
    // Most mail comes from correspondents already known: parsing their certificate again and
    // writing the same capabilities (an fsync) cost ~11 ms a message (profiled). Once per process.
    const seen = `${createHash('sha256').update(s.certDer).digest('hex')}:${JSON.stringify(s.capabilities ?? null)}`;
    if (ctx.keys.learnt.get(seen)) continue;
    try {
      const cert = parseCertificate(s.certDer);
      if (!checkForImport(cert, { trust: false }).ok) continue;
      const learnt = await ctx.store.learnCertificate(cert, { actor: 'worker' });
      for (const der of s.chainDer) {
        const ca = parseCertificate(der);
        if (ca.isCA && checkForImport(ca, { trust: false }).ok) await ctx.store.learnCertificate(ca, { actor: 'worker' });
      }
      if (s.capabilities) await ctx.store.setCapabilities(cert.fingerprint, s.capabilities);
      ctx.keys.learnt.set(seen, true);
      if (learnt.status === 'added') {
        ctx.log[learnt.keyChange ? 'warn' : 'info'](
          { event: learnt.keyChange ? 'worker.key_change' : 'worker.certificate_learnt', queueId: ctx.queueId, address: cert.emails, fingerprint: cert.fingerprint },
          learnt.keyChange ? 'a different certificate arrived for a known address: stored and flagged' : 'certificate of a signed message stored',
        );
      }
    } catch (err) {
      // The whole message is processed again once the store answers: learnt then.
      if (isStoreUnavailable(err)) throw err;
      ctx.log.warn({ event: 'worker.certificate_not_learnt', queueId: ctx.queueId, reason: (err as Error).message }, 'certificate of a signed message not stored');
    }
  }
}

export const smime: CryptoMethod = {
  id: 'smime',
  label: 'S/MIME',
  keyName: 'S/MIME certificate',
  signsInside: false,
  perRecipient: false,
  protectsHeaders: true,
  keepsSignature: true,

  keyFacts(records, role, now) {
    const sender = role === 'sender';
    return records.certificates.some((c) => usableCertificate(c, now, sender) && (sender ? canSignWith(c) : canEncryptTo(c)));
  },

  async isCiphertext(found) {
    if (found.method !== 'smime') return false;
    try {
      return envelopeRecipients(found.der).length > 0;
    } catch {
      return false;
    }
  },

  async open(body, how, _recipients, ctx) {
    const { result, revocation } = await open(body, how, ctx);
    // Each signer path checked for revocation, stated beside the signature results.
    return { opened: result, results: smimeResults(result), extra: revocation.map((p): [string, string] => ['X-Postern-Revocation', revocationSummary(p).replace(/[\r\n]+/g, ' ').slice(0, 400)]) };
  },

  async sign(body, ctx, payload) {
    try {
      const signer = await ctx.keys.signer(ctx.sender, ctx.lookups);
      if (!signer) {
        ctx.log.warn({ event: 'worker.not_signed', queueId: ctx.queueId, sender: ctx.sender, method: 'smime', reason: 'no usable signing certificate' }, 'message not signed');
        return null;
      }
      return await signMessage(body, signer, { form: ctx.config.smime.signature, ...(payload ? { payload } : {}) });
    } catch (err) {
      // The signing key could not be fetched now: deferred and signed later, not sent unsigned.
      if (isStoreUnavailable(err)) throw err;
      ctx.log.error({ event: 'worker.not_signed', queueId: ctx.queueId, sender: ctx.sender, reason: (err as Error).message }, 'message not signed');
      return null;
    }
  },

  async encrypt(input, ctx) {
    const targets: EncryptionTarget[] = [];
    for (const r of input.recipients) {
      const t = await ctx.keys.encryptionTarget(r, ctx.lookups);
      if (!t) {
        const why = ctx.keys.lastProblem.get(r.toLowerCase());
        return { kind: 'hold', reason: `encryption with S/MIME was decided for ${r}, but ${why ? `the certificate cannot be used: ${why}` : 'no usable certificate is there now'}` };
      }
      targets.push(t);
    }
    const all: SmimeRecipient[] = targets.map((t) => t.recipient);
    if (ctx.config.smime.encrypt_to_sender && ctx.sender) {
      const own = await ctx.keys.encryptionTarget(ctx.sender, ctx.lookups);
      if (own && !targets.some((t) => t.certificate.fingerprint === own.certificate.fingerprint)) all.push(own.recipient);
    }
    try {
      const rule = input.smimeOptions;
      const body = await encryptMessage(input.body, all, { cipher: cipherFor(targets, ctx.config, rule), rsaPadding: rule?.rsa_padding ?? ctx.config.smime.rsa_padding, ...(input.payload ? { payload: input.payload } : {}) });
      return { kind: 'ok', body, signed: false };
    } catch (err) {
      return { kind: 'hold', reason: `S/MIME encryption failed: ${(err as Error).message}` };
    }
  },

  streamSeal: smimeStreamSeal,
};
