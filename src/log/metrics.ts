/**
 * The Prometheus metrics of this process: one prom-client Registry per process (never the
 * library's global one, which other code could fill), with the series Postern counts declared
 * here once and typed helpers so that a call site stays one line. Counting is a synchronous add
 * to a number in memory: nothing is awaited and nothing leaves the process on the mail's path;
 * the admin role gathers every role's registry at scrape time through the supervisor
 * (gatherMetrics in admin/metrics.ts) and sums the series of processes of the same role.
 *
 * The outcome series (postern_messages_{delivered,deferred,held,bounced,dropped}_total) come from
 * the `metric` column of core/outcomes.ts: countOutcome(kind) is the one place an outcome becomes
 * a series, so the catalogue and the metrics cannot drift apart.
 */
import { AggregatorRegistry, collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { OUTCOMES, parseMetric, type OutcomeClass, type OutcomeKind } from '../core/outcomes.js';

/** One process's registry as getMetricsAsJSON gives it: plain data, sent over the IPC channel. */
export type MetricsSnapshot = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** The registry of this process. */
export const registry = new Registry();

let labelled = false;

/**
 * Name the process in every series (`role="worker"`) and add Node's process metrics (CPU, memory,
 * event loop, GC): called once by each role's entry point and by the supervisor. Processes of one
 * role (the workers) are summed when gathered.
 */
export function initMetrics(role: string): void {
  if (labelled) return;
  labelled = true;
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry });
}

// ---- outcomes (core/outcomes.ts) --------------------------------------------------------------

const OUTCOME_HELP: Readonly<Record<OutcomeClass, string>> = {
  delivered: 'Recipients whose mail the next hop or the mailbox took, by how (core/outcomes.ts)',
  deferred: 'Temporary failures of a recipient\'s mail, by reason; tried again (core/outcomes.ts)',
  held: 'Recipients\' mail put in hold/ for an admin, by reason (core/outcomes.ts)',
  bounced: 'Recipients whose mail failed for good (a bounce goes to the sender), by reason (core/outcomes.ts)',
  dropped: 'Recipients whose mail was discarded by policy, by reason (core/outcomes.ts)',
};

interface OutcomeSeries {
  inc(n: number): void;
}

/** Each outcome's series, bound once at load: counting is one property look-up and an add. */
const OUTCOME_SERIES: Readonly<Record<OutcomeKind, OutcomeSeries>> = outcomeSeries();

function outcomeSeries(): Record<OutcomeKind, OutcomeSeries> {
  const parsed = Object.entries(OUTCOMES).map(([kind, spec]) => ({ kind: kind as OutcomeKind, spec, ...parseMetric(spec.metric) }));
  const counters = new Map<string, Counter<string>>();
  for (const p of parsed) {
    if (counters.has(p.name)) continue;
    const labelNames = [...new Set(parsed.filter((q) => q.name === p.name).flatMap((q) => Object.keys(q.labels)))];
    counters.set(p.name, new Counter({ name: p.name, help: OUTCOME_HELP[p.spec.class], labelNames, registers: [registry] }));
  }
  const out = {} as Record<OutcomeKind, OutcomeSeries>;
  for (const p of parsed) {
    const child = counters.get(p.name)!.labels(p.labels);
    // Every series is there from the start at 0: rate() and alerts see the first event.
    child.inc(0);
    out[p.kind] = child;
  }
  return out;
}

/** An outcome for `recipients` recipients, counted in the series the catalogue names. */
export function countOutcome(kind: OutcomeKind, recipients = 1): void {
  // `?.`: a kind outside the catalogue (an old spool record's) loses a count, never a message.
  if (recipients > 0) OUTCOME_SERIES[kind]?.inc(recipients);
}

// ---- smtpd ------------------------------------------------------------------------------------

const smtpConnections = new Counter({ name: 'postern_smtpd_connections_total', help: 'SMTP connections opened to smtpd', registers: [registry] });
const smtpAccepted = new Counter({ name: 'postern_smtpd_messages_accepted_total', help: 'Messages smtpd made durable in the spool and answered 250', registers: [registry] });
const smtpRefused = new Counter({
  name: 'postern_smtpd_refused_total',
  help: 'Commands and messages smtpd refused, by reason (as the smtpd.reject log line) and class (temporary 4xx, permanent 5xx)',
  labelNames: ['reason', 'class'],
  registers: [registry],
});

