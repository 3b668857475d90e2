#!/usr/bin/env node
/**
 * Where the time goes per message: reads the V8 CPU profiles (.cpuprofile) the gateway's roles wrote
 * with `npm run bench -- --profile DIR` and sums self time per role, per stage (smtp-in, spool,
 * parse, crypto, ASN.1, relay, …), per module and per function, in ms per message.
 *
 * Only samples inside the measured window count (the bench writes DIR/bench-profile.json with the
 * role of each pid, the message count and the window in the monotonic clock V8's profiler uses), so
 * start-up, warm-up and shut-down are left out. Standalone: `node bench/profile.js DIR`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Module of a call frame: dist/<module>/, node_modules/<package>, node:<area>, or a V8 bucket. */
export function moduleOf(frame) {
  const url = frame.url ?? '';
  if (!url) {
    if (frame.functionName === '(garbage collector)') return '(gc)';
    if (frame.functionName === '(idle)') return '(idle)';
    if (frame.functionName === '(program)') return '(program)';
    return '(native)';
  }
  let m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (m) return m[1];
  m = /\/dist\/([^/]+)\//.exec(url);
  if (m) return `postern/${m[1]}`;
  if (/\/dist\/main\.js$/.test(url)) return 'postern/main';
  m = /^node:(?:internal\/)?([a-z_]+)/.exec(url);
  if (m) return `node:${m[1]}`;
  return 'other';
}

/** The stages of the issue, by module. */
export function stageOf(mod) {
  if (mod === '(gc)') return 'GC';
  if (mod === '(idle)') return 'idle';
  if (/^postern\/(smtpd)$|^smtp-server$|^node:(net|tls|dns)$/.test(mod)) return 'smtp-in';
  if (/^postern\/spool$|^node:fs$/.test(mod)) return 'spool';
  if (/^postern\/mime$|^mailparser$|^libmime$|^iconv-lite$|^encoding-japanese$|^libbase64$|^libqp$/.test(mod)) return 'parse';
  if (/^postern\/(smime|openpgp|pki)$|^node:crypto$|^openpgp$|^@noble\//.test(mod)) return 'crypto';
  if (/^(pkijs|asn1js|pvtsutils|pvutils|@peculiar\/.*|bytestreamjs)$/.test(mod)) return 'ASN.1';
  if (/^postern\/relay$|^nodemailer$/.test(mod)) return 'relay';
  if (/^postern\/log$|^pino|^sonic-boom$|^thread-stream$|^fast-redact$|^quick-format-unescaped$/.test(mod)) return 'log';
  if (/^postern\/(keystore|directory)$|^better-sqlite3$/.test(mod)) return 'keystore';
  if (/^postern\/(policy|worker|dsn|core|config|supervisor|cli|main)$|^zod$|^yaml$/.test(mod)) return 'worker/policy';
  if (/^node:(child_process|process|timers|streams|stream|buffer|event|events|util|url|modules|bootstrap|vm|worker)/.test(mod)) return 'node (ipc, streams, timers)';
  return 'other';
}

/** Self time (µs) per node id of one profile, inside [from, to] µs of the profile's clock when given. */
function selfTimes(profile, window) {
  const self = new Map();
  let t = profile.startTime;
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i] ?? 0;
    // The time until the next sample belongs to this one.
    const dt = timeDeltas[i + 1] ?? 0;
    if (window && (t < window.from || t > window.to)) continue;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }
  return self;
}

export function summarise(dir) {
  const meta = JSON.parse(readFileSync(join(dir, 'bench-profile.json'), 'utf8'));
  const messages = meta.messages;
  const byRole = {};
  const functions = new Map();
  let windowed = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
    const pid = Number(f.split('.')[3]);
    const role = meta.roles[pid] ?? `pid ${pid}`;
    const profile = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    const inWindow = meta.window && profile.startTime <= meta.window.to && profile.endTime >= meta.window.from;
    if (inWindow) windowed++;
    const self = selfTimes(profile, inWindow ? meta.window : null);
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    // A native function (no url: a binding such as writeBuffer, openFileHandle, fsync, or a V8
    // builtin) is charged to the module of its nearest JavaScript caller, so file and socket
    // syscalls land in spool, smtp-in or relay rather than in one anonymous bucket.
    const ownerFrame = (id) => {
      let n = nodes.get(id);
      if (n.callFrame.url || /^\((garbage collector|idle|program|root)\)$/.test(n.callFrame.functionName)) return n.callFrame;
      for (let p = parent.get(id); p !== undefined; p = parent.get(p)) {
        const f = nodes.get(p).callFrame;
        if (f.url) return f;
      }
      return n.callFrame;
    };
    const r = (byRole[role] ??= { totalMs: 0, stages: {}, modules: {} });
    for (const [id, us] of self) {
      const frame = nodes.get(id).callFrame;
      const mod = moduleOf(ownerFrame(id));
      const stage = stageOf(mod);
      if (stage === 'idle' || mod === '(idle)') continue;
      const ms = us / 1000;
      r.totalMs += ms;
      r.stages[stage] = (r.stages[stage] ?? 0) + ms;
      r.modules[mod] = (r.modules[mod] ?? 0) + ms;
      const file = (frame.url ?? '').replace(/^.*\/(dist|node_modules)\//, '$1/');
      const key = `${role}\t${frame.functionName || '(anonymous)'}\t${file}:${frame.lineNumber + 1}`;
      functions.set(key, (functions.get(key) ?? 0) + ms);
    }
  }
  const perMsg = (ms) => +(ms / messages).toFixed(3);
  const roles = {};
  for (const [role, r] of Object.entries(byRole).sort()) {
    roles[role] = {
      msPerMessage: perMsg(r.totalMs),
      stages: Object.fromEntries(Object.entries(r.stages).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, perMsg(v)])),
      modules: Object.fromEntries(Object.entries(r.modules).sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => [k, perMsg(v)])),
    };
  }
  const top = [...functions].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, ms]) => {
    const [role, fn, where] = k.split('\t');
    return { role, function: fn, where, msPerMessage: perMsg(ms) };
  });
  return { scenario: meta.scenario, messages, windowed: windowed > 0, roles, top };
}

export function printSummary(s, log = console.log) {
  log(`\nCPU profile, scenario ${s.scenario}: self time in ms per message (${s.messages} messages${s.windowed ? ', measured window only' : ', whole process lifetime'})`);
  for (const [role, r] of Object.entries(s.roles)) {
    log(`  ${role.padEnd(11)} ${r.msPerMessage.toFixed(2).padStart(7)} ms  ` + Object.entries(r.stages).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', '));
    log(`  ${''.padEnd(11)}          modules: ` + Object.entries(r.modules).slice(0, 8).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', '));
  }
  log('  top functions (self time):');
  for (const f of s.top.slice(0, 15)) log(`    ${f.msPerMessage.toFixed(3).padStart(7)} ms  ${f.role.padEnd(8)} ${f.function} (${f.where})`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node bench/profile.js DIR   (DIR written by npm run bench -- --profile DIR)');
    process.exit(2);
  }
  const s = summarise(dir);
  if (process.argv.includes('--json')) console.log(JSON.stringify(s, null, 2));
  else printSummary(s);
}
