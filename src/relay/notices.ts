/**
 * Which delivery status notifications an attempt calls for, built by dsn/ and queued as new
 * outgoing entries from the null sender. Each notice gets a queue id derived from the entry and
 * the recipients it reports, so a relay that crashes between queueing a notice and recording it
 * replaces that notice on the next run instead of sending a second one.
 */
import type { Config } from '../config/types.js';
import { derivedQueueId, NOTICE_OUTCOME, OUTCOMES, outcomeText, type Envelope, type Recipient } from '../core/index.js';
import { buildDsn, enhancedStatus, keptOriginal, wantsNotice, type DsnKind, type DsnRecipient } from '../dsn/index.js';
import type { DsnRecord, OpenEntry, OutgoingDraft } from '../spool/index.js';
import type { EntryState, RecipientState } from './state.js';

export interface Notice {
  kind: DsnKind;
  id: string;
  rcpts: string[];
  draft: OutgoingDraft;
}

function dsnRecipient(kind: DsnKind, s: RecipientState, rcpt: Recipient | undefined, willRetryUntil: Date): DsnRecipient {
  const last = s.last;
  const reply = last?.reply ?? '';
  // A message that outlived max_queue_lifetime failed with a temporary reply (bounced_expired,
  // 4.4.7). A next hop that took the message over SMTP "relayed" it (it may not give DSNs of its
  // own); a maildir delivery is final. Otherwise the notice kind's usual outcome gives the action,
  // and the status when neither our record nor the reply has one.
  const outcome = OUTCOMES[last?.expired ? 'bounced_expired' : kind === 'success' && last?.remote ? 'relayed' : NOTICE_OUTCOME[kind]];
  const status = last?.expired ? outcome.status : (last?.dsn ?? enhancedStatus(reply, outcome.status));
  return {
    address: s.address,
    ...(rcpt?.orcpt ? { orcpt: rcpt.orcpt } : {}),
    action: outcome.action,
    status,
    ...(reply ? { diagnostic: { type: last?.remote ? ('smtp' as const) : ('x-postern' as const), text: last?.expired ? outcomeText('bounced_expired', { reply }) : reply } } : {}),
    ...(last?.remote ? { remoteMta: last.remote } : {}),
    ...(last ? { lastAttempt: new Date(last.at) } : {}),
    ...(kind === 'delay' ? { willRetryUntil } : {}),
  };
}

/** The notices due after an attempt, given the entry's state with this attempt's records. */
export function noticesFor(entry: OpenEntry, state: EntryState, config: Config, now = Date.now()): Notice[] {
  const env = entry.meta.envelope;
  if (env.sender === '') return doubleBounce(entry, state, config, now);
  const received = Date.parse(env.receivedAt) || now;
  const willRetryUntil = new Date(received + config.relay.max_queue_lifetime);
  const byAddress = new Map(env.recipients.map((r) => [r.address, r]));
  const wanted: Record<DsnKind, RecipientState[]> = { failure: [], delay: [], success: [] };
  for (const s of state.recipients) {
    const rcpt = byAddress.get(s.address);
    const kind: DsnKind | null =
      s.state === 'failed' ? 'failure' : s.state === 'delivered' ? 'success' : s.state === 'deferred' && now - received >= config.relay.delay_warning ? 'delay' : null;
    if (!kind || s.notices.has(kind) || !rcpt || !wantsNotice(env, rcpt, kind)) continue;
    // The next hop got NOTIFY=SUCCESS with the message: its notice is the one (RFC 3461 §6.2.1).
    if (kind === 'success' && s.last?.dsnPassed) continue;
    wanted[kind].push(s);
  }
  const kinds = ['failure', 'delay', 'success'] as const;
  return kinds.filter((kind) => wanted[kind].length > 0).map((kind) => notice(entry, config, kind, wanted[kind], willRetryUntil, now));
}

