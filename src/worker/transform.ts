/**
 * One group's treatment, run step by step through the protection methods (methods/): inbound,
 * open (decrypt and verify, once per message whatever the number of recipients); outbound, keys
 * attached ({send_keys}), header protection prepared, sign (once per distinct body), encrypt (once
 * per group: one ciphertext for all its recipients). The treatment names methods by id only; what
 * each one does is its module's business.
 *
 * Fail closed: when encryption was chosen and cannot be done — the key went away, cannot be used,
 * the step fails — the group is held with the reason; it is never sent in clear. A signature that
 * cannot be made is logged and the mail goes unsigned (no secret is at stake).
 */
import { LimitExceededError } from '../core/index.js';
import type { PdfEncryptOptions, SmimeEncryptOptions } from '../policy/index.js';
import { addAttachments, bodyCiphertext, cryptoMethods, resultFields } from '../mime/index.js';
import { CRYPTO_METHODS, cryptoMethodOf, methodOf, type CryptoMethodId, type MethodId, type OpenChoice, type Opened, type OpenStep, type SideNotice, type TransformContext } from './methods/index.js';
import { sendKeysAttachments } from './send-keys.js';
import { countOpened } from './tally.js';
import { countCryptoFailure } from '../log/index.js';
import { openProtected, outboundProtection, type HeaderProtectionMode } from './header-protection.js';

export type { TransformContext } from './methods/index.js';

/** A group's treatment: what the plan (plan.ts) chose for these recipients. */
export interface CryptoChoice {
  /** Decrypt and/or verify incoming crypto (what the message carries). */
  open: OpenChoice | null;
  sign: CryptoMethodId | null;
  encrypt: MethodId | null;
  /** The rule's S/MIME options (cipher, RSA padding) over postern.yaml's. */
  smimeOptions?: SmimeEncryptOptions;
  /** OpenPGP inline (text-only mail; PGP/MIME for anything else) instead of PGP/MIME. */
  pgpInline?: boolean;
  /** The rule's PDF mail options over postern.yaml's. */
  pdfOptions?: PdfEncryptOptions;
  /** {send_keys}: attach the sender's certificates and/or OpenPGP keys (before signing). */
  sendKeys: { smime: boolean; pgp: boolean } | null;
  /** The encrypt rule's RFC 9788 header protection over postern.yaml's. */
  headerProtection?: HeaderProtectionMode;
}

/** What is computed once per message and shared by its recipient groups. */
export interface MessageMemo {
  opened?: Map<string, Promise<{ result: Opened; headers: [string, string][] }>>;
  /** sealedBody per body buffer: the plan asks for the message, every group for its body. */
  sealed?: WeakMap<Buffer, Promise<CryptoMethodId | null>>;
  withKeys?: Map<string, Promise<Buffer>>;
  signed?: Map<string, Promise<Buffer | null>>;
}

export type GroupResult =
  | { kind: 'ok'; body: Buffer; headers: [string, string][]; encryption: MethodId | null; signed: boolean; opened?: Opened; notices?: SideNotice[]; afterCommit?: (() => Promise<void>)[] }
  | { kind: 'hold'; reason: string; /** Absent: held_encryption (core/outcomes.ts). */ outcome?: 'held_limit' };

/** A memoised promise: the same step on the same input runs once per message. */
function once<T>(map: Map<string, Promise<T>>, key: string, run: () => Promise<T>): Promise<T> {
  let p = map.get(key);
  if (!p) map.set(key, (p = run()));
  return p;
}

/**
 * Open with the method of the message's outermost layer, then with each other method whose crypto
 * is still in the result (an OpenPGP-signed part beside an S/MIME one, S/MIME inside OpenPGP
 * encryption): every signature and every ciphertext anywhere is reported, one summary for all.
 */
async function openAll(base: Buffer, how: OpenChoice, recipients: readonly string[], ctx: TransformContext): Promise<{ result: Opened; headers: [string, string][] }> {
  const runs: OpenStep[] = [await cryptoMethodOf(how.method).open(base, how, recipients, ctx)];
  for (const m of CRYPTO_METHODS) {
    if (m.id === how.method) continue;
    const last = runs[runs.length - 1]!;
    if (cryptoMethods(last.opened.message).includes(m.id)) runs.push(await m.open(last.opened.message, how, recipients, ctx));
  }
  countOpened(runs, how.decrypt);
  const first = runs[0]!;
  const last = runs[runs.length - 1]!;
  const decrypted = runs.find((r) => r.opened.encryption?.status === 'decrypted');
  // The innermost content any opening reached (each goes on where the one before stopped).
  const protectedHeader = [...runs].reverse().find((r) => r.opened.protectedHeader)?.opened.protectedHeader;
  return {
    result: {
      message: last.opened.message,
      encryption: (decrypted ?? first).opened.encryption ?? runs.find((r) => r.opened.encryption)?.opened.encryption ?? null,
      ...(protectedHeader ? { protectedHeader } : {}),
      signatures: runs.flatMap((r) => r.results.signatures),
    },
    headers: [...resultFields(runs.map((r) => r.results)), ...runs.flatMap((r) => r.extra)],
  };
}

