/**
 * The crypto transforms the policy asked for, applied to one message: inbound, decrypt and verify
 * (once per message, whatever the number of recipients); outbound, sign (once per message) and
 * encrypt (once per group of recipients: one CMS object for all of them). Header edits come after,
 * on the outer header, which no signature covers.
 *
 * Fail closed: when encryption was chosen and cannot be done — the certificate went away, cannot
 * be used, the CMS step fails — the group is held with the reason; it is never sent in clear.
 * A signature that cannot be made is logged and the mail goes unsigned (no secret is at stake).
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config/types.js';
import type { KeyStore } from '../keystore/index.js';
import type { Logger } from '../log/index.js';
import type { SmimeEncryptOptions } from '../policy/index.js';
import { checkForImport, parseCertificate, revocationSeam, revocationSummary, type PathRevocation } from '../pki/index.js';
import { encryptMessage, envelopeRecipients, openMessage, signMessage, smimeResults, type ContentCipher, type OpenResult, type SmimeRecipient, type SmimeSigner } from '../smime/index.js';
import { addAttachments, bodyCiphertext, cryptoMethods, joinMessage, resultFields, splitMessage, type MethodResults } from '../mime/index.js';
import { decryptAttachments, isPgpCiphertext, PgpError, pgpEncryptMessage, type AttachmentResult, pgpInlineMessage, pgpOpenMessage, pgpResults, pgpSignMessage, type PgpOpenResult, type PgpRecipient, type PgpSigner } from '../openpgp/index.js';
import type { CryptoKeys, EncryptionTarget } from './crypto-keys.js';
import type { PgpKeys } from './pgp-keys.js';
import type { KeyLookups } from './policy-facts.js';
import { sendKeysAttachments } from './send-keys.js';
import { openProtected, outboundProtection, type HeaderProtectionMode } from './header-protection.js';

export interface CryptoChoice {
  /** Decrypt and/or verify incoming S/MIME or OpenPGP (what the message carries). */
  open: { decrypt: boolean; verify: boolean; method: 'smime' | 'pgp'; pgpAttachments?: boolean; pgpInlineHtml?: boolean } | null;
  sign: 'smime' | 'pgp' | null;
  encrypt: 'smime' | 'pgp' | null;
  /** The rule's S/MIME options (cipher, RSA padding) over postern.yaml's. */
  smimeOptions?: SmimeEncryptOptions;
  /** OpenPGP inline (text-only mail; PGP/MIME for anything else) instead of PGP/MIME. */
  pgpInline?: boolean;
  /** {send_keys}: attach the sender's certificates and/or OpenPGP keys (before signing). */
  sendKeys: { smime: boolean; pgp: boolean } | null;
  /** The encrypt rule's RFC 9788 header protection over postern.yaml's. */
  headerProtection?: HeaderProtectionMode;
}

export interface TransformContext {
  config: Config;
  store: KeyStore;
  keys: CryptoKeys;
  pgp: PgpKeys;
  /** This message's memoised look-ups (the same answers the policy decided with). */
  lookups: KeyLookups;
  log: Logger;
  queueId: string;
  sender: string;
}

/** What is computed once per message and shared by its recipient groups. */
/** What opening found, whichever the method: enough for the caller's bookkeeping. */
type Opened = {
  message: Buffer;
  encryption: { status: string; authenticated?: boolean; nested?: boolean } | null;
  /** Where a protected header section (RFC 9788) would be, and what covers it: header-protection.ts. */
  protectedHeader?: Buffer;
  signatures?: readonly { status: string; scope: string }[];
};

export interface MessageMemo {
  opened?: Map<string, Promise<{ result: Opened; headers: [string, string][] }>>;
  /** sealedBody per body buffer: decide asks for the message, every group for its body. */
  sealed?: WeakMap<Buffer, Promise<'smime' | 'pgp' | null>>;
  withKeys?: Map<string, Promise<Buffer>>;
  signed?: Map<string, Promise<Buffer | null>>;
}

