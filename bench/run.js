#!/usr/bin/env node
/**
 * `npm run bench` (issue 9): throughput, latency, CPU and memory of the real gateway — its processes,
 * its spool on disk with fsync — each figure beside baselines measured in the same run, because the
 * machine is shared and noisy:
 *   (a) load generator → sink directly (the SMTP ceiling of this machine, per message size)
 *   (b) `openssl cms -sign | openssl cms -encrypt` per message, one per core (a shell content filter)
 *   (c) Node's raw RSA-2048 / ECDSA P-256 signatures per second on all cores (the crypto ceiling)
 *   (d) a private Postfix instance relaying the same load with no crypto
 * Load: bench/load.js (connection reuse, PIPELINING, per-message timestamps); next hop: bench/sink.js
 * (counts, arrival times, body hashes, a sample kept and verified with openssl cms / gpg).
 *
 * Options: --quick (about a minute), --only NAME[,NAME] (scenario names, see bench/scenarios.js;
 * 'micro' for the micro figures of bench/micro.js, in-process crypto per message beside Node's raw
 * operation, which every run without --only also measures; `--only micro` runs nothing else),
 * --sessions N (SMTP connections of the load generator, default 20), --profile DIR (V8 CPU profiles
 * of every role for the S/MIME RSA scenario, unless --only says otherwise, summarised per role,
 * stage, module and function by bench/profile.js), --keep (keep the temp dir).
 * Writes bench/results/<date>.json and bench/results/latest.json. Exit code 1 only if the gateway
 * lost or corrupted a message.
 */
import { execFileSync, fork, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decryptVerifyCmd, rawSign, shellFilter, signEncryptCmd } from './baselines.js';
import { MAIN, ROOT, cli, memory, resetPeak, round, snapshot, startGateway, usage, writeConfig } from './gateway.js';
import { filler } from './load.js';
import { formatMicro, microFigures } from './micro.js';
import { ADDR, inboundEntity, setupKeys } from './pki.js';
import { postfixCpu, postfixVersion, startPostfix } from './postfix.js';
import { printSummary, summarise } from './profile.js';
import { benchPostgres } from './postgres.js';
import { FILTERS, SCENARIOS } from './scenarios.js';
import { verifySample } from './verify.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    sessions: { type: 'string', default: '20' },
    profile: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const QUICK = values.quick;
