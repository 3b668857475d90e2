/**
 * spool: the queue directories (tmp, incoming, active, outgoing, delivering, deferred, hold, corrupt) and
 * their crash-safe commit protocol. Untrusted input: message bytes and envelopes are stored
 * verbatim, never interpreted here; damaged entries are detected by checksum and kept in corrupt/.
 * Secrets: none (entries may hold plaintext mail: files are 0600 in 0700 directories).
 */
export { Spool, QUEUES, outputNames } from './spool.js';
export { IncomingWriter } from './incoming.js';
export { writeAll, isNoSpace, storageError, type WriteTarget } from './write.js';
export type { ClaimedEntry, HeldDraft, OpenEntry, OutgoingDraft, StreamedDraft, QueueEntryInfo, QueueName } from './spool.js';
export { streamRange, rangeSource, rangeChunksSync, loadRange, readRanged, STREAM_THRESHOLD, type BodyRange } from './stream.js';
export type { EntryMeta, DecodedEntry, StatusRecord, RecipientRecord, AttemptRecord, DsnRecord, HoldRecord, ReleaseRecord, CrashRecord } from './record.js';
export { holdRequested, crashesSinceRelease } from './record.js';
export { claimForDelivery, type DeliveryClaim } from './delivering.js';
export { holdClaimed } from './marks.js';
export { watchQueue } from './watch.js';
export { throttle, type Throttled } from './throttle.js';
export { holdEntries, releaseEntries, flushDeferred, domainMatcher, deleteEntries, type AdminResult } from './admin.js';
export { PartialWriter } from './partial-writer.js';
export { PartialStore, partialKey, PARTIAL_LIFETIME_MS, MAX_PER_CLIENT, MAX_PARTIALS, type PartialOwner, type CheckpointRecord, type ResumeResult } from './partial.js';