export type GroupResult =
  | { kind: 'ok'; body: Buffer; headers: [string, string][]; encryption: 'smime' | 'pgp' | null; signed: boolean; opened?: Opened }
  | { kind: 'hold'; reason: string };

const SMIME_NAMES: Record<string, string> = { smime: 'S/MIME' };

function cipherFor(targets: EncryptionTarget[], config: Config, rule?: SmimeEncryptOptions): ContentCipher {
  const c = config.smime;
  if (rule?.cipher && rule.cipher !== 'capable') return rule.cipher;
  // GCM only when every recipient of the one CMS object said it reads it (RFC 8551 2.7.1).
  const capable = rule?.cipher === 'capable' || c.prefer_gcm;
  if (capable && targets.length && targets.every((t) => t.capabilities?.ciphers.includes('aes-256-gcm'))) return 'aes-256-gcm';
  return c.cipher;
}

async function open(body: Buffer, choice: NonNullable<CryptoChoice['open']>, ctx: TransformContext): Promise<{ result: OpenResult; revocation: PathRevocation[] }> {
  const trust = await ctx.keys.trustStore();
  const revocation: PathRevocation[] = [];
  const checker = ctx.keys.revocation;
  const result = await openMessage(body, {
    ...(checker ? { revocation: revocationSeam(checker, ctx.config.revocation.mode.inbound, { onResult: (r) => revocation.push(r) }) } : {}),
    trust,
    decrypt: choice.decrypt,
    verify: choice.verify,
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
      ctx.log.warn({ event: 'worker.certificate_not_learnt', queueId: ctx.queueId, reason: (err as Error).message }, 'certificate of a signed message not stored');
    }
  }
}

async function openPgp(body: Buffer, choice: NonNullable<CryptoChoice['open']>, recipients: readonly string[], ctx: TransformContext): Promise<{ result: PgpOpenResult; attachments: AttachmentResult[] }> {
  const keysFor = (ids: string[]) => ctx.pgp.decryptionKeys(ids, recipients, ctx.lookups);
  const result = await pgpOpenMessage(body, {
    decrypt: choice.decrypt,
    verify: choice.verify,
    ...(choice.pgpInlineHtml ? { inlineHtml: true } : {}),
    ...(choice.pgpAttachments ? { attachmentFiles: true } : {}),
    keysFor,
    verificationKeysFor: (ids, from) => ctx.pgp.verificationKeys(ids, from, ctx.lookups),
  });
  let attachments: AttachmentResult[] = [];
  if (choice.decrypt && choice.pgpAttachments) {
    const { outer, entity } = splitMessage(result.message);
    const r = await decryptAttachments(entity, keysFor);
    attachments = r.results;
    if (r.entity !== entity) result.message = joinMessage(outer, r.entity);
    for (const a of attachments) ctx.log.info({ event: a.status === 'decrypted' ? 'worker.attachment_decrypted' : 'worker.attachment_not_decrypted', queueId: ctx.queueId, name: a.name, reason: a.reason }, 'OpenPGP attachment');
  }
  const e = result.encryption;
  if (e) ctx.log.info({ event: e.status === 'decrypted' ? 'worker.decrypted' : 'worker.not_decrypted', queueId: ctx.queueId, method: 'pgp', cipher: e.cipher, reason: e.reason }, e.status === 'decrypted' ? 'OpenPGP message decrypted' : 'OpenPGP message not decrypted');
  for (const s of result.signatures) ctx.log.info({ event: 'worker.signature', queueId: ctx.queueId, method: 'pgp', status: s.status, scope: s.scope, signer: s.address, reason: s.reason }, 'OpenPGP signature checked');
  return { result, attachments };
}

