/**
 * BINARYMIME (RFC 3030) on its way out of the worker: a message that arrived by BDAT with
 * BODY=BINARYMIME is given its DATA form (mime/data-form.ts) before anything reads it — binary
 * parts re-encoded to base64, the envelope's BODY then 8BITMIME or 7BIT — so the policy, the
 * transforms (which canonicalise to CRLF and would change bare LFs in binary data), the DSN's
 * returned original, the portal's views and the relay all see the form they always saw.
 *
 * A message that cannot be converted faithfully (binary content under a signature, a structure
 * that cannot be read exactly) keeps BODY=BINARYMIME and its bytes: a recipient whose plan would
 * transform it (open, sign, encrypt, attach keys) is refused with 5.6.3 (bounced_conversion)
 * rather than given a broken copy; one whose copy passes unchanged goes to the relay, which sends
 * it only to a next hop that takes BINARYMIME and otherwise fails it with 5.6.3 (never over DATA).
 *
 * Untrusted input: the message. Memory: a spool file range is scanned and re-encoded as streams.
 */
import type { Logger } from '../log/index.js';
import { dataFormBuffer, dataFormChunks, dataFormOf, scanBinary, scanBinaryChunks, type DataForm } from '../mime/index.js';
import { loadRange, rangeChunksSync, streamRange, type ClaimedEntry } from '../spool/index.js';
import type { MessagePlan } from './plan.js';

/**
 * The message's bytes as a stream, when they are not the spool file's range as it is (large.ts
 * reads this instead of the range).
 */
export interface ConvertedSource {
  length: number;
  chunks(): Iterable<Buffer>;
}

/** A claimed entry as the worker processes it. */
export type WorkerEntry = ClaimedEntry & {
  /** A large BINARYMIME entry's DATA form, made from the range as it is read. */
  converted?: ConvertedSource;
  /** Why this BINARYMIME message keeps its binary form (nothing may transform it). */
  unconvertible?: string;
};

/** The entry as the worker should see it: unchanged unless it is BINARYMIME. */
export async function inDataForm(entry: ClaimedEntry, log: Logger): Promise<WorkerEntry> {
  const env = entry.meta.envelope;
  if (env.body !== 'BINARYMIME') return entry;
  const range = entry.range;
  const form: DataForm = dataFormOf(range ? await scanBinaryChunks(streamRange(range)) : scanBinary(entry.body));
  if (form.kind !== 'convertible') {
    log.warn({ event: 'worker.binary_unconvertible', queueId: entry.id, verdict: form.kind, reason: form.reason }, 'BINARYMIME message cannot be given a 7-bit or 8-bit form; only a BINARYMIME next hop may take it');
    return withProps(entry, { unconvertible: form.reason });
  }
  const meta = { ...entry.meta, envelope: { ...env, body: form.eightBit ? ('8BITMIME' as const) : ('7BIT' as const) } };
  log.info({ event: 'worker.binary_converted', queueId: entry.id, reencoded: form.reencoded, bodyType: meta.envelope.body }, 'BINARYMIME message given its DATA form');
  if (!range) return withProps(entry, { meta, body: dataFormBuffer(form, entry.body) });
  const total = range.length;
  const read = (offset: number, length: number) => rangeChunksSync(range, offset, length);
  const view = withProps(entry, { meta, converted: { length: form.length, chunks: () => dataFormChunks(form, total, read) } });
  // The in-memory path (large.ts falls back to it) asks for `body`: made then, not before.
  let body: Buffer | undefined;
  Object.defineProperty(view, 'body', { get: () => (body ??= dataFormBuffer(form, loadRange(range))), enumerable: true, configurable: true });
  return view;
}

/** A copy of the entry with some properties replaced; a lazy `body` stays lazy (no spread reads it). */
function withProps(entry: ClaimedEntry, props: Partial<WorkerEntry>): WorkerEntry {
  const view = Object.defineProperties({}, Object.getOwnPropertyDescriptors(entry)) as WorkerEntry;
  for (const [k, v] of Object.entries(props)) Object.defineProperty(view, k, { value: v, enumerable: true, configurable: true, writable: true });
  return view;
}

/**
 * The plan for an unconvertible BINARYMIME message: deliveries whose treatment would transform
 * the message are refused with 5.6.3; those that pass it unchanged go on (to the relay's check).
 */
export function refuseTransforms(plan: MessagePlan, entry: WorkerEntry): MessagePlan {
  const why = entry.unconvertible;
  if (why === undefined) return plan;
  const transforms = (d: MessagePlan['deliveries'][number]) => !!(d.treatment.open || d.treatment.sign || d.treatment.encrypt || d.treatment.sendKeys);
  const refused = plan.deliveries.filter(transforms);
  if (!refused.length) return plan;
  const reason = `the message is BINARYMIME and must be re-encoded to be signed, encrypted or opened, but ${why}`;
  return {
    ...plan,
    deliveries: plan.deliveries.filter((d) => !transforms(d)),
    stopped: [...plan.stopped, { kind: 'reject', reason, outcome: 'bounced_conversion', recipients: refused.flatMap((d) => d.recipients) }],
  };
}
