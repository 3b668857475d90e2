/**
 * The large-message path: a claimed entry above the spool's streaming threshold (it has a file
 * `range`) whose plan is pass-through or sign and/or encrypt (S/MIME, OpenPGP) is written to outgoing/
 * straight from its file range through the streaming transforms — only its header is parsed and
 * held, so memory stays bounded whatever the size (issue 15: peak RSS < 3× the message).
 *
 * It decides exactly as decide.ts does — the same facts (messageFactsStreamed: messageFacts' result
 * read in one pass over the file, multiparts followed through their boundaries), the same plan
 * (plan.ts) — and executes the
 * plan itself only when every part of it streams — the sign/encrypt step through the method's
 * `streamSeal` (methods/smime-stream.ts, pgp-stream.ts); otherwise it returns null and the caller runs the Buffer
 * path. What does not stream: a method without `streamSeal`, OpenPGP inline, mail whose facts
 * one pass cannot read exactly (1000 parts or more, a header block over 256 KB: mime/facts-stream.ts), mail that
 * is already signed or encrypted, rules that open mail, stopped recipients (hold, bounce,
 * delete), copies, notices, send_keys, generate_keys, the legacy display of header protection,
 * 8-bit content to be signed that canonicalEntity's re-encoding cannot stream (a single 8-bit part,
 * a large 8-bit part of a multipart: methods/stream-entity.ts), a missing encryption certificate (the
 * Buffer path holds it with the reason).
 * Correctness first: every such case is said at debug level (event worker.large_fallback).
 */
import { Buffer } from 'node:buffer';
import type { Config } from '../config/types.js';
import { inDomains, LocalError, type Envelope } from '../core/index.js';
import { keepOriginal, ORIGINAL_NOTE, type KeptOriginal } from '../dsn/index.js';
import type { Logger } from '../log/index.js';
import { concatChunks, editHeaders, messageFactsStreamed, type HeaderEdits } from '../mime/index.js';
import { streamRange, type BodyRange, type HeldDraft, type StreamedDraft } from '../spool/index.js';
import type { PolicyContext } from './decide.js';
import { factsOfMessage } from './facts.js';
import { describePlan, planMessage } from './plan.js';
import { methodOf, type MethodId } from './methods/index.js';
import { copyMethod, directionOf, type DecisionTally } from './tally.js';
import type { WorkerEntry } from './binary-form.js';
import { countCryptoFailure } from '../log/index.js';

