/**
 * The bench's load generator: a small SMTP client that reuses its connections like a relay does
 * (EHLO once, then MAIL/RCPT…/DATA pipelined per message, RFC 2920), with per-message timestamps.
 * Run as a child of bench/run.js (fork, IPC): {type:'run', ...job} → {type:'done', ...result}.
 *
 * job: port, from, rcpts (addresses of every message), count, concurrency, firstId, scenario,
 *      template {kind:'plain', size} (generated text body) | {kind:'mixed', size} (multipart/mixed:
 *      a text part and a generated binary file in base64, as a client sends an attachment) | {kind:'file', path, sum} (a prepared
 *      MIME entity, e.g. an S/MIME message, appended to per-message outer header fields),
 *      rate (messages/s, open loop; omitted: as fast as the connections go).
 * Each message carries X-Bench-Id (the sink's key), X-Bench-Scn and X-Bench-Sum (sha256 of the
 * body the sender meant, so the sink or a verifier can prove it arrived unchanged).
 * Times are performance.timeOrigin + now() in ms: comparable with the sink's, in another process.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';

const now = () => performance.timeOrigin + performance.now();

/** Lines of 76 printable characters (7-bit, no leading dot), deterministic. */
export function filler(size) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ';
  const line = Buffer.alloc(78);
  const lines = Math.max(1, Math.ceil(size / 78));
  const out = Buffer.alloc(lines * 78);
  let x = 0x2545f491;
  for (let l = 0; l < lines; l++) {
    for (let i = 0; i < 76; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      line[i] = alphabet.charCodeAt((x >>> 0) % alphabet.length);
    }
    line[0] = 0x42; // never "." or " " first
    line[76] = 13;
    line[77] = 10;
    line.copy(out, l * 78);
  }
  return out;
}

/** `size` bytes or a little less of base64 in lines of 76 (CRLF) of deterministic binary data. */
function base64File(size) {
  const raw = Buffer.alloc(Math.max(1, Math.floor(size / 78)) * 57);
  let x = 0x9e3779b9;
  for (let i = 0; i < raw.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    raw[i] = x & 0xff;
  }
  return Buffer.from(raw.toString('base64').replace(/.{76}/g, '$&\r\n'), 'latin1');
}

function makeBuilder(job) {
  const to = job.rcpts.join(', ');
  if (job.template.kind === 'mixed') {
    const B = '=_bench_mixed';
    const file = base64File(job.template.size - 1000);
    const tail = Buffer.from(`--${B}--\r\n`);
    return (id) => {
      const text = Buffer.from(
        `This is a multi-part message in MIME format.\r\n--${B}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nbench message ${id} of scenario ${job.scenario}: the file is attached.\r\n` +
          `--${B}\r\nContent-Type: application/octet-stream; name="bench.bin"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="bench.bin"\r\n\r\n`,
      );
      const sum = createHash('sha256').update(text).update(file).update(tail).digest('hex');
      const head = outer(job, id, to, sum) + `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${B}"\r\n\r\n`;
      return [Buffer.from(head, 'latin1'), text, file, tail];
    };
  }
  if (job.template.kind === 'file') {
    const entity = readFileSync(job.template.path);
    return (id) => {
      const head = outer(job, id, to, job.template.sum);
      return [Buffer.from(head, 'latin1'), entity];
    };
  }
  // The body: an id line (so every message's signed content differs) and the shared filler.
  const fill = filler(Math.max(0, job.template.size - 400));
  return (id) => {
    const idLine = Buffer.from(`bench message ${id} of scenario ${job.scenario}\r\n`);
    const sum = createHash('sha256').update(idLine).update(fill).digest('hex');
    const head = outer(job, id, to, sum) + 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n';
    return [Buffer.from(head, 'latin1'), idLine, fill];
  };
}

function outer(job, id, to, sum) {
  return (
    `From: <${job.from}>\r\nTo: ${to}\r\nSubject: bench ${job.scenario} ${id}\r\nMessage-ID: <${id}.${job.scenario}@bench.example>\r\n` +
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}\r\nX-Bench-Id: ${id}\r\nX-Bench-Scn: ${job.scenario}\r\nX-Bench-Sum: ${sum}\r\n`
  );
}

/** An SMTP connection with a reply queue (replies arrive in command order). */
function open(port) {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1' });
    sock.setNoDelay(true);
    let buf = '';
    let lines = [];
    const replies = [];
    const waiters = [];
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line[3] !== '-') {
          const reply = { code: Number(line.slice(0, 3)), text: lines.join('\n') };
          lines = [];
          const w = waiters.shift();
          if (w) w.resolve(reply);
          else replies.push(reply);
        }
      }
    });
    const fail = (err) => {
      for (const w of waiters.splice(0)) w.reject(err);
    };
    sock.on('error', (err) => {
      fail(err);
      reject(err);
    });
    sock.on('close', () => fail(new Error('connection closed')));
    const reply = () => (replies.length ? Promise.resolve(replies.shift()) : new Promise((res, rej) => waiters.push({ resolve: res, reject: rej })));
    sock.once('connect', () => resolve({ sock, reply }));
  });
}

async function run(job) {
  const build = makeBuilder(job);
  const n = job.count;
  const sent = new Array(n).fill(0);
  const accepted = new Array(n).fill(0);
  const failures = [];
  let next = 0;
  const t0 = now();
  const pace = job.rate ? 1000 / job.rate : 0;

  async function connection() {
    const c = await open(job.port);
    const greet = await c.reply();
    if (greet.code !== 220) throw new Error(`greeting: ${greet.text}`);
    c.sock.write('EHLO load.bench.example\r\n');
    const ehlo = await c.reply();
    if (ehlo.code !== 250) throw new Error(`EHLO: ${ehlo.text}`);
    const pipelining = /PIPELINING/i.test(ehlo.text);
    while (next < n) {
      const i = next++;
      if (pace) {
        const due = t0 + i * pace;
        const wait = due - now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      }
      const id = job.firstId + i;
      const parts = build(id);
      sent[i] = now();
      const cmds = [`MAIL FROM:<${job.from}>\r\n`, ...job.rcpts.map((r) => `RCPT TO:<${r}>\r\n`), 'DATA\r\n'];
      let rs = [];
      if (pipelining) {
        c.sock.write(cmds.join(''));
        for (let k = 0; k < cmds.length; k++) rs.push(await c.reply());
      } else for (const cmd of cmds) (c.sock.write(cmd), rs.push(await c.reply()));
      const last = rs[rs.length - 1];
      const bad = rs.slice(0, -1).find((r) => r.code >= 300);
      if (last.code !== 354) {
        failures.push({ id, reply: (bad ?? last).text });
        c.sock.write('RSET\r\n');
        await c.reply();
        continue;
      }
      for (const p of parts) c.sock.write(p);
      c.sock.write('.\r\n');
      const end = await c.reply();
      if (end.code === 250) accepted[i] = now();
      else failures.push({ id, reply: end.text });
    }
    c.sock.write('QUIT\r\n');
    await c.reply().catch(() => {});
    c.sock.destroy();
  }

  const conns = Math.max(1, Math.min(job.concurrency, n));
  const results = await Promise.allSettled(Array.from({ length: conns }, connection));
  const errors = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason?.message ?? r.reason));
  return { t0, t1: now(), sent, accepted, failures, errors };
}

if (process.send) {
  process.on('message', async (m) => {
    if (m.type !== 'run') return;
    try {
      process.send({ type: 'done', ...(await run(m)) });
    } catch (err) {
      process.send({ type: 'done', fatal: String(err?.stack ?? err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