/** One method's opening: its output, its findings, and the fields it adds beside them. */
async function openWith(method: 'smime' | 'pgp', body: Buffer, how: NonNullable<CryptoChoice['open']>, recipients: readonly string[], ctx: TransformContext): Promise<{ opened: Opened; results: MethodResults; extra: [string, string][] }> {
  if (method === 'pgp') {
    const { result, attachments } = await openPgp(body, how, recipients, ctx);
    return { opened: result, results: pgpResults(result), extra: attachmentHeaders(attachments) };
  }
  const { result, revocation } = await open(body, how, ctx);
  // Each signer path checked for revocation, stated beside the signature results.
  return { opened: result, results: smimeResults(result), extra: revocation.map((p): [string, string] => ['X-Postern-Revocation', revocationSummary(p).replace(/[\r\n]+/g, ' ').slice(0, 400)]) };
}

/**
 * Open with the method of the message's outermost layer, then with the other one when its crypto
 * is still in the result (an OpenPGP-signed part beside an S/MIME one, S/MIME inside OpenPGP
 * encryption): every signature and every ciphertext anywhere is reported, one summary for all.
 */
async function openBoth(base: Buffer, how: NonNullable<CryptoChoice['open']>, recipients: readonly string[], ctx: TransformContext): Promise<{ result: Opened; headers: [string, string][] }> {
  const first = await openWith(how.method, base, how, recipients, ctx);
  const other = how.method === 'smime' ? 'pgp' : 'smime';
  const second = cryptoMethods(first.opened.message).includes(other) ? await openWith(other, first.opened.message, how, recipients, ctx) : null;
  const runs = second ? [first, second] : [first];
  const decrypted = runs.find((r) => r.opened.encryption?.status === 'decrypted');
  return {
    result: {
      message: (second ?? first).opened.message,
      encryption: (decrypted ?? first).opened.encryption ?? second?.opened.encryption ?? null,
      // The innermost content either opening reached (the second goes on where the first stopped).
      ...((second?.opened.protectedHeader ?? first.opened.protectedHeader) ? { protectedHeader: second?.opened.protectedHeader ?? first.opened.protectedHeader } : {}),
      signatures: runs.flatMap((r) => r.results.signatures),
    },
    headers: [...resultFields(runs.map((r) => r.results)), ...runs.flatMap((r) => r.extra)],
  };
}

/**
 * The method whose ciphertext the whole body already is (the sender's client encrypted it), after
 * the method's own check of the bytes; null when it is not (armour in a text part never counts).
 */
/** sealedBody once per buffer of a message (a CMS parse of a large ciphertext is not free). */
export function sealedOnce(body: Buffer, memo: MessageMemo): Promise<'smime' | 'pgp' | null> {
  memo.sealed ??= new WeakMap();
  let p = memo.sealed.get(body);
  if (!p) memo.sealed.set(body, (p = sealedBody(body)));
  return p;
}

export async function sealedBody(message: Buffer): Promise<'smime' | 'pgp' | null> {
  const found = bodyCiphertext(message);
  if (!found) return null;
  if (found.method === 'pgp') return (await isPgpCiphertext(found.data)) ? 'pgp' : null;
  try {
    return envelopeRecipients(found.der).length ? 'smime' : null;
  } catch {
    return null;
  }
}

