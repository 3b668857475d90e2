/**
 * The large-message path: a claimed entry above the spool's streaming threshold (it has a file
 * `range`) whose plan is pass-through or S/MIME sign and/or encrypt is written to outgoing/
 * straight from its file range through the streaming transforms — only its header is parsed and
 * held, so memory stays bounded whatever the size (issue 15: peak RSS < 3× the message).
 *
 * It decides exactly as decide.ts does — the same facts (facts.ts, from the header and, for a
 * single part, the bounded prefix messageFacts reads), the same plan (plan.ts) — and executes the
 * plan itself only when every part of it streams; otherwise it returns null and the caller runs
 * the Buffer path. What does not stream: multipart mail (its facts need the MIME tree), mail that
 * is already signed or encrypted, rules that open mail, OpenPGP, stopped recipients (hold, bounce,
 * delete), copies, notices, send_keys, generate_keys, the legacy display of header protection,
 * 8-bit content to be signed (re-encoding is not streamed), a missing encryption certificate (the
 * Buffer path holds it with the reason).
 * Correctness first: every such case is said at debug level (event worker.large_fallback).
 */
import { Buffer } from 'node:buffer';
import type { Config } from '../config/types.js';
import { inDomains, LocalError, type Envelope } from '../core/index.js';
import { keepOriginal, ORIGINAL_NOTE, type KeptOriginal } from '../dsn/index.js';
import type { Logger } from '../log/index.js';
import { addressesOf, canonicalScan, concatChunks, crlfChunks, editHeaders, messageFacts, readEntity, splitHeader, splitMessage, toCrlf, type HeaderEdits } from '../mime/index.js';
import type { SmimeEncryptOptions } from '../policy/index.js';
import { smimeMessageChunks, signingBoundary, type ContentCipher, type SmimeRecipient, type SmimeSigner } from '../smime/index.js';
import { streamRange, type BodyRange, type ClaimedEntry, type HeldDraft, type StreamedDraft } from '../spool/index.js';
import type { EncryptionTarget } from './crypto-keys.js';
import type { PolicyContext } from './decide.js';
import { outboundProtection, type HeaderProtectionMode } from './header-protection.js';
import { gatherFacts } from './facts.js';
import { fetchMissingKeys, learnAutocrypt } from './key-sources.js';
import { describePlan, planMessage } from './plan.js';
import { memoLookups } from './policy-facts.js';

/** The header block must be within this many bytes of the start (else: Buffer path). */
const HEADER_LIMIT = 256 * 1024;
/** Bytes of a single-part body the facts look at (messageFacts sniffs at most ~1.4 MB of base64 for armour). */
const FACTS_PREFIX = 2 * 1024 * 1024;

/** The S/MIME part of a delivery's treatment. */
interface Treatment {
  sign: boolean;
  encrypt: boolean;
  smimeOptions?: SmimeEncryptOptions;
  headerProtection?: HeaderProtectionMode;
}

class Fallback extends Error {}
const fallback = (why: string): never => {
  throw new Fallback(why);
};

/** A failure inside a streamed transform: not a spool failure, so not "temporary" (the worker retries a few times, then holds). */
class StreamedTransformError extends LocalError {
  override get temporary(): boolean {
    return false;
  }
}

/** The outputs of a large message, or null when the Buffer path (decide.ts) must do it. */
export async function decideStreamed(entry: ClaimedEntry, ctx: PolicyContext | null, log: Logger): Promise<{ drafts: StreamedDraft[]; held: HeldDraft[] } | null> {
  const range = entry.range;
  if (!range) return null;
  try {
    return await decideRange(entry, range, ctx, log);
  } catch (err) {
    if (!(err instanceof Fallback)) throw err;
    log.debug({ event: 'worker.large_fallback', queueId: entry.id, size: range.length, reason: err.message }, 'large message handled in memory');
    return null;
  }
}

async function readPrefix(range: BodyRange, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of streamRange({ ...range, length: Math.min(range.length, max) })) {
    parts.push(c);
    n += c.length;
  }
  return Buffer.concat(parts, n);
}