/**
 * The method whose ciphertext the whole body already is (the sender's client encrypted it), after
 * the method's own check of the bytes; null when it is not (armour in a text part never counts).
 */
export async function sealedBody(message: Buffer): Promise<CryptoMethodId | null> {
  const found = bodyCiphertext(message);
  if (!found) return null;
  for (const m of CRYPTO_METHODS) if (await m.isCiphertext(found)) return m.id;
  return null;
}

/** sealedBody once per buffer of a message (a CMS parse of a large ciphertext is not free). */
export function sealedOnce(body: Buffer, memo: MessageMemo): Promise<CryptoMethodId | null> {
  memo.sealed ??= new WeakMap();
  let p = memo.sealed.get(body);
  if (!p) memo.sealed.set(body, (p = sealedBody(body)));
  return p;
}

async function attachKeys(body: Buffer, want: { smime: boolean; pgp: boolean }, ctx: TransformContext): Promise<Buffer> {
  const { attachments, missing } = await sendKeysAttachments(ctx.store, ctx.sender, want);
  if (missing.length) ctx.log.warn({ event: 'worker.send_keys_missing', queueId: ctx.queueId, sender: ctx.sender, missing }, 'some keys asked for by a subject command are not there');
  if (!attachments.length) return body;
  ctx.log.info({ event: 'worker.send_keys', queueId: ctx.queueId, sender: ctx.sender, files: attachments.map((a) => a.filename) }, "sender's keys attached");
  return addAttachments(body, attachments);
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
    let o: Awaited<NonNullable<MessageMemo['opened']> extends Map<string, infer P> ? P : never>;
    try {
      o = await once((memo.opened ??= new Map()), JSON.stringify([how, [...recipients].sort()]), () => openProtected(base, (m) => openAll(m, how, recipients, ctx), how.method, ctx.log, ctx.queueId));
    } catch (err) {
      // A hostile message (a decompression bomb, 10,000 nested parts, an absurd CMS length): held
      // for the recipients whose plan opens it, with the limit as the reason; never passed unopened.
      if (!(err instanceof LimitExceededError)) throw err;
      ctx.log.warn({ event: 'worker.limit_exceeded', queueId: ctx.queueId, recipients, limit: err.limit, max: err.max, reason: err.message }, 'held: the message goes past a limit');
      return { kind: 'hold', reason: err.message, outcome: 'held_limit' };
    }
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
    const from = body;
    body = await once((memo.withKeys ??= new Map()), JSON.stringify([choice.open, want]), () => attachKeys(from, want, ctx));
  }
  let signed = false;
  const encryptWith = choice.encrypt ? methodOf(choice.encrypt) : null;
  // A method that signs inside its own encryption does both in one step (RFC 3156 6.2).
  const signInside = encryptWith !== null && encryptWith.signsInside && choice.sign === encryptWith.id;
  // RFC 9788: what the signature and the encryption cover carries the header fields; outside, the
  // header after the confidentiality policy. Undone if in the end nothing covers it.
  const plain = body;
  const hp = outboundProtection(body, { sign: choice.sign !== null, encrypt: encryptWith !== null && encryptWith.protectsHeaders, inlinePgp: choice.encrypt === 'pgp' && choice.pgpInline === true, ...(choice.headerProtection ? { mode: choice.headerProtection } : {}) }, ctx.config);
  let payload = hp?.payload;
  if (hp) body = hp.message;
  if (choice.sign && !signInside) {
    // Per distinct body (with or without keys attached, protected for encryption or not): signing the same bytes twice is waste.
    const key = JSON.stringify([choice.open, choice.sendKeys, choice.sign, hp ? [choice.encrypt !== null, choice.headerProtection ?? null] : null]);
    const from = body;
    const p = payload;
    const signWith = cryptoMethodOf(choice.sign);
    const s = await once((memo.signed ??= new Map()), key, async () => {
      const made = await signWith.sign(from, ctx, p);
      if (!made) countCryptoFailure('sign', signWith.id, 'not_signed');
      return made;
    });
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
  if (encryptWith) {
    const r = await encryptWith.encrypt({ body, recipients, signInside, ...(payload ? { payload } : {}), ...(choice.smimeOptions ? { smimeOptions: choice.smimeOptions } : {}), ...(choice.pgpInline ? { inline: true } : {}), ...(choice.pdfOptions ? { pdfOptions: choice.pdfOptions } : {}) }, ctx);
    if (r.kind === 'hold') {
      countCryptoFailure('encrypt', encryptWith.id, 'held');
      return r;
    }
    if (signInside && !r.signed) countCryptoFailure('sign', encryptWith.id, 'not_signed');
    body = r.body;
    signed = encryptWith.keepsSignature ? signed || r.signed : r.signed;
    ctx.log.info({ event: 'worker.encrypted', queueId: ctx.queueId, recipients, method: encryptWith.id, signed }, 'message encrypted');
    return { kind: 'ok', body, headers, encryption: choice.encrypt, signed, ...(opened ? { opened } : {}), ...(r.notices?.length ? { notices: r.notices } : {}), ...(r.afterCommit?.length ? { afterCommit: r.afterCommit } : {}) };
  }
  return { kind: 'ok', body, headers, encryption: choice.encrypt, signed, ...(opened ? { opened } : {}) };
}
