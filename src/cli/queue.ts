/**
 * `postern queue …`, like Postfix's postqueue and postsuper: list, show, hold, release, flush,
 * delete. Works while the gateway runs: every change is an atomic rename or unlink in the spool,
 * which the running roles notice by themselves.
 */
import { loadConfig } from '../config/index.js';
import type { Envelope } from '../core/index.js';
import { entryState, type RecipientState } from '../relay/index.js';
import {
  crashesSinceRelease,
  deleteEntries,
  flushDeferred,
  holdEntries,
  holdRequested,
  releaseEntries,
  Spool,
  type AdminResult,
  type QueueEntryInfo,
} from '../spool/index.js';
import { DEFAULT_CONFIG, parse, UsageError, type CliIo } from './args.js';

const SUBCOMMANDS = 'list, show ID, hold ID|ALL, release ID|ALL, flush, delete ID|ALL';

export async function queueCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  const [sub, selector, ...extra] = positionals;
  if (extra.length) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`);
  const needsSelector = sub === 'show' || sub === 'hold' || sub === 'release' || sub === 'delete';
  if (needsSelector && !selector) throw new UsageError(`queue ${sub} needs a queue id${sub === 'show' ? '' : ' or ALL'}`);
  if (!needsSelector && selector && sub !== 'flush') throw new UsageError(`queue ${sub} takes no argument`);
  if (!['list', 'show', 'hold', 'release', 'flush', 'delete'].includes(sub ?? '')) {
    throw new UsageError(`unknown queue command ${JSON.stringify(sub ?? '')}; expected: ${SUBCOMMANDS}`);
  }
  const config = await loadConfig(values.config ?? DEFAULT_CONFIG);
  const spool = await Spool.open(config.data_dir);
  switch (sub) {
    case 'list':
      return list(spool, io, values.json === true);
    case 'show':
      return show(spool, selector!, io, values.json === true);
    case 'hold':
      return report(io, 'held', await holdEntries(spool, selector!), selector!);
    case 'release':
      return report(io, 'released', await releaseEntries(spool, selector!), selector!);
    case 'flush':
      return report(io, 'flushed', await flushDeferred(spool, selector ?? 'ALL'), selector ?? 'ALL', true);
    default:
      return report(io, 'deleted', await deleteEntries(spool, selector!), selector!);
  }
}

function report(io: CliIo, verb: string, r: AdminResult, selector: string, emptyOk = false): number {
  for (const e of r.done) io.out(`${verb}: ${e}`);
  for (const m of r.marked ?? []) io.out(`${verb}: ${m} (being delivered now; held when this attempt ends, unless it finishes the message)`);
  for (const b of r.busy) {
    io.err(`postern: ${b} is being ${b.startsWith('delivering/') ? 'delivered' : 'processed by a worker'}; try again in a moment`);
  }
  const acted = r.done.length + (r.marked?.length ?? 0);
  if (acted === 0 && r.busy.length === 0) {
    if (emptyOk) {
      io.out(`${verb}: nothing to do`);
      return 0;
    }
    io.err(`postern: no queue entry matches ${JSON.stringify(selector)}`);
    return 1;
  }
  io.out(`-- ${acted} entr${acted === 1 ? 'y' : 'ies'} ${verb}`);
  return r.busy.length ? 1 : 0;
}

// ---- list ------------------------------------------------------------------------------------

async function list(spool: Spool, io: CliIo, json: boolean): Promise<number> {
  const entries = (await spool.inspect(undefined, true)).sort((a, b) => a.mtime.getTime() - b.mtime.getTime());
  if (json) {
    for (const e of entries) io.out(JSON.stringify(toJson(e)));
    return 0;
  }
  io.out(['ID', 'STATE', 'AGE', 'SIZE', 'SENDER', 'RECIPIENTS'].join('\t'));
  for (const e of entries) {
    const j = toJson(e);
    io.out([j.name, j.state, formatAge(j.age_s), String(j.size), j.sender || '<>', j.recipients.join(',') || (j.error ?? '')].join('\t'));
    // Like mailq: the reason a deferred entry waits, under it.
    if (j.last_error) io.out(`\t(${j.last_error}${j.next_attempt ? `; next attempt ${j.next_attempt}` : ''})`);
  }
  io.out(`-- ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`);
  return 0;
}

/**
 * Why an entry is (to be) held: in hold/, the worker's note or the hold record (an admin's, or the
 * crash count's); elsewhere only a hold record counts (asked for during a delivery attempt).
 */
function holdReasonOf(e: QueueEntryInfo): string | undefined {
  const note = e.meta?.notes?.holdReason;
  if (e.queue === 'hold' && typeof note === 'string') return note;
  return holdRequested(e.status ?? [])?.reason;
}

/** The held outcome (core/outcomes.ts) of an entry in hold/, when the gateway recorded it. */
function heldAsOf(e: QueueEntryInfo): string | undefined {
  if (e.queue !== 'hold') return undefined;
  const note = e.meta?.notes?.heldAs;
  if (typeof note === 'string') return note;
  return holdRequested(e.status ?? [])?.heldAs;
}

function toJson(e: QueueEntryInfo) {
  const received = e.meta ? Date.parse(e.meta.envelope.receivedAt) : e.mtime.getTime();
  const state = e.meta && e.status ? entryState(e.meta.envelope, e.status) : undefined;
  const holdReason = holdReasonOf(e);
  const lastError = state?.recipients.find((r) => r.state === 'deferred')?.last?.reply ?? holdReason;
  return {
    name: e.name,
    id: e.id,
    state: e.queue,
    age_s: Math.max(0, Math.round((Date.now() - received) / 1000)),
    size: e.size,
    sender: e.meta?.envelope.sender ?? '',
    recipients: e.meta?.envelope.recipients.map((r) => r.address) ?? [],
    ...(state && state.attempts ? { attempts: state.attempts } : {}),
    ...(state && state.nextAttempt && e.queue === 'deferred' ? { next_attempt: new Date(state.nextAttempt).toISOString() } : {}),
    ...(lastError ? { last_error: lastError } : {}),
    ...(heldAsOf(e) ? { held_as: heldAsOf(e) } : {}),
    ...(e.error ? { error: e.error } : {}),
  };
}

function formatAge(s: number): string {
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

// ---- show ------------------------------------------------------------------------------------

async function show(spool: Spool, selector: string, io: CliIo, json: boolean): Promise<number> {
  const all = await spool.inspect(undefined, true);
  const mine = all.filter((e) => e.id === selector || e.name === selector);
  if (!mine.length) {
    io.err(`postern: no queue entry matches ${JSON.stringify(selector)}`);
    return 1;
  }
  const views = mine.map((e) => {
    const state = e.meta ? entryState(e.meta.envelope, e.status ?? []) : undefined;
    const holdReason = holdReasonOf(e);
    const crashes = crashesSinceRelease(e.status ?? []);
    return {
      name: e.name,
      queue: e.queue,
      size: e.size,
      ...(e.error ? { error: e.error } : {}),
      // A hold record outside hold/: asked for during a delivery attempt, acted on when it ends.
      ...(holdReason && e.queue === 'hold' ? { hold_reason: holdReason } : {}),
      ...(heldAsOf(e) ? { held_as: heldAsOf(e) } : {}),
      ...(holdReason && e.queue !== 'hold' ? { hold_requested: holdReason } : {}),
      ...(crashes.total ? { worker_crashes: crashes.total } : {}),
      ...(e.meta ? { envelope: e.meta.envelope } : {}),
      ...(state
        ? {
            attempts: state.attempts,
            ...(state.nextAttempt && e.queue === 'deferred' ? { next_attempt: new Date(state.nextAttempt).toISOString() } : {}),
            recipients: state.recipients.map((r) => recipientView(r, e.meta!.envelope)),
          }
        : {}),
    };
  });
  if (json) {
    io.out(JSON.stringify({ id: mine[0]!.id, entries: views }, null, 2));
    return 0;
  }
  for (const v of views) {
    io.out(`${v.name} (${v.queue}, ${v.size} bytes)`);
    if (v.error) io.out(`  error: ${v.error}`);
    if (v.hold_reason) io.out(`  held: ${v.hold_reason}${v.held_as ? ` (${v.held_as})` : ''}`);
    if (v.hold_requested) io.out(`  hold requested: ${v.hold_requested}`);
    if (v.worker_crashes) io.out(`  worker crashes while processing it: ${v.worker_crashes}`);
    const env = v.envelope;
    if (env) {
      const c = env.client;
      io.out(`  received: ${env.receivedAt} from ${c.helo || '?'} (${c.hostname} [${c.address}])${c.trusted ? ', trusted' : ''}`);
      const dsn = [env.ret && `RET=${env.ret}`, env.envid && `ENVID=${env.envid}`, env.body && `BODY=${env.body}`, env.smtputf8 && 'SMTPUTF8'].filter(Boolean);
      io.out(`  sender: <${env.sender}>${dsn.length ? `  ${dsn.join(' ')}` : ''}`);
    }
    if (v.attempts) io.out(`  attempts: ${v.attempts}${v.next_attempt ? `, next ${v.next_attempt}` : ''}`);
    for (const r of v.recipients ?? []) {
      const params = [r.notify && `NOTIFY=${r.notify.join(',')}`, r.orcpt && `ORCPT=${r.orcpt}`].filter(Boolean).join(' ');
      io.out(`  <${r.address}> ${r.state}${r.at ? ` ${r.at}` : ''}${params ? `  ${params}` : ''}${r.written ? `  (written <${r.written}>)` : ''}`);
      if (r.reply) io.out(`      ${r.remote ? `${r.remote} said: ` : ''}${r.reply}${r.expired ? ' (expired)' : ''}`);
      if (r.notices.length) io.out(`      notices sent: ${r.notices.join(', ')}`);
    }
  }
  return 0;

  function recipientView(s: RecipientState, env: Envelope) {
    const rcpt = env.recipients.find((r) => r.address === s.address);
    return {
      address: s.address,
      state: s.state,
      ...(rcpt?.notify ? { notify: rcpt.notify } : {}),
      ...(rcpt?.orcpt ? { orcpt: rcpt.orcpt } : {}),
      // The spelling the client used, where it said more than letter case (core/address.ts).
      ...(rcpt?.original ? { written: rcpt.original } : {}),
      ...(s.last ? { at: s.last.at, reply: s.last.reply, ...(s.last.dsn ? { dsn: s.last.dsn } : {}), ...(s.last.remote ? { remote: s.last.remote } : {}), ...(s.last.expired ? { expired: true } : {}) } : {}),
      notices: [...s.notices],
    };
  }
}