const quote = (s: string) => s.replace(/[\r\n"]+/g, ' ').slice(0, 200);
const attachmentHeaders = (list: AttachmentResult[]): [string, string][] =>
  list.map((a) => ['X-Postern-Attachment', `${a.status}; method=pgp; name="${quote(a.name)}"${a.reason ? `; reason="${quote(a.reason)}"` : ''}`]);

async function sign(body: Buffer, method: 'smime' | 'pgp', ctx: TransformContext, payload?: Buffer): Promise<Buffer | null> {
  try {
    const signer = method === 'smime' ? await ctx.keys.signer(ctx.sender, ctx.lookups) : await ctx.pgp.signer(ctx.sender, ctx.lookups);
    if (!signer) {
      ctx.log.warn({ event: 'worker.not_signed', queueId: ctx.queueId, sender: ctx.sender, method, reason: `no usable ${method === 'smime' ? 'signing certificate' : 'OpenPGP signing key'}` }, 'message not signed');
      return null;
    }
    if (method === 'pgp') return await pgpSignMessage(body, signer as PgpSigner, payload ? { payload } : {});
    return await signMessage(body, signer as SmimeSigner, { form: ctx.config.smime.signature, ...(payload ? { payload } : {}) });
  } catch (err) {
    ctx.log.error({ event: 'worker.not_signed', queueId: ctx.queueId, sender: ctx.sender, reason: (err as Error).message }, 'message not signed');
    return null;
  }
}

async function attachKeys(body: Buffer, want: { smime: boolean; pgp: boolean }, ctx: TransformContext): Promise<Buffer> {
  const { attachments, missing } = await sendKeysAttachments(ctx.store, ctx.sender, want);
  if (missing.length) ctx.log.warn({ event: 'worker.send_keys_missing', queueId: ctx.queueId, sender: ctx.sender, missing }, 'some keys asked for by a subject command are not there');
  if (!attachments.length) return body;
  ctx.log.info({ event: 'worker.send_keys', queueId: ctx.queueId, sender: ctx.sender, files: attachments.map((a) => a.filename) }, "sender's keys attached");
  return addAttachments(body, attachments);
}

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

/** The message for one group of recipients, or why it must be held. */
export async function transformGroup(base: Buffer, choice: CryptoChoice, recipients: readonly string[], memo: MessageMemo, ctx: TransformContext): Promise<GroupResult> {
  let body = base;
  const headers: [string, string][] = [];
  let opened: Opened | undefined;
  if (choice.open) {
    const how = choice.open;
    // OpenPGP decrypts with the keys of the recipients it was sent to (also when it is opened
    // second, inside S/MIME): part of the memo key.
    const key = JSON.stringify([how, [...recipients].sort()]);
    memo.opened ??= new Map();
    let p = memo.opened.get(key);
    if (!p) memo.opened.set(key, (p = openProtected(base, (m) => openBoth(m, how, recipients, ctx), how.method, ctx.log, ctx.queueId)));
    const o = await p;
    opened = o.result;
    body = opened.message;
    headers.push(...o.headers);
  }
  // Already ciphertext as a whole (the sender's client encrypted it): passed with its encryption
  // intact — not encrypted again, not signed on top (a signature around ciphertext says who sent
  // it, not who wrote it), no keys attached (that would put the ciphertext inside a multipart).
  const sealed = choice.sign || choice.encrypt || choice.sendKeys ? await sealedOnce(body, memo) : null;
  if (sealed) {
    ctx.log.info({ event: 'worker.already_encrypted', queueId: ctx.queueId, recipients, method: sealed }, 'already encrypted by the sender: passed as it is');
    return { kind: 'ok', body, headers, encryption: sealed, signed: false, ...(opened ? { opened } : {}) };
  }
  if (choice.sendKeys) {
    const want = choice.sendKeys;
    const key = JSON.stringify([choice.open, want]);
    memo.withKeys ??= new Map();
    let p = memo.withKeys.get(key);
    const from = body;
    if (!p) memo.withKeys.set(key, (p = attachKeys(from, want, ctx)));
    body = await p;
  }
  let signed = false;
  // An OpenPGP signature goes inside OpenPGP encryption (RFC 3156 6.2), not around the text first.
  const signInside = choice.sign === 'pgp' && choice.encrypt === 'pgp';
  // RFC 9788: what the signature and the encryption cover carries the header fields; outside, the
  // header after the confidentiality policy. Undone if in the end nothing covers it.
  const plain = body;
  const hp = outboundProtection(body, { sign: choice.sign !== null, encrypt: choice.encrypt !== null, inlinePgp: choice.encrypt === 'pgp' && choice.pgpInline === true, ...(choice.headerProtection ? { mode: choice.headerProtection } : {}) }, ctx.config);
  let payload = hp?.payload;
  if (hp) body = hp.message;
  if (choice.sign && !signInside) {
    // Per distinct body (with or without keys attached, protected for encryption or not): signing the same bytes twice is waste.
    const key = JSON.stringify([choice.open, choice.sendKeys, choice.sign, hp ? [choice.encrypt !== null, choice.headerProtection ?? null] : null]);
    memo.signed ??= new Map();
    let p = memo.signed.get(key);
    const from = body;
    if (!p) memo.signed.set(key, (p = sign(from, choice.sign, ctx, payload)));
    const s = await p;
    if (s) {
      body = s;
      signed = true;
      payload = undefined;
    } else if (!choice.encrypt) {
      // Neither signed nor encrypted: a protected header section would protect nothing.
      body = plain;
      payload = undefined;
    }
  }
  if (choice.encrypt === 'smime') {
    const targets: EncryptionTarget[] = [];
    for (const r of recipients) {
      const t = await ctx.keys.encryptionTarget(r, ctx.lookups);
      if (!t) {
        const why = ctx.keys.lastProblem.get(r.toLowerCase());
        return { kind: 'hold', reason: `encryption with ${SMIME_NAMES.smime} was decided for ${r}, but ${why ? `the certificate cannot be used: ${why}` : 'no usable certificate is there now'}` };
      }
      targets.push(t);
    }
    const all: SmimeRecipient[] = targets.map((t) => t.recipient);
    if (ctx.config.smime.encrypt_to_sender && ctx.sender) {
      const own = await ctx.keys.encryptionTarget(ctx.sender, ctx.lookups);
      if (own && !targets.some((t) => t.certificate.fingerprint === own.certificate.fingerprint)) all.push(own.recipient);
    }
    try {
      body = await encryptMessage(body, all, { cipher: cipherFor(targets, ctx.config, choice.smimeOptions), rsaPadding: choice.smimeOptions?.rsa_padding ?? ctx.config.smime.rsa_padding, ...(payload ? { payload } : {}) });
    } catch (err) {
      return { kind: 'hold', reason: `S/MIME encryption failed: ${(err as Error).message}` };
    }
    ctx.log.info({ event: 'worker.encrypted', queueId: ctx.queueId, recipients, method: 'smime', signed }, 'message encrypted');
  }
  if (choice.encrypt === 'pgp') {
    const keys: PgpRecipient[] = [];
    for (const r of recipients) {
      const k = await ctx.pgp.recipient(r, ctx.lookups);
      if (!k) return { kind: 'hold', reason: `encryption with OpenPGP was decided for ${r}, but no usable OpenPGP key is there now` };
      keys.push(k);
    }
    const signer = signInside ? await ctx.pgp.signer(ctx.sender, ctx.lookups) : null;
    if (signInside && !signer) ctx.log.warn({ event: 'worker.not_signed', queueId: ctx.queueId, sender: ctx.sender, method: 'pgp', reason: 'no usable OpenPGP signing key' }, 'message not signed');
    try {
      body = choice.pgpInline ? await inlineOrMime(body, keys, signer, ctx) : await pgpEncryptMessage(body, keys, { ...(signer ? { signer } : {}), ...(payload ? { payload } : {}) });
    } catch (err) {
      return { kind: 'hold', reason: `OpenPGP encryption failed: ${(err as Error).message}` };
    }
    if (signer) signed = true;
    ctx.log.info({ event: 'worker.encrypted', queueId: ctx.queueId, recipients, method: 'pgp', signed }, 'message encrypted');
  }
  return { kind: 'ok', body, headers, encryption: choice.encrypt, signed, ...(opened ? { opened } : {}) };
}
