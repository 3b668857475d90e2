/**
 * The real gateway for the bench: `node dist/main.js start -c FILE` in its own process group, its
 * roles found from the supervisor's `supervisor.spawn` log lines, and their resource use read from
 * /proc: CPU (utime+stime of /proc/PID/stat) and peak RSS (VmHWM of /proc/PID/status; reset by
 * writing 5 to /proc/PID/clear_refs, so each phase reports its own peak).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = resolve(import.meta.dirname, '..');
export const MAIN = join(ROOT, 'dist/main.js');
const TICK = 100; // USER_HZ on Linux

/** postern.yaml for a bench gateway in `dir` relaying everything to the sink. */
export async function writeConfig(dir, { port, sinkPort, relayConcurrency = 20, extra = '' }) {
  const file = join(dir, 'postern.yaml');
  await writeFile(
    file,
    `hostname: bench.example
data_dir: data
internal_domains: [example.com]
trusted_networks: [127.0.0.0/8]
log: { level: info }          # as in production: one line per stage
smtp:
  listen: ["127.0.0.1:${port}"]
  max_message_size: 200MB
  max_connections: 500
relay:
  routes: { "*": "smtp://127.0.0.1:${sinkPort}" }
  concurrency: ${relayConcurrency}
policy: policy.yaml
${extra}`,
  );
  return file;
}

export function runCli(config, args, env = {}) {
  return new Promise((res) => {
    const p = spawn(process.execPath, [MAIN, ...args, '-c', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => res({ code, stdout: out, stderr: err }));
  });
}

export async function cli(config, args, env) {
  const r = await runCli(config, args, env);
  if (r.code !== 0) throw new Error(`postern ${args.join(' ')}: exit ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export async function startGateway(config, { profileDir } = {}) {
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${resolve(profileDir)}`] : [];
  // fork() passes the supervisor's execArgv on to the roles, so each role writes its own profile.
  const proc = spawn(process.execPath, [...nodeArgs, MAIN, 'start', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const roles = []; // {role, index, pid}
  const tail = [];
  const events = {};
  let readyResolve;
  const ready = new Promise((r) => (readyResolve = r));
  const onLine = (line) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
    if (line[0] !== '{') return;
    let l;
    try {
      l = JSON.parse(line);
    } catch {
      return;
    }
    if (l.event) events[l.event] = (events[l.event] ?? 0) + 1;
    if (l.event === 'supervisor.spawn') roles.push({ role: l.role, index: l.index, pid: l.child });
    if (l.event === 'supervisor.ready') readyResolve();
  };
  createInterface({ input: proc.stdout }).on('line', onLine);
  createInterface({ input: proc.stderr }).on('line', onLine);
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  const timeout = new Promise((_, rej) => setTimeout(() => rej(new Error(`gateway did not start; last lines:\n${tail.join('\n')}`)), 30_000).unref());
  await Promise.race([ready, timeout, exited.then((e) => Promise.reject(new Error(`gateway exited ${JSON.stringify(e)}:\n${tail.join('\n')}`)))]);
  return {
    proc,
    roles,
    events,
    tail: () => tail.join('\n'),
    /** Live processes by role name: supervisor, smtpd, worker0, worker1…, relay (latest spawn of each slot). */
    processes() {
      const m = new Map([['supervisor', proc.pid]]);
      for (const r of roles) m.set(r.role === 'worker' ? `worker${r.index}` : r.role, r.pid);
      return m;
    },
    restarts: () => roles.length - new Set(roles.map((r) => `${r.role}${r.index}`)).size,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => {
        try {
          process.kill(-proc.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 15_000);
      const e = await exited;
      clearTimeout(t);
      return e;
    },
  };
}

/** CPU seconds (user+system) of a process, or null when it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK; // fields 14 and 15 (utime, stime)
  } catch {
    return null;
  }
}

/** Peak and current RSS in bytes. */
export function memory(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'latin1');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
  } catch {
    return null;
  }
}

export function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** A snapshot of every role: {name: {pid, cpu}}. */
export function snapshot(gw) {
  const s = {};
  for (const [name, pid] of gw.processes()) s[name] = { pid, cpu: cpuSeconds(pid) };
  return s;
}

/** Per role: CPU seconds between two snapshots, peak RSS now. */
export function usage(gw, before) {
  const out = {};
  for (const [name, pid] of gw.processes()) {
    const b = before[name];
    const cpu = cpuSeconds(pid);
    const mem = memory(pid);
    out[name] = {
      pid,
      cpuSeconds: b && b.pid === pid && cpu !== null && b.cpu !== null ? round(cpu - b.cpu, 3) : null,
      peakRssMB: mem ? round(mem.hwm / 2 ** 20, 1) : null,
    };
  }
  return out;
}

export const round = (x, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? x ?? null : Math.round(x * 10 ** d) / 10 ** d);