/** The in-memory path must do it (the reason goes to the debug log). */
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
export async function decideStreamed(entry: WorkerEntry, ctx: PolicyContext | null, log: Logger): Promise<{ drafts: StreamedDraft[]; held: HeldDraft[]; tally?: DecisionTally } | null> {
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

async function decideRange(entry: WorkerEntry, range: BodyRange, ctx: PolicyContext | null, log: Logger): Promise<{ drafts: StreamedDraft[]; held: HeldDraft[]; tally?: DecisionTally }> {
  const env = entry.meta.envelope;
  // The message as the worker sees it: the file range, or a BINARYMIME message's DATA form made from it (binary-form.ts).
  const converted = entry.converted;
  const length = converted ? converted.length : range.length;
  const whole = (): AsyncIterable<Buffer> => (converted ? asAsync(converted.chunks()) : streamRange(range));
  if (!ctx) return { drafts: [{ envelope: env, chunks: whole, key: 'unchanged' }], held: [] };
  if (entry.unconvertible !== undefined) fallback('BINARYMIME that cannot be given a DATA form: decide.ts refuses its transforms');
  // One pass over the file: the facts messageFacts would give, holding one part header and one
  // bounded body prefix at a time (a single part: only its start is read).
  const read = await messageFactsStreamed(whole(), length);
  if (read.kind === 'unsure') return fallback(read.reason);
  const { facts: message, head: headerBlock } = read;
  const bodyOffset = headerBlock.length;
  if (message.encrypted || message.signed) fallback('already signed or encrypted');
  const { config } = ctx;
  // As decide.ts: the same fact gathering (from the header block; the facts themselves come
  // from `message`), then the same pure plan.
  const { facts, base: head, lookups } = await factsOfMessage({ id: entry.id, envelope: env }, headerBlock, message, ctx, log);
  // Opening looks for crypto anywhere in the body (armour past the prefix too): not from a header.
  if (facts.policy.some((p) => p.actions.some((a) => a.kind === 'decrypt' || a.kind === 'verify'))) fallback('a rule opens mail: the whole body is searched for crypto');
  const plan = planMessage(facts);
  if (plan.generate) fallback('generate_keys');
  if (plan.stopped.length) fallback('held, bounced or deleted recipients');
  if (plan.copies.length || plan.notifySender.length || plan.alerts.length) fallback('copies or notices');
  for (const d of plan.deliveries) {
    if (d.treatment.open || d.treatment.sendKeys) fallback('send_keys');
    // One method signs and encrypts the copy, and it must be able to do so as a stream.
    const ids = [...new Set([d.treatment.sign, d.treatment.encrypt].filter((m): m is MethodId => m !== null))];
    if (ids.length > 1) fallback(`signed with ${methodOf(ids[0]!).label} and encrypted with ${methodOf(ids[1]!).label}`);
    if (ids.length && !methodOf(ids[0]!).streamSeal) fallback(`${methodOf(ids[0]!).label} is not streamed`);
  }
  log.debug({ event: 'worker.plan', queueId: entry.id, rules: facts.policy.map((p) => ({ recipient: p.recipient, direction: p.direction, rules: p.rules })), plan: describePlan(plan) }, 'policy decided');

  const bodyRange: BodyRange = { ...range, offset: range.offset + bodyOffset, length: range.length - bodyOffset };
  const body = (): AsyncIterable<Buffer> => (converted ? skipBytes(converted.chunks(), bodyOffset) : streamRange(bodyRange));
  const internal = (a: string) => inDomains(a, config.internal_domains);
  const autocrypt = plan.autocrypt && ctx.pgpKeys ? await ctx.pgpKeys.autocrypt(env.sender, lookups) : null;
  const drafts: StreamedDraft[] = [];
  const directions = new Map(facts.policy.map((p) => [p.recipient, p.direction]));
  const tally: DecisionTally = { processed: [], dropped: 0 };
  for (const d of plan.deliveries) {
    const direction = directionOf(d.recipients, directions);
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
      drafts.push({ envelope, key, chunks: () => (unchanged ? whole() : concatChunks(top, body())) });
      tally.processed.push({ method: 'clear', direction, recipients: d.recipients.length });
      continue;
    }
    // Before the seal reads the body and logs: a fallback found here costs nothing.
    const kept = keepLarge(headerBlock, envelope, length, config);
    const method = methodOf((choice.encrypt ?? choice.sign)!);
    const made = await method.streamSeal!(
      {
        head,
        body,
        recipients: envelope.recipients.map((r) => r.address),
        sign: choice.sign !== null,
        encrypt: choice.encrypt !== null,
        ...(choice.smimeOptions ? { smimeOptions: choice.smimeOptions } : {}),
        ...(choice.pgpInline ? { pgpInline: true } : {}),
        ...(choice.headerProtection ? { headerProtection: choice.headerProtection } : {}),
        edits: changed ? edits : null,
      },
      { config, store: ctx.store, portal: ctx.portal, keys: ctx.keys, pgp: ctx.pgpKeys, lookups, log, queueId: entry.id, sender: env.sender },
    );
    if (made.kind === 'fallback') return fallback(made.reason);
    const chunks = made.chunks;
    drafts.push({ envelope, key, chunks: () => failingAs(chunks()), ...(kept ? { notes: { [ORIGINAL_NOTE]: kept } } : {}) });
    if (choice.sign && !made.signed) countCryptoFailure('sign', choice.sign, 'not_signed');
    tally.processed.push({ method: copyMethod({ encryption: choice.encrypt, signedWith: made.signed ? choice.sign : null, decryptedFrom: null }), direction, recipients: d.recipients.length });
  }
  log.info({ event: 'worker.large_streamed', queueId: entry.id, size: range.length, outputs: drafts.length }, 'large message streamed');
  return { drafts, held: [], tally };
}

async function* asAsync(chunks: Iterable<Buffer>): AsyncGenerator<Buffer> {
  yield* chunks;
}

/** The chunks after the first `n` bytes. */
async function* skipBytes(chunks: Iterable<Buffer>, n: number): AsyncGenerator<Buffer> {
  let left = n;
  for (const c of chunks) {
    if (left >= c.length) {
      left -= c.length;
      continue;
    }
    yield left ? c.subarray(left) : c;
    left = 0;
  }
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