async function decideRange(entry: ClaimedEntry, range: BodyRange, ctx: PolicyContext | null, log: Logger): Promise<{ drafts: StreamedDraft[]; held: HeldDraft[] }> {
  const env = entry.meta.envelope;
  if (!ctx) return { drafts: [{ envelope: env, chunks: () => streamRange(range), key: 'unchanged' }], held: [] };
  const prefix = await readPrefix(range, FACTS_PREFIX);
  const { bodyOffset } = splitHeader(prefix);
  if (bodyOffset >= Math.min(prefix.length, HEADER_LIMIT)) fallback('no end of header within the first 256 KB');
  const headerBlock = prefix.subarray(0, bodyOffset);
  if (readEntity(headerBlock).type.type.startsWith('multipart/')) fallback('multipart: the policy facts need the whole MIME tree');
  // A single part: what messageFacts reads of it lies within the prefix (its armour sniff is bounded).
  const message = { ...messageFacts(prefix), size: range.length };
  if (message.encrypted || message.signed) fallback('already signed or encrypted');
  const { config } = ctx;
  // As decide.ts: keys learnt and fetched first, then the facts (gatherFacts edits the header
  // block; the facts themselves come from `message`), then the same pure plan.
  const addresses = [...new Set(env.recipients.map((r) => r.address))];
  const io = { config, store: ctx.store, log, queueId: entry.id };
  if (config.discovery.autocrypt) await learnAutocrypt(message.headers, addressesOf(message.headers.get('from')?.[0] ?? '')[0] ?? '', io);
  if (ctx.sources) await fetchMissingKeys(addresses, ctx.sources, io);
  const lookups = memoLookups(ctx.store);
  const { facts, base: head } = await gatherFacts({
    body: headerBlock,
    message,
    sender: env.sender,
    recipients: addresses,
    clientTrusted: env.client.trusted,
    client: env.client.address,
    policy: ctx.policy,
    config,
    lookups,
    directory: ctx.directory,
    keysLoaded: ctx.keys !== undefined && ctx.pgpKeys !== undefined,
    memo: {},
    log,
    queueId: entry.id,
  });
  // Opening looks for crypto anywhere in the body (armour past the prefix too): not from a header.
  if (facts.policy.some((p) => p.actions.some((a) => a.kind === 'decrypt' || a.kind === 'verify'))) fallback('a rule opens mail: the whole body is searched for crypto');
  const plan = planMessage(facts);
  if (plan.generate) fallback('generate_keys');
  if (plan.stopped.length) fallback('held, bounced or deleted recipients');
  if (plan.copies.length || plan.notifySender.length || plan.alerts.length) fallback('copies or notices');
  for (const d of plan.deliveries) {
    if (d.treatment.open || d.treatment.sendKeys) fallback('send_keys');
    if (d.treatment.sign === 'pgp' || d.treatment.encrypt === 'pgp') fallback('OpenPGP');
  }
  log.debug({ event: 'worker.plan', queueId: entry.id, rules: facts.policy.map((p) => ({ recipient: p.recipient, direction: p.direction, rules: p.rules })), plan: describePlan(plan) }, 'policy decided');

  const body: BodyRange = { ...range, offset: range.offset + bodyOffset, length: range.length - bodyOffset };
  const internal = (a: string) => inDomains(a, config.internal_domains);
  const autocrypt = plan.autocrypt && ctx.pgpKeys ? await ctx.pgpKeys.autocrypt(env.sender, lookups) : null;
  const drafts: StreamedDraft[] = [];
  for (const d of plan.deliveries) {
    const { treatment: choice, redirect } = d;
    const envelope: Envelope = redirect ? { ...env, recipients: redirect.map((address) => ({ address })) } : { ...env, recipients: env.recipients.filter((r) => d.recipients.includes(r.address)) };
    const edits: HeaderEdits = { ...d.edits, ...(autocrypt && envelope.recipients.every((r) => !internal(r.address)) ? { addFolded: [['Autocrypt', autocrypt]] as [string, string][] } : {}) };
    const changed = (edits.add?.length ?? 0) + (edits.remove?.length ?? 0) + (edits.set?.length ?? 0) + (edits.addFolded?.length ?? 0) > 0;
    // The same output name as the Buffer path gives this delivery (execute.ts).
    const key = `deliver:${d.key}`;
    if (redirect) log.info({ event: 'worker.redirected', queueId: entry.id, recipients: d.recipients, to: redirect }, 'redirected by policy');
    if (!(ctx.keys && ctx.pgpKeys && (choice.sign || choice.encrypt))) {
      const top = changed ? editHeaders(head, edits) : head;
      const unchanged = top === headerBlock;
      drafts.push({ envelope, key, chunks: () => (unchanged ? streamRange(range) : concatChunks(top, streamRange(body))) });
      continue;
    }
    const g: Treatment = { sign: choice.sign === 'smime', encrypt: choice.encrypt === 'smime', ...(choice.smimeOptions ? { smimeOptions: choice.smimeOptions } : {}), ...(choice.headerProtection ? { headerProtection: choice.headerProtection } : {}) };
    const made = await smimeDraft(head, body, g, envelope.recipients.map((r) => r.address), env.sender, changed ? edits : null, ctx, lookups, entry.id, log);
    const kept = keepLarge(headerBlock, envelope, range.length, config);
    drafts.push({ envelope, key, chunks: made, ...(kept ? { notes: { [ORIGINAL_NOTE]: kept } } : {}) });
  }
  log.info({ event: 'worker.large_streamed', queueId: entry.id, size: range.length, outputs: drafts.length }, 'large message streamed');
  return { drafts, held: [] };
}