const SESSIONS = Number(values.sessions);
const PROFILE = values.profile ? resolve(values.profile) : null;
const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean) ?? (PROFILE ? ['smime-rsa'] : null);
if (only) for (const n of only) if (n !== 'micro' && !SCENARIOS.some((s) => s.name === n)) {
  console.error(`bench: unknown scenario ${n}; one of micro, ${SCENARIOS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const selected = SCENARIOS.filter((s) => !only || only.includes(s.name));
const MICRO = !PROFILE && (!only || only.includes('micro'));
const count = (x) => (QUICK ? x.quick : x.count);
const log = (...a) => console.error('bench:', ...a);
const hrUs = () => Number(process.hrtime.bigint() / 1000n);

if (!existsSync(MAIN)) {
  console.error(`bench: ${MAIN} missing — run npm run build`);
  process.exit(2);
}
if (spawnSync('openssl', ['version']).error) {
  console.error('bench: openssl not found (the shell-filter baseline and the sample verification need it)');
  process.exit(2);
}

// `--only micro`: the micro figures alone — no keys on disk, no gateway, no load generator.
if (only && !selected.length) {
  const t0 = Date.now();
  const { loadavg } = await import('node:os');
  const micro = await microFigures({ root: ROOT, quick: QUICK, log });
  const result = {
    date: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`,
    machine: { cores: availableParallelism(), cpu: cpus()[0]?.model, loadavg: loadavg().map((x) => round(x, 2)) },
    versions: { node: process.version, openssl: execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim(), commit: spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout?.trim() || null },
    micro,
    seconds: round((Date.now() - t0) / 1000, 1),
  };
  const dir = join(ROOT, 'bench/results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${result.date.replace(/[:.]/g, '-')}-micro${QUICK ? '-quick' : ''}.json`);
  await writeFile(file, JSON.stringify(result, null, 2) + '\n');
  console.log([`Postern bench — ${result.machine.cores} cores (${result.machine.cpu}), load ${result.machine.loadavg.join(' ')}; node ${result.versions.node}, ${result.versions.openssl}, commit ${result.versions.commit}`, `${result.command}: ${result.seconds} s`, '', ...formatMicro(micro), `result: ${file}`].join('\n'));
  process.exit(0);
}

// ---- helpers: the sink and load generator children ----
function child(script) {
  const p = fork(join(import.meta.dirname, script), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = [];
  p.on('message', (m) => {
    const i = waiting.findIndex((w) => w.type === m.type);
    if (i >= 0) waiting.splice(i, 1)[0].resolve(m);
  });
  const next = (type) => new Promise((resolve) => waiting.push({ type, resolve }));
  return { p, next, ask: (msg, type) => (p.send(msg), next(type)) };
}

const sink = child('sink.js');
const { port: SINK_PORT } = await sink.next('listening');
const load = child('load.js');

async function waitSink(recipients, stallMs) {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const c = await sink.ask({ type: 'count' }, 'count');
    if (c.recipients >= recipients) return true;
    if (c.recipients !== last) (last = c.recipients), (lastChange = Date.now());
    if (Date.now() - lastChange > stallMs) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const pct = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);

/**
 * Send `n` messages to `port` and wait for them at the sink. Returns throughput (accepted messages
 * over first send → last arrival), latency from SMTP accept to arrival, and the correctness check.
 */
async function drive({ port, scenario, from, rcpts, template, n, firstId, concurrency = SESSIONS, rate, sinkOpts = {}, stallMs = 60_000 }) {
  await sink.ask({ type: 'reset', scenario, ...sinkOpts }, 'ok');
  const r = await load.ask({ type: 'run', port, scenario, from, rcpts, template, count: n, firstId, concurrency, rate }, 'done');
  if (r.fatal) throw new Error(`load generator: ${r.fatal}`);
  const acceptedIds = new Map();
  r.accepted.forEach((t, i) => t && acceptedIds.set(firstId + i, t));
  const complete = await waitSink(acceptedIds.size * rcpts.length, stallMs);
  const d = await sink.ask({ type: 'dump' }, 'dump');
  const got = new Map();
  const lat = [];
  let lastArrival = r.t0;
  for (let k = 0; k < d.ids.length; k++) {
    const id = d.ids[k];
    got.set(id, (got.get(id) ?? 0) + d.rcpts[k]);
    const acc = acceptedIds.get(id);
    if (acc) lat.push(d.arrivals[k] - acc);
    lastArrival = Math.max(lastArrival, d.arrivals[k]);
  }
  let lost = 0;
  let duplicated = 0;
  for (const id of acceptedIds.keys()) {
    const g = got.get(id) ?? 0;
    if (g < rcpts.length) lost++;
    else if (g > rcpts.length) duplicated++;
  }
  const unexpected = [...got.keys()].filter((id) => !acceptedIds.has(id)).length;
  lat.sort((a, b) => a - b);
  const seconds = (lastArrival - r.t0) / 1000;
  return {
    sent: n,
    accepted: acceptedIds.size,
    refused: r.failures.length,
    refusals: r.failures.slice(0, 3).map((f) => f.reply),
    connectionErrors: r.errors.slice(0, 3),
    delivered: d.recipients,
    complete,
    lost,
    duplicated,
    unexpected,
    corrupted: d.bad.length,
    corruption: d.bad.slice(0, 5),
    seconds: round(seconds, 3),
    acceptSeconds: round((r.t1 - r.t0) / 1000, 3),
    perSecond: round(acceptedIds.size / seconds, 1),
    latencyMs: lat.length ? { p50: round(pct(lat, 0.5), 1), p95: round(pct(lat, 0.95), 1), p99: round(pct(lat, 0.99), 1), max: round(lat[lat.length - 1], 1) } : null,
    samples: d.samples,
  };
}

// ---- setup ----
const started = Date.now();
const work = await mkdtemp(join(tmpdir(), 'postern-bench-'));
await chmod(work, 0o711); // Postfix's daemons (user postfix) must reach their queue below it
const versions = {
  node: process.version,
  openssl: execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim(),
  postfix: postfixVersion(),
  gpg: spawnSync('gpg', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? null,
  postern: JSON.parse(execFileSync('cat', [join(ROOT, 'package.json')], { encoding: 'utf8' })).version,
  commit: spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout?.trim() || null,
};
const freePort = async () => {
  const { createServer } = await import('node:net');
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
};
const GW_PORT = await freePort();
const gwDir = join(work, 'gateway');
await mkdir(gwDir, { recursive: true });
// The default policy (sign, encrypt where possible; decrypt and verify inbound), and PDF mail for pdf.example.
await writeFile(join(gwDir, 'policy.yaml'), 'rules:\n  - name: pdf partners\n    when: { recipient: { domain: pdf.example } }\n    do: [{ encrypt: { methods: [pdf], require: true } }]\n');
const config = await writeConfig(gwDir, { port: GW_PORT, sinkPort: SINK_PORT });
const tKeys = Date.now();
log(`keys: openssl CAs and mailboxes, gpg, postern cert/pgp import (${work})`);
const keys = await setupKeys(work, config);
log(`keys ready in ${((Date.now() - tKeys) / 1000).toFixed(1)} s`);
// The keystore in PostgreSQL (issue 19): a second gateway, the same keys imported into it.
let pgGateway = null;
if (selected.some((s) => s.backend === 'postgres')) {
  const t = Date.now();
  log('PostgreSQL keystore: a durable server, the same certificates and keys imported');
  const db = await benchPostgres(work);
  const dir = join(work, 'gateway-pg');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'policy.yaml'), await readFile(join(gwDir, 'policy.yaml')));
  const port = await freePort();
  const pgConfig = await writeConfig(dir, { port, sinkPort: SINK_PORT, extra: db.yaml });
  await cli(pgConfig, keys.certImport);
  pgGateway = { ...db, port, config: pgConfig };
  log(`PostgreSQL keystore ready in ${((Date.now() - t) / 1000).toFixed(1)} s`);
}
const plainTemplate = (size) => ({ kind: 'plain', size });
const inbound = {};
const inboundTemplate = async (size) => (inbound[size] ??= { kind: 'file', ...(await inboundEntity(work, keys, size, { filler })) });

const result = {
  date: new Date().toISOString(),
  command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
  machine: { cores: availableParallelism(), cpu: cpus()[0]?.model, memoryGB: round(Number(execFileSync('awk', ['/MemTotal/ {print $2}', '/proc/meminfo'], { encoding: 'utf8' })) / 2 ** 20, 1), loadavg: null },
  versions,
  load: { sessions: SESSIONS, quick: QUICK },
  baselines: {},
  scenarios: {},
  goals: {},
  problems: [],
};
result.machine.loadavg = (await import('node:os')).loadavg().map((x) => round(x, 2));

// ---- micro figures (bench/micro.js): in-process, one core, first while nothing else of ours works ----
if (MICRO) {
  try {
    result.micro = await microFigures({ root: ROOT, quick: QUICK, log });
  } catch (err) {
    result.micro = { error: String(err.stack ?? err) };
    result.problems.push(`micro figures: ${err.message}`);
    log(`micro figures failed: ${err.message}`);
  }
}

// ---- baselines ----
// (c) first, while nothing else of ours runs.
const ceilingMs = QUICK ? 1000 : 2000;
const needC = new Set(selected.map((s) => s.ceiling).filter(Boolean));
if (needC.size || selected.some((s) => s.name === 'passthrough')) needC.add('rsa-2048');
for (const kind of needC) {
  log(`baseline (c): raw ${kind} signatures on ${availableParallelism()} threads`);
  result.baselines[`raw-${kind}`] = await rawSign(kind, ceilingMs);
}

// (a) the sink fed directly, per message size in use.
for (const size of [...new Set(selected.filter((s) => !s.memory).map((s) => s.size))]) {
  const sc = selected.find((s) => s.size === size && !s.memory);
  const n = Math.max(sc.concurrency ?? SESSIONS, Math.min(QUICK ? 1000 : 3000, count(sc) * 2));
  log(`baseline (a): load → sink, ${n} × ${size} B`);
  await drive({ port: SINK_PORT, scenario: 'sink', from: ADDR.plainFrom, rcpts: [ADDR.plainTo], template: plainTemplate(size), n: Math.min(n, 20), firstId: 1, concurrency: sc.concurrency ?? SESSIONS });
  result.baselines[`sink-${size}`] = strip(await drive({ port: SINK_PORT, scenario: 'sink', from: ADDR.plainFrom, rcpts: [ADDR.plainTo], template: plainTemplate(size), n, firstId: 1, concurrency: sc.concurrency ?? SESSIONS, sinkOpts: { verify: 'sum' } }));
}

// (d) Postfix relaying the 4 KB load, no crypto.
if (!PROFILE) {
  const pass = SCENARIOS[0];
  const n = count(pass);
  const pfDir = join(work, 'postfix');
  let pf;
  try {
    log(`baseline (d): Postfix ${versions.postfix ?? '?'} relaying ${n} × ${pass.size} B`);
    pf = await startPostfix(pfDir, { port: await freePort(), sinkPort: SINK_PORT });
    await drive({ port: pf.port, scenario: 'postfix', from: ADDR.plainFrom, rcpts: [ADDR.plainTo], template: plainTemplate(pass.size), n: 100, firstId: 1 });
    const master = await pf.masterPid();
    const cpu0 = await postfixCpu(master);
    const r = await drive({ port: pf.port, scenario: 'postfix', from: ADDR.plainFrom, rcpts: [ADDR.plainTo], template: plainTemplate(pass.size), n, firstId: 1, sinkOpts: { verify: 'sum' } });
    const cpu1 = await postfixCpu(master);
    result.baselines['postfix-4096'] = { ...strip(r), cpuMsPerMessage: cpu0 !== null ? round(((cpu1 - cpu0) * 1000) / r.accepted, 3) : null };
    if (r.lost) result.problems.push(`postfix baseline: ${r.lost} of ${r.accepted} messages did not reach the sink`);
  } catch (err) {
    result.baselines['postfix-4096'] = { unavailable: String(err.message ?? err) };
    log(`baseline (d) unavailable: ${err.message}`);
  } finally {
    await pf?.stop();
  }
}

// (b) the shell filter, per kind the selected scenarios use.
for (const kind of [...new Set(selected.map((s) => s.filter).filter(Boolean))]) {
  const f = FILTERS[kind];
  const n = count(f);
  let cmd;
  if (f.inbound) {
    const t = await inboundTemplate(f.size);
    cmd = decryptVerifyCmd(t.path, keys.boxes[ADDR.inTo], keys.partnerCa.cert);
  } else {
    const input = join(work, `filter-${f.size}.eml`);
    if (!existsSync(input)) await writeFile(input, Buffer.concat([Buffer.from('Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'), filler(f.size)]));
    cmd = signEncryptCmd(input, keys.boxes[f.from], f.rcpts.map((r) => keys.boxes[r].cert));
  }
  log(`baseline (b): openssl cms shell filter "${kind}", ${n} messages, ${availableParallelism()} at once`);
  try {
    result.baselines[`filter-${kind}`] = await shellFilter(n, cmd);
  } catch (err) {
    result.baselines[`filter-${kind}`] = { unavailable: String(err.message) };
  }
}

function strip(r) {
  const { samples: _s, ...rest } = r;
  return rest;
}

// ---- the gateway ----
let lostOrCorrupted = 0;
for (const sc of selected) {
  if (sc.pgp && !keys.pgp.ok) {
    result.scenarios[sc.name] = { title: sc.title, available: false, reason: `OpenPGP keys could not be set up: ${keys.pgp.reason}` };
    continue;
  }
  log(`scenario ${sc.name}: ${sc.title}, ${count(sc)} messages`);
  try {
    result.scenarios[sc.name] = await scenario(sc);
  } catch (err) {
    result.scenarios[sc.name] = { title: sc.title, error: String(err.stack ?? err) };
    log(`scenario ${sc.name} failed: ${err.message}`);
  }
  const s = result.scenarios[sc.name];
  if (s.lost || s.corrupted || s.samplesFailed) lostOrCorrupted++;
}

async function scenario(sc) {
  const n = count(sc);
  const template = sc.inbound ? await inboundTemplate(sc.size) : sc.mixed ? { kind: 'mixed', size: sc.size } : plainTemplate(sc.size);
  const concurrency = sc.concurrency ?? SESSIONS;
  const pgSide = sc.backend === 'postgres' ? pgGateway : null;
  const base = { port: pgSide ? pgSide.port : GW_PORT, scenario: sc.name, from: sc.from, rcpts: sc.rcpts, template, concurrency, stallMs: sc.size > 1 << 20 ? 120_000 : 60_000 };
  const sinkOpts = { verify: sc.verify, expect: sc.expect };
  if (PROFILE) {
    await mkdir(PROFILE, { recursive: true });
    // smtpd drops to the unprivileged user when the bench runs as root: let it write its profile too.
    await chmod(PROFILE, 0o1777);
  }
  const gw = await startGateway(pgSide ? pgSide.config : config, { profileDir: PROFILE });
  const out = { title: sc.title, messages: n, size: sc.size, recipients: sc.rcpts.length, concurrency, ...(pgSide ? { backend: 'postgres' } : {}) };
  let window;
  try {
    // PostgreSQL: statements of one message with every cache cold (what each message would cost
    // without them), then per message of the measured stream.
    if (pgSide) {
      const s0 = await pgSide.statements();
      await drive({ ...base, n: 1, firstId: 3_000_000, concurrency: 1, sinkOpts });
      out.statements = { firstMessage: (await pgSide.statements()) - s0 - 1 };
    }
    // Warm-up: JIT, prepared keys, pools (not measured). For OpenPGP it also says whether the
    // gateway does it yet: a message to a recipient with only an OpenPGP key must come out
    // multipart/encrypted.
    const warm = sc.warm ?? Math.min(n, QUICK ? 20 : 100);
    if (warm) {
      const w = await drive({ ...base, n: warm, firstId: 1_000_000, sinkOpts });
      if (sc.pgp && (w.corrupted || !w.accepted)) return { title: sc.title, available: false, reason: `not available yet: ${w.corruption[0]?.reason ?? w.refusals[0] ?? 'nothing delivered'}` };
      if (w.lost) throw new Error(`warm-up: ${w.lost} of ${w.accepted} messages did not arrive; gateway log:\n${gw.tail()}`);
    }
    const before = snapshot(gw);
    for (const pid of gw.processes().values()) resetPeak(pid);
    const idle = Object.fromEntries([...gw.processes()].map(([k, pid]) => [k, memory(pid)?.rss ?? null]));
    window = { from: hrUs() };
    const s0 = pgSide ? await pgSide.statements() : 0;
    const m = await drive({ ...base, n, firstId: 1, sinkOpts: { ...sinkOpts, sampleDir: join(work, 'samples', sc.name), sampleEvery: Math.max(1, Math.floor(n / 10)), sampleMax: Math.max(1, Math.ceil(10 / sc.rcpts.length)) } });
    window.to = hrUs();
    // All clients' statements (LISTEN, the heartbeat's checks, the audit of a first unseal …) over the stream.
    if (pgSide) out.statements.perMessage = round(((await pgSide.statements()) - s0 - 1) / Math.max(1, m.accepted), 3);
    const roles = usage(gw, before);
    const cpu = Object.values(roles).reduce((a, r) => a + (r.cpuSeconds ?? 0), 0);
    out._samples = m.samples;
    Object.assign(out, strip(m), { cpuMsPerMessage: round((cpu * 1000) / Math.max(1, m.accepted), 3), roles, restarts: gw.restarts() });
    for (const [k, r] of Object.entries(roles)) r.growthMB = idle[k] !== null && r.peakRssMB !== null ? round(r.peakRssMB - idle[k] / 2 ** 20, 1) : null;
    if (sc.memory) {
      out.peakRssOverMessageSize = Object.fromEntries(Object.entries(roles).map(([k, r]) => [k, round((r.peakRssMB * 2 ** 20) / sc.size, 2)]));
      out.growthOverMessageSize = Object.fromEntries(Object.entries(roles).map(([k, r]) => [k, round((r.growthMB * 2 ** 20) / sc.size, 2)]));
    }
    // Latency at half the maximum load (open loop): the issue's p99 goal.
    if (sc.latency && !PROFILE && m.perSecond) {
      const rate = m.perSecond / 2;
      const hn = Math.max(50, Math.min(n, Math.round(rate * (QUICK ? 4 : 8))));
      const h = await drive({ ...base, n: hn, firstId: 2_000_000, rate, sinkOpts });
      out.halfLoad = { rate: round(rate, 1), messages: hn, perSecond: h.perSecond, latencyMs: h.latencyMs, lost: h.lost, corrupted: h.corrupted };
      out.lost += h.lost;
      out.corrupted += h.corrupted;
    }
  } finally {
    const e = await gw.stop();
    out.gatewayExit = e;
  }
  // The sample, decrypted and verified by openssl / gpg.
  const checks = [];
  for (const s of m_samples(out)) checks.push(await verifySample(s, sc.check, { ...keys, config, from: sc.from }));
  out.samplesVerified = checks.filter((c) => c.ok).length;
  out.samplesFailed = checks.filter((c) => !c.ok).length;
  if (out.samplesFailed) out.sampleFailures = checks.filter((c) => !c.ok).slice(0, 5);
  delete out._samples;
  if (PROFILE) {
    const roles = {};
    for (const r of gw.roles) roles[r.pid] = r.role === 'worker' ? `worker${r.index}` : r.role;
    roles[gw.proc.pid] = 'supervisor';
    await writeFile(join(PROFILE, 'bench-profile.json'), JSON.stringify({ scenario: sc.name, messages: out.accepted, window, roles }, null, 2));
  }
  return out;
}
function m_samples(out) {
  return out._samples ?? [];
}

// ---- ratios, goals ----
const B = result.baselines;
const perS = (b) => (b && Number.isFinite(b.perSecond) ? b.perSecond : null);
const ratio = (a, b) => (a && b ? round(a / b, 2) : null);
for (const sc of selected) {
  const s = result.scenarios[sc.name];
  if (!s || !s.perSecond) continue;
  s.ratios = {
    toSink: ratio(s.perSecond, perS(B[`sink-${sc.size}`])),
    toShellFilter: sc.filter ? ratio(s.perSecond, perS(B[`filter-${sc.filter}`])) : undefined,
    toRawSign: sc.ceiling ? ratio(s.perSecond, perS(B[`raw-${sc.ceiling}`])) : undefined,
    toPostfix: sc.size === 4096 ? ratio(s.perSecond, perS(B['postfix-4096'])) : undefined,
  };
}
const S = result.scenarios;
// Issue 19: the keystore in PostgreSQL beside SQLite, same scenario, same run.
for (const sc of selected.filter((x) => x.backend === 'postgres')) {
  const s = S[sc.name];
  const lite = SCENARIOS.find((x) => x.name !== sc.name && x.from === sc.from && x.size === sc.size && !x.backend && x.rcpts.join() === sc.rcpts.join());
  if (s?.ratios && lite && S[lite.name]?.perSecond) s.ratios.toSqlite = ratio(s.perSecond, S[lite.name].perSecond);
}
const goal = (name, measured, target, unit, better = 'higher') =>
  (result.goals[name] = measured === null || measured === undefined ? { target, measured: null } : { target, measured, unit, met: better === 'higher' ? measured >= target : measured < target, missedBy: better === 'higher' ? (measured >= target ? 0 : round(target / measured, 2)) : measured < target ? 0 : round(measured / target, 2) });
goal('smime-rsa ≥ 0.5 × raw RSA-2048 signs/s', S['smime-rsa']?.ratios?.toRawSign, 0.5, '× raw sign');
goal('smime-rsa > Postfix plain relaying', S['smime-rsa']?.ratios?.toPostfix, 1, '× Postfix');
goal('smime-rsa ≈ 7 × shell filter', S['smime-rsa']?.ratios?.toShellFilter, 7, '× openssl filter');
goal('pass-through ≥ 2 × Postfix', S.passthrough?.ratios?.toPostfix, 2, '× Postfix');
goal('pass-through p99 at half load < 50 ms', S.passthrough?.halfLoad?.latencyMs?.p99, 50, 'ms', 'lower');
goal('smime-rsa on PostgreSQL ≥ 0.85 × on SQLite', S['smime-rsa-pg']?.ratios?.toSqlite, 0.85, '× SQLite');
goal('smime-rsa p99 at half load < 50 ms', S['smime-rsa']?.halfLoad?.latencyMs?.p99, 50, 'ms', 'lower');
// Issue 16: PDF mail 4 KB at no less than half the S/MIME sign+encrypt rate of the same run.
goal('pdf ≥ 0.5 × smime-rsa', S.pdf?.perSecond && S['smime-rsa']?.perSecond ? round(S.pdf.perSecond / S['smime-rsa'].perSecond, 2) : null, 0.5, '× smime-rsa');
for (const [name, what] of [['memory-50m', '50 MB'], ['memory-50m-mixed', '50 MB multipart/mixed'], ['pgp-50m', '50 MB OpenPGP']]) {
  if (!S[name]?.peakRssOverMessageSize) continue;
  const worst = Math.max(...Object.values(S[name].peakRssOverMessageSize).filter(Number.isFinite));
  goal(`${what}: peak RSS of each role < 3 × message size`, worst, 3, '× message size', 'lower');
}
if (PROFILE) {
  try {
    result.profile = summarise(PROFILE);
  } catch (err) {
    result.profile = { error: String(err.message) };
  }
}
result.seconds = round((Date.now() - started) / 1000, 1);
result.exit = lostOrCorrupted ? 1 : 0;

// ---- output ----
const resultsDir = join(ROOT, 'bench/results');
await mkdir(resultsDir, { recursive: true });
const file = join(resultsDir, `${result.date.replace(/[:.]/g, '-')}${QUICK ? '-quick' : ''}${PROFILE ? '-profile' : ''}.json`);
const json = JSON.stringify(result, null, 2) + '\n';
await writeFile(file, json);
if (!only && !PROFILE) await writeFile(join(resultsDir, QUICK ? 'latest-quick.json' : 'latest.json'), json);

const f = (x, w = 7, d = 0) => (x === null || x === undefined ? '–' : typeof x === 'number' ? x.toFixed(d) : String(x)).padStart(w);
const out = [];
out.push(`Postern bench — ${result.machine.cores} cores (${result.machine.cpu}), load ${result.machine.loadavg.join(' ')}; node ${versions.node}, ${versions.openssl}, postfix ${versions.postfix ?? 'n/a'}, commit ${versions.commit}`);
out.push(`${result.command}: ${SESSIONS} SMTP sessions, ${result.seconds} s`);
out.push('');
out.push('baselines (same run)                            msg/s');
for (const [k, b] of Object.entries(B)) {
  const name = k.startsWith('raw-') ? `(c) raw ${k.slice(4)} signatures/s, all cores` : k.startsWith('sink-') ? `(a) load → sink, ${k.slice(5)} B` : k.startsWith('filter-') ? `(b) openssl cms filter ${k.slice(7)}, ${b.parallel ?? ''}×` : `(d) Postfix ${versions.postfix ?? ''} relay, 4096 B`;
  out.push(`  ${name.padEnd(44)} ${b.unavailable ? 'unavailable: ' + b.unavailable : f(b.perSecond, 7)}${b.latencyMs && k.startsWith('postfix') ? `   p50/p99 ${b.latencyMs.p50}/${b.latencyMs.p99} ms` : ''}${b.cpuMsPerMessage ? `   ${b.cpuMsPerMessage} ms CPU/msg` : ''}`);
}
out.push('');
out.push('scenario                           msgs   msg/s  ×sink ×filter ×rawsign ×postfix  p50/p95/p99 ms (saturated)  p99 @½ load  CPU ms/msg  samples ok');
for (const sc of selected) {
  const s = S[sc.name];
  if (!s) continue;
  if (s.available === false || s.error) {
    out.push(`  ${sc.title.padEnd(32)} ${s.available === false ? s.reason : 'error: ' + s.error.split('\n')[0]}`);
    continue;
  }
  const r = s.ratios ?? {};
  const l = s.latencyMs;
  out.push(`  ${sc.title.padEnd(32)} ${f(s.accepted, 5)} ${f(s.perSecond, 7)} ${f(r.toSink, 6, 2)} ${f(r.toShellFilter, 7, 2)} ${f(r.toRawSign, 8, 2)} ${f(r.toPostfix, 8, 2)}  ${(l ? `${l.p50.toFixed(0)}/${l.p95.toFixed(0)}/${l.p99.toFixed(0)}` : '–').padStart(26)}  ${f(s.halfLoad?.latencyMs?.p99, 11, 0)}  ${f(s.cpuMsPerMessage, 10, 2)}  ${s.samplesVerified}/${s.samplesVerified + s.samplesFailed}${s.lost || s.corrupted || s.samplesFailed ? `  LOST ${s.lost} CORRUPT ${s.corrupted + s.samplesFailed}` : ''}`);
}
for (const sc of selected.filter((x) => x.backend === 'postgres')) {
  const s = S[sc.name];
  if (s?.perSecond) out.push(`  ${sc.title}: ${f(s.ratios?.toSqlite, 0, 2)} × the SQLite figure; PostgreSQL statements: ${s.statements?.firstMessage ?? '–'} for a first message (caches cold), ${s.statements?.perMessage ?? '–'} per message of the stream`);
}
out.push('');
if (result.micro && !result.micro.error) out.push(...formatMicro(result.micro), '');
out.push('peak RSS per role, MB (VmHWM during the measured phase)');
for (const sc of selected) {
  const s = S[sc.name];
  if (!s?.roles) continue;
  out.push(`  ${sc.title.padEnd(32)} ` + Object.entries(s.roles).map(([k, v]) => `${k} ${f(v.peakRssMB, 0, 0)}`).join('  ') + (s.peakRssOverMessageSize ? `   (worst peak ${Math.max(...Object.values(s.peakRssOverMessageSize).filter(Number.isFinite)).toFixed(2)}× message size; growth over idle ${Math.max(...Object.values(s.growthOverMessageSize).filter(Number.isFinite)).toFixed(2)}×)` : ''));
}
out.push('');
out.push('goals');
for (const [k, g] of Object.entries(result.goals)) out.push(`  ${k.padEnd(46)} ${g.measured === null ? 'not measured' : `${g.measured} ${g.unit}: ${g.met ? 'met' : `missed (${g.missedBy}× off)`}`}`);
for (const p of result.problems) out.push(`problem: ${p}`);
console.log(out.join('\n'));
if (result.profile && !result.profile.error) printSummary(result.profile);
console.log(`result: ${file}${lostOrCorrupted ? '\nFAILED: the gateway lost or corrupted messages (see the JSON)' : ''}`);

sink.p.kill();
load.p.kill();
await pgGateway?.pg.stop();
if (!values.keep) await rm(work, { recursive: true, force: true });
else console.log(`kept: ${work}`);
process.exit(result.exit);
