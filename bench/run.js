#!/usr/bin/env node
/**
 * `npm run bench`: throughput of the real gateway (its processes, spool with fsync) against a
 * baseline measured in the same run, so the figure means something on a noisy shared machine.
 * `--profile DIR` writes a V8 CPU profile of each gateway process into DIR (open in Chrome DevTools).
 *
 *   baseline  smtp-source → smtp-sink               (the SMTP ceiling of this machine)
 *   postern   smtp-source → Postern → smtp-sink    (pass-through: no transform yet)
 *
 * The crypto scenarios, latency percentiles and memory figures of the benchmark issue are added as
 * the transforms land. Needs Postfix's smtp-source and smtp-sink (`apt-get install postfix`); the
 * bench installs nothing by itself. Options: --messages N --sessions N --size BYTES.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile, chmod } from 'node:fs/promises';
import { createServer } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const MAIN = join(ROOT, 'dist/main.js');
const SOURCE = '/usr/sbin/smtp-source';
const SINK = '/usr/sbin/smtp-sink';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '20' },
    size: { type: 'string', default: '4096' },
    profile: { type: 'string' }, // a directory: CPU profiles of every gateway process go there
  },
});
const MESSAGES = Number(values.messages);
const SESSIONS = Number(values.sessions);
const SIZE = Number(values.size);

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** smtp-sink with a running counter (-c) on stdout: resolves when `n` messages were delivered. */
async function startSink() {
  const port = await freePort();
  const asRoot = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  const proc = spawn(SINK, [...asRoot, '-c', `127.0.0.1:${port}`, '256'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let count = 0;
  let waiters = [];
  proc.stdout.on('data', (d) => {
    const m = /(\d+)\s*$/.exec(d.toString().replace(/\r/g, ' '));
    if (m) count = Number(m[1]);
    waiters = waiters.filter((w) => (count >= w.n ? (w.resolve(), false) : true));
  });
  await new Promise((r) => setTimeout(r, 200));
  return {
    port,
    get count() {
      return count;
    },
    reached: (n) => (count >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    stop: () => proc.kill('SIGTERM'),
  };
}

function source(port, messages) {
  return new Promise((res, rej) => {
    const p = spawn(
      SOURCE,
      ['-s', String(SESSIONS), '-m', String(messages), '-l', String(SIZE), '-f', 'bench@example.org', '-t', 'sink@example.net', `127.0.0.1:${port}`],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`smtp-source exited ${code}`))));
  });
}

async function baseline() {
  const sink = await startSink();
  const t0 = performance.now();
  await source(sink.port, MESSAGES);
  await sink.reached(MESSAGES);
  const s = (performance.now() - t0) / 1000;
  sink.stop();
  return { messages: MESSAGES, seconds: s, perSecond: MESSAGES / s };
}

async function postern() {
  const sink = await startSink();
  const dir = await mkdtemp(join(tmpdir(), 'postern-bench-'));
  const port = await freePort();
  await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
  const config = join(dir, 'postern.yaml');
  await writeFile(
    config,
    `hostname: bench.example
data_dir: data
internal_domains: [example.com]
trusted_networks: [127.0.0.0/8]
log: { level: info }          # as in production: one line per stage
smtp: { listen: ["127.0.0.1:${port}"] }
relay:
  routes: { "*": "smtp://127.0.0.1:${sink.port}" }
  concurrency: 64
`,
  );
  const nodeArgs = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${resolve(values.profile)}`] : [];
  // fork() passes the supervisor's execArgv on to the roles, so each role writes its own profile.
  const gw = spawn(process.execPath, [...nodeArgs, MAIN, 'start', '-c', config], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  let out = '';
  let ready = false;
  await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`gateway did not start:\n${out}`)), 20_000);
    gw.stdout.on('data', (d) => {
      if (ready) return; // keep draining the pipe, stop collecting
      out += d.toString();
      if (out.includes('accepting mail') || out.includes('"supervisor.ready"')) {
        ready = true;
        clearTimeout(t);
        res();
      }
    });
  });
  // Warm-up: JIT, pools, first directory entries.
  const warm = Math.min(200, MESSAGES);
  await source(port, warm);
  await sink.reached(warm);
  const t0 = performance.now();
  await source(port, MESSAGES);
  const accepted = (performance.now() - t0) / 1000;
  await sink.reached(warm + MESSAGES);
  const s = (performance.now() - t0) / 1000;
  gw.kill('SIGTERM');
  await new Promise((r) => gw.once('exit', r));
  sink.stop();
  await rm(dir, { recursive: true, force: true });
  return { messages: MESSAGES, seconds: s, perSecond: MESSAGES / s, acceptSeconds: accepted };
}

for (const tool of [SOURCE, SINK]) {
  if (spawnSync(tool, [], { stdio: 'ignore' }).error) {
    console.error(`bench: ${tool} not found — install Postfix (apt-get install postfix) to run the benchmark`);
    process.exit(2);
  }
}

const base = await baseline();
const pass = await postern();
const result = {
  date: new Date().toISOString(),
  machine: { cores: availableParallelism(), cpu: cpus()[0]?.model, node: process.version },
  load: { messages: MESSAGES, sessions: SESSIONS, size: SIZE, recipients: 1 },
  baseline_smtp_sink: base,
  passthrough: { ...pass, ratioToSink: pass.perSecond / base.perSecond },
};
const resultsDir = join(ROOT, 'bench/results');
await mkdir(resultsDir, { recursive: true });
const file = join(resultsDir, `${result.date.replace(/[:.]/g, '-')}.json`);
await writeFile(file, JSON.stringify(result, null, 2) + '\n');
await chmod(file, 0o644);

const row = (name, r, ratio) => `${name.padEnd(34)} ${r.perSecond.toFixed(0).padStart(7)} msg/s  ${ratio}`;
console.log(`Postern bench — ${result.machine.cores} cores, ${result.machine.cpu}, Node ${process.version}`);
console.log(`${MESSAGES} messages of ${SIZE} bytes, ${SESSIONS} sessions, 1 recipient`);
console.log(row('smtp-source → smtp-sink (ceiling)', base, '1.00×'));
console.log(row('smtp-source → Postern → smtp-sink', pass, `${result.passthrough.ratioToSink.toFixed(2)}× of ceiling`));
console.log(`result: ${file}`);