/** The cipher for one CMS object, as methods/smime.ts cipherFor() picks it. */
function cipherFor(targets: EncryptionTarget[], config: Config, rule?: SmimeEncryptOptions): ContentCipher {
  const c = config.smime;
  if (rule?.cipher && rule.cipher !== 'capable') return rule.cipher;
  const capable = rule?.cipher === 'capable' || c.prefer_gcm;
  if (capable && targets.length && targets.every((t) => t.capabilities?.ciphers.includes('aes-256-gcm'))) return 'aes-256-gcm';
  return c.cipher;
}

/**
 * The chunks of one S/MIME output: keys gathered and the content checked now (so a fallback is
 * still possible), bytes made when the spool writes the file.
 */
async function smimeDraft(
  head: Buffer, body: BodyRange, g: Treatment, rcpts: string[], sender: string, edits: HeaderEdits | null,
  ctx: PolicyContext, lookups: ReturnType<typeof memoLookups>, queueId: string, log: Logger,
): Promise<() => AsyncIterable<Buffer>> {
  const keys = ctx.keys!;
  const config = ctx.config;
  let signer: SmimeSigner | null = null;
  if (g.sign) {
    signer = await keys.signer(sender, lookups).catch(() => null);
    if (!signer) log.warn({ event: 'worker.not_signed', queueId, sender, method: 'smime', reason: 'no usable signing certificate' }, 'message not signed');
  }
  let recipients: SmimeRecipient[] | undefined;
  let cipher: ContentCipher | undefined;
  if (g.encrypt) {
    const targets: EncryptionTarget[] = [];
    for (const r of rcpts) {
      const t = await keys.encryptionTarget(r, lookups);
      if (!t) fallback(`no usable certificate for ${r} now`);
      targets.push(t!);
    }
    recipients = targets.map((t) => t.recipient);
    if (config.smime.encrypt_to_sender && sender) {
      const own = await keys.encryptionTarget(sender, lookups);
      if (own && !targets.some((t) => t.certificate.fingerprint === own.certificate.fingerprint)) recipients.push(own.recipient);
    }
    cipher = cipherFor(targets, config, g.smimeOptions);
  }
  if (!signer && !recipients) fallback('nothing left to do but an unsigned copy');
  // RFC 9788, as transform.ts does it: the payload carries the header fields (the header block
  // alone goes through protectHeaders; without the legacy display it never touches the body).
  if (g.encrypt && config.header_protection.legacy_display) fallback('header protection with the legacy display');
  const hp = outboundProtection(toCrlf(head), { sign: signer !== null, encrypt: g.encrypt, inlinePgp: false, ...(g.headerProtection ? { mode: g.headerProtection } : {}) }, config);
  const split = splitMessage(hp ? hp.message : toCrlf(head));
  const entityHead = hp ? hp.payload : split.entity;
  const boundary = signingBoundary();
  // What smtpd stores is CRLF already: then the body streams as it is, without the CRLF pass.
  let normalize = true;
  if (signer) {
    let scan = await canonicalScan(concatChunks(entityHead, streamRange(body)), [boundary]);
    normalize = !scan.crlf;
    if (normalize && scan.canonical) scan = await canonicalScan(concatChunks(entityHead, crlfChunks(streamRange(body))), [boundary]);
    if (!scan.canonical) fallback('8-bit or long lines to be signed: canonical form needs re-encoding');
    if (scan.contains) fallback('the boundary occurs in the content');
  }
  const entity = () => concatChunks(entityHead, normalize ? crlfChunks(streamRange(body)) : streamRange(body));
  const form = config.smime.signature;
  const opts = {
    ...(signer ? { signer, sign: { form, boundary } } : {}),
    ...(recipients ? { recipients, encrypt: { cipher: cipher!, rsaPadding: g.smimeOptions?.rsa_padding ?? config.smime.rsa_padding } } : {}),
    ...(edits ? { editHeader: (h: Buffer) => editHeaders(h, edits) } : {}),
  };
  if (recipients) log.info({ event: 'worker.encrypted', queueId, recipients: rcpts, method: 'smime', signed: signer !== null }, 'message encrypted');
  return () => failingAs(smimeMessageChunks(split.outer, entity(), opts));
}

/** Errors of the transform itself, typed so the worker does not take them for a full disk. */
async function* failingAs(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield* chunks;
  } catch (err) {
    throw new StreamedTransformError(err);
  }
}

/** keepOriginal for a message too large to return whole: its header block (decide.ts keeps the same). */
function keepLarge(head: Buffer, envelope: Envelope, size: number, config: Config): KeptOriginal | null {
  if (size <= config.relay.bounce_size_limit) fallback('bounce_size_limit covers the whole message');
  return keepOriginal(head, envelope, { limit: config.relay.bounce_size_limit, headersOnly: true });
}
