/**
 * `postern queue …`, like Postfix's postqueue and postsuper: list, show, hold, release, flush,
 * delete. Works while the gateway runs: every change is an atomic rename or unlink in the spool,
 * which the running roles notice by themselves.
 */
import { loadConfig } from '../config/index.js';
import { canonicalDomain } from '../core/index.js';
import { queueEntryViews, queueRows, type QueueRow } from '../relay/index.js';
import { deleteEntries, flushDeferred, holdEntries, releaseEntries, Spool, type AdminResult } from '../spool/index.js';
import { DEFAULT_CONFIG, parse, UsageError, type CliIo } from './args.js';

const SUBCOMMANDS = 'list, show ID, hold ID|ALL, release ID|ALL, flush [ID | --domain D], delete ID|ALL';

export async function queueCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, domain: { type: 'string' } });
  const [sub, selector, ...extra] = positionals;
  if (extra.length) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`);
  const needsSelector = sub === 'show' || sub === 'hold' || sub === 'release' || sub === 'delete';
  if (needsSelector && !selector) throw new UsageError(`queue ${sub} needs a queue id${sub === 'show' ? '' : ' or ALL'}`);
  if (!needsSelector && selector && sub !== 'flush') throw new UsageError(`queue ${sub} takes no argument`);
  if (!['list', 'show', 'hold', 'release', 'flush', 'delete'].includes(sub ?? '')) {
    throw new UsageError(`unknown queue command ${JSON.stringify(sub ?? '')}; expected: ${SUBCOMMANDS}`);
  }
  const domain = values.domain === undefined ? undefined : etrnPattern(sub!, selector, values.domain);
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
      return report(io, 'flushed', await flushDeferred(spool, selector ?? 'ALL', domain), selector ?? 'ALL', true);
    default:
      return report(io, 'deleted', await deleteEntries(spool, selector!), selector!);
  }
}

/**
 * `--domain D` (that domain) or `--domain @D` (it and its subdomains), as ETRN names them
 * (RFC 1985 §5.3), in the A-label form recipients' domains are compared in: a U-label and its
 * A-label flush the same mail, a look-alike spelling does not.
 */
function etrnPattern(sub: string, selector: string | undefined, given: string): string {
  if (sub !== 'flush') throw new UsageError(`--domain is for queue flush, not queue ${sub}`);
  if (selector) throw new UsageError('queue flush takes a queue id or --domain, not both');
  const withSubdomains = given.startsWith('@');
  const domain = canonicalDomain(withSubdomains ? given.slice(1) : given);
  if (!domain) throw new UsageError(`--domain ${JSON.stringify(given)}: not a domain name (use example.com, or @example.com for its subdomains too)`);
  return `${withSubdomains ? '@' : ''}${domain}`;
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
  const { rows } = await queueRows(spool);
  if (json) {
    for (const r of rows) io.out(JSON.stringify(toJson(r)));
    return 0;
  }
  io.out(['ID', 'STATE', 'AGE', 'SIZE', 'SENDER', 'RECIPIENTS'].join('\t'));
  for (const r of rows) {
    const j = toJson(r);
    io.out([j.name, j.state, formatAge(j.age_s), String(j.size), j.sender || '<>', j.recipients.join(',') || (j.error ?? '')].join('\t'));
    // Like mailq: the reason a deferred entry waits, under it.
    if (j.last_error) io.out(`\t(${j.last_error}${j.next_attempt ? `; next attempt ${j.next_attempt}` : ''})`);
  }
  io.out(`-- ${rows.length} entr${rows.length === 1 ? 'y' : 'ies'}`);
  return 0;
}

/** `queue list --json`'s line: the queue as "state", recipients as addresses only. */
function toJson(r: QueueRow) {
  return {
    name: r.name,
    id: r.id,
    state: r.queue,
    age_s: r.age_s,
    size: r.size,
    sender: r.sender,
    recipients: r.recipients.map((x) => x.address),
    ...(r.attempts ? { attempts: r.attempts } : {}),
    ...(r.next_attempt ? { next_attempt: r.next_attempt } : {}),
    ...(r.last_error ? { last_error: r.last_error } : {}),
    ...(r.held_as ? { held_as: r.held_as } : {}),
    ...(r.error ? { error: r.error } : {}),
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
  const views = await queueEntryViews(spool, selector);
  if (!views.length) {
    io.err(`postern: no queue entry matches ${JSON.stringify(selector)}`);
    return 1;
  }
  if (json) {
    io.out(JSON.stringify({ id: selector.split('.')[0], entries: views }, null, 2));
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
      const dsn = [env.ret && `RET=${env.ret}`, env.envid && `ENVID=${env.envid}`, env.body && `BODY=${env.body}`, env.smtputf8 && 'SMTPUTF8', env.requireTls && 'REQUIRETLS'].filter(Boolean);
      io.out(`  sender: <${env.sender}>${dsn.length ? `  ${dsn.join(' ')}` : ''}`);
    }
    if (v.attempts) io.out(`  attempts: ${v.attempts}${v.next_attempt ? `, next ${v.next_attempt}` : ''}`);
    for (const r of v.recipients ?? []) {
      const params = [r.notify && `NOTIFY=${r.notify.join(',')}`, r.orcpt && `ORCPT=${r.orcpt}`].filter(Boolean).join(' ');
      io.out(`  <${r.address}> ${r.state}${r.at ? ` ${r.at}` : ''}${params ? `  ${params}` : ''}${r.written ? `  (written <${r.written}>)` : ''}`);
      if (r.reply) io.out(`      ${r.remote ? `${r.remote} said: ` : ''}${r.reply}${r.expired ? ' (expired)' : ''}`);
      if (r.tls) io.out(`      tls: ${r.tls}`);
      if (r.notices.length) io.out(`      notices sent: ${r.notices.join(', ')}`);
    }
  }
  return 0;
}