/**
 * Postfix's double bounce (notify_classes 2bounce): mail from the null sender, a notice of ours
 * above all, that fails for good has no sender to tell; the postmaster of our first internal
 * domain (as for RCPT TO:<postmaster>, RFC 5321 4.5.1) is told instead of nobody. Our own
 * notices carry NOTIFY=NEVER for the next hop's sake, so that is not read for them; other
 * null-sender mail keeps what its client asked. A double bounce that fails is dropped (the relay
 * logs it): never a triple bounce.
 */
function doubleBounce(entry: OpenEntry, state: EntryState, config: Config, now: number): Notice[] {
  const notes = entry.meta.notes;
  if (notes?.doubleBounce) return [];
  const byAddress = new Map(entry.meta.envelope.recipients.map((r) => [r.address, r]));
  const ours = notes?.dsn !== undefined;
  const failed = state.recipients.filter((s) => {
    const rcpt = byAddress.get(s.address);
    return s.state === 'failed' && !s.notices.has('failure') && rcpt !== undefined && (ours || !rcpt.notify?.includes('NEVER'));
  });
  if (!failed.length) return [];
  const postmaster = `postmaster@${config.internal_domains[0] ?? config.hostname.toLowerCase()}`;
  return [notice(entry, config, 'failure', failed, new Date(now), now, postmaster)];
}

/** One notice about these recipients' states, to the sender (or, for a double bounce, the postmaster). */
function notice(entry: OpenEntry, config: Config, kind: DsnKind, list: RecipientState[], willRetryUntil: Date, now: number, postmaster?: string): Notice {
  const env = entry.meta.envelope;
  const byAddress = new Map(env.recipients.map((r) => [r.address, r]));
  // The message as its sender wrote it, when the worker kept it: not the copy made for the recipient.
  const original = keptOriginal(entry.meta.notes);
  const rcpts = list.map((s) => s.address);
  const dsn = buildDsn({
    kind,
    reportingMta: config.hostname,
    queueId: entry.meta.id,
    envelope: env,
    ...(postmaster !== undefined ? { postmaster } : {}),
    recipients: list.map((s) => dsnRecipient(kind, s, byAddress.get(s.address), willRetryUntil)),
    message: original?.message ?? entry.body,
    ...(original?.headersOnly ? { headersOnly: true } : {}),
    now: new Date(now),
    // A message Postern decrypted must not go back in clear to a sender outside: headers only.
    returnLimit: entry.meta.notes?.decrypted ? 0 : config.relay.bounce_size_limit,
  });
  const id = derivedQueueId(entry.meta.id, `${entry.name}\0${kind}\0${[...rcpts].sort().join('\0')}`);
  const notes = { dsn: kind, about: entry.meta.id, ...(postmaster !== undefined ? { doubleBounce: true } : {}) };
  return { kind, id, rcpts, draft: { envelope: noticeEnvelope(config, dsn.recipient, dsn.eightBit, dsn.smtputf8, now), body: dsn.body, notes } };
}

/** The envelope of a notice: from <>, to the original sender, accepted locally. */
function noticeEnvelope(config: Config, to: string, eightBit: boolean, smtputf8: boolean, now: number): Envelope {
  return {
    sender: '',
    // NOTIFY=NEVER: a next hop must not bounce a notice (there is no sender to bounce to); one we
    // cannot deliver ourselves goes to the postmaster once (doubleBounce), never further.
    recipients: [{ address: to, notify: ['NEVER'] }],
    body: eightBit ? '8BITMIME' : '7BIT',
    ...(smtputf8 ? { smtputf8: true } : {}),
    client: { address: '127.0.0.1', port: 0, helo: config.hostname, hostname: 'localhost', protocol: 'local', trusted: true },
    receivedAt: new Date(now).toISOString(),
  };
}

export function noticeRecord(n: Notice, at: string): DsnRecord {
  return { t: 'dsn', at, kind: n.kind, rcpts: n.rcpts, id: n.id };
}
