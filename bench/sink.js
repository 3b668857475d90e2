/**
 * The bench's next hop: a minimal counting SMTP sink on a raw net server (PIPELINING, no disk
 * writes except the sample). Run as a child of bench/run.js (fork, IPC), so its CPU does not
 * compete with the orchestrator's event loop.
 *
 * Per delivered message it records the X-Bench-Id header, the recipient count and the arrival time
 * (performance.timeOrigin + now(): the wall clock shared with the load generator's process), and
 * checks it: `verify: 'sum'` hashes the body and compares it with X-Bench-Sum (pass-through: a
 * corrupted byte shows); `expect` is a list of regular expressions the message must match (the
 * crypto scenarios: what the gateway must have made of it). Every `sampleEvery`-th id (up to
 * `sampleMax`) is kept as a file for verification with openssl/gpg.
 *
 * IPC: {type:'reset', scenario, verify, expect, sampleDir, sampleEvery, sampleMax} → {type:'ok'};
 * {type:'count'} → {type:'count', deliveries}; {type:'dump'} → {type:'dump', ...everything}.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

const now = () => performance.timeOrigin + performance.now();
const TERM = Buffer.from('\r\n.\r\n');

let state;
function reset(opts = {}) {
  state = {
    scenario: opts.scenario ?? '',
    verify: opts.verify ?? 'none',
    expect: (opts.expect ?? []).map((s) => new RegExp(s, 'm')),
    sampleDir: opts.sampleDir ?? null,
    sampleEvery: opts.sampleEvery ?? 0,
    sampleMax: opts.sampleMax ?? 0,
    kept: 0,
    deliveries: 0, // transactions
    recipients: 0,
    bytes: 0,
    // per delivery: id, recipients, arrival time
    ids: [],
    rcpts: [],
    arrivals: [],
    unknown: 0, // no X-Bench-Id header
    bad: [], // {id, reason}
    samples: [], // {id, rcpt, file}
  };
  if (state.sampleDir) mkdirSync(state.sampleDir, { recursive: true });
}
reset();

function headerOf(msg) {
  const end = msg.indexOf('\r\n\r\n');
  const head = msg.subarray(0, end < 0 ? Math.min(msg.length, 65536) : end + 2).toString('latin1');
  return { head, bodyStart: end < 0 ? msg.length : end + 4 };
}
const field = (head, name) => new RegExp(`^${name}:[ \\t]*(\\S+)`, 'mi').exec(head)?.[1];

function delivered(raw, rcpts) {
  const t = now();
  // Dot-unstuffing (RFC 5321 4.5.2): only where a line starts with "..".
  const msg = raw.includes('\r\n..') || raw.subarray(0, 2).toString() === '..' ? Buffer.from(('\r\n' + raw.toString('latin1')).replace(/\r\n\.\./g, '\r\n.').slice(2), 'latin1') : raw;
  const { head, bodyStart } = headerOf(msg);
  const idText = field(head, 'X-Bench-Id');
  const id = idText === undefined ? -1 : Number(idText);
  // Not a bench message (a notice the gateway writes itself, e.g. PDF mail's password notice):
  // counted apart, so it neither completes a run early nor fails its checks.
  if (id < 0) {
    state.unknown++;
    return;
  }
  state.deliveries++;
  state.recipients += rcpts.length;
  state.bytes += msg.length;
  state.ids.push(id);
  state.rcpts.push(rcpts.length);
  state.arrivals.push(t);
  if (state.verify === 'sum') {
    const want = field(head, 'X-Bench-Sum');
    const got = createHash('sha256').update(msg.subarray(bodyStart)).digest('hex');
    if (want !== got) state.bad.length < 100 && state.bad.push({ id, reason: `body sha256 ${got.slice(0, 16)} ≠ X-Bench-Sum ${String(want).slice(0, 16)}` });
  }
  if (state.expect.length) {
    const text = msg.subarray(0, Math.min(msg.length, 1 << 20)).toString('latin1');
    for (const re of state.expect) if (!re.test(text)) state.bad.length < 100 && state.bad.push({ id, reason: `does not match /${re.source}/` });
  }
  if (state.sampleDir && state.sampleEvery && id >= 0 && id % state.sampleEvery === 0 && state.kept < state.sampleMax) {
    for (const r of rcpts) {
      const file = join(state.sampleDir, `${id}-${r.replace(/[^a-z0-9@.-]/gi, '_')}.eml`);
      writeFileSync(file, msg);
      state.samples.push({ id, rcpt: r, file });
    }
    state.kept++;
  }
}

function session(sock) {
  sock.setNoDelay(true);
  let buf = Buffer.alloc(0);
  let inData = false;
  let chunks = [];
  let tail = Buffer.alloc(0); // last bytes of the data so far, to find a terminator split across chunks
  let dataLen = 0;
  let rcpts = [];
  const out = [];
  const flush = () => {
    if (out.length) sock.write(out.join(''));
    out.length = 0;
  };
  sock.write('220 bench-sink ESMTP\r\n');
  sock.on('error', () => {});
  sock.on('data', (d) => {
    let data = d;
    while (data.length) {
      if (inData) {
        // Look for CRLF.CRLF in (tail + data); the message began with an implicit CRLF.
        const probe = tail.length ? Buffer.concat([tail, data.subarray(0, Math.min(data.length, 8))]) : null;
        let cut = -1;
        if (probe) {
          const i = probe.indexOf(TERM);
          if (i >= 0) cut = i + TERM.length - tail.length; // bytes of `data` that belong to the terminator
        }
        let bodyEnd = -1;
        if (cut < 0) {
          const i = data.indexOf(TERM);
          if (i >= 0) {
            bodyEnd = i + 2;
            cut = i + TERM.length;
          }
        } else bodyEnd = cut - 3; // may be negative: the terminator began in the previous chunk
        if (cut < 0) {
          chunks.push(data);
          dataLen += data.length;
          tail = Buffer.concat([tail, data]).subarray(-4);
          return;
        }
        if (bodyEnd > 0) chunks.push(data.subarray(0, bodyEnd));
        let raw = Buffer.concat(chunks);
        if (bodyEnd < 0) raw = raw.subarray(0, raw.length + bodyEnd);
        delivered(raw, rcpts);
        out.push(`250 2.0.0 Ok: queued as ${state.deliveries}\r\n`);
        inData = false;
        chunks = [];
        tail = Buffer.alloc(0);
        dataLen = 0;
        rcpts = [];
        data = data.subarray(cut);
        continue;
      }
      buf = buf.length ? Buffer.concat([buf, data]) : data;
      data = Buffer.alloc(0);
      let nl;
      while (!inData && (nl = buf.indexOf('\n')) >= 0) {
        const line = buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
        buf = buf.subarray(nl + 1);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') out.push('250-bench-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 1073741824\r\n250 ENHANCEDSTATUSCODES\r\n');
        else if (verb === 'HELO') out.push('250 bench-sink\r\n');
        else if (verb === 'MAIL') {
          rcpts = [];
          out.push('250 2.1.0 Ok\r\n');
        } else if (verb === 'RCPT') {
          rcpts.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          out.push('250 2.1.5 Ok\r\n');
        } else if (verb === 'DATA') {
          out.push('354 End data with <CR><LF>.<CR><LF>\r\n');
          inData = true;
          // The first line of data may be "." (empty message): treat data as preceded by CRLF.
          tail = Buffer.from('\r\n');
        } else if (verb === 'RSET' || verb === 'NOOP') out.push('250 2.0.0 Ok\r\n');
        else if (verb === 'QUIT') {
          out.push('221 2.0.0 Bye\r\n');
          flush();
          sock.end();
          return;
        } else out.push('502 5.5.2 Error: command not recognized\r\n');
      }
      if (inData) {
        data = buf;
        buf = Buffer.alloc(0);
      }
    }
    flush();
  });
  void dataLen;
}

const server = createServer(session);
server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }));
process.on('message', (m) => {
  if (m.type === 'reset') {
    reset(m);
    process.send({ type: 'ok' });
  } else if (m.type === 'count') process.send({ type: 'count', deliveries: state.deliveries, recipients: state.recipients });
  else if (m.type === 'dump') {
    const { expect: _e, ...rest } = state;
    process.send({ type: 'dump', ...rest });
  } else if (m.type === 'stop') server.close(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