export const countConnection = (): void => smtpConnections.inc();
export const countAccepted = (): void => smtpAccepted.inc();

/** A refusal's reason is a word of our own code ("relay", "size", "bare LF"): kept bounded and label-safe all the same. */
export function countRefused(reason: string, code: number): void {
  smtpRefused.inc({ reason: labelWord(reason), class: code >= 500 ? 'permanent' : 'temporary' });
}

// ---- worker -----------------------------------------------------------------------------------

/** What protected (or was taken off) a recipient's copy; 'clear' when nothing did. */
export type ProcessedMethod = 'smime' | 'pgp' | 'pdf' | 'webmail' | 'clear';
/** As the policy names it (policy/evaluate.ts directionOf). */
export type ProcessedDirection = 'inbound' | 'outbound' | 'internal' | 'external';
export type CryptoOperation = 'decrypt' | 'verify' | 'encrypt' | 'sign';

const workerProcessed = new Counter({
  name: 'postern_worker_processed_total',
  help: 'Recipients\' copies the worker wrote to outgoing/, by method (encryption made, else signature made, else encryption removed, else clear) and direction',
  labelNames: ['method', 'direction'],
  registers: [registry],
});
const cryptoFailures = new Counter({
  name: 'postern_worker_crypto_failures_total',
  help: 'Decryptions, signature checks, encryptions and signatures that did not succeed, by method and reason (the status token of X-Postern-*: failed, invalid, untrusted …)',
  labelNames: ['operation', 'method', 'reason'],
  registers: [registry],
});

export function countProcessed(method: ProcessedMethod, direction: ProcessedDirection, recipients: number): void {
  if (recipients > 0) workerProcessed.inc({ method, direction }, recipients);
}

export function countCryptoFailure(operation: CryptoOperation, method: string, reason: string): void {
  cryptoFailures.inc({ operation, method: labelWord(method), reason: labelWord(reason) });
}

// ---- relay ------------------------------------------------------------------------------------

const deliveryLatency = new Histogram({
  name: 'postern_relay_delivery_seconds',
  help: 'Time from arrival (smtpd\'s 250) to delivery, per recipient delivered',
  // Seconds: the fast path is well under a second; retries take minutes to days (relay.retry).
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 5 * 24 * 3600],
  registers: [registry],
});

/** Recipients delivered `seconds` after their message arrived. */
export function observeDelivery(seconds: number, recipients = 1): void {
  const s = Math.max(0, seconds);
  for (let i = 0; i < recipients; i++) deliveryLatency.observe(s);
}

// ---- supervisor -------------------------------------------------------------------------------

const roleRestarts = new Counter({
  name: 'postern_role_restarts_total',
  help: 'Role processes the supervisor started again after they died, by role',
  labelNames: ['role'],
  registers: [registry],
});

export const countRoleRestart = (role: string): void => roleRestarts.inc({ role });

// ---- gathering --------------------------------------------------------------------------------

/**
 * This process's series, for the supervisor's 'collect'. prom-client's nodejs_active_*_total are
 * gauges with a counter's suffix, which `promtool check metrics` rejects; they are the sums of
 * nodejs_active_* (by type), which stay.
 */
export async function metricsSnapshot(): Promise<MetricsSnapshot> {
  return (await registry.getMetricsAsJSON()).filter((m) => String(m.type) === 'counter' || !m.name.endsWith('_total'));
}

/**
 * Prometheus text of several processes' snapshots: series with the same name and labels are
 * combined by their aggregator (counters and histograms summed across a role's processes).
 */
export function renderMetrics(snapshots: readonly MetricsSnapshot[]): Promise<string> {
  return AggregatorRegistry.aggregate(snapshots as MetricsSnapshot[]).metrics();
}

/** A label value made of our own words, kept short and plain: lower case, [a-z0-9_], at most 40. */
function labelWord(s: string): string {
  const w = s.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 40);
  return w || 'other';
}
