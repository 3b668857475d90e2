/**
 * Proof that the gateway did not corrupt what it transformed: the sample kept by the sink is
 * decrypted and verified by independent tools (openssl cms, gpg), and the body of the signed content
 * hashed and compared with the X-Bench-Sum the load generator put on the message.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './gateway.js';
import { run } from './pki.js';

const sumOfHeader = (text) => /^X-Bench-Sum:[ \t]*(\S+)/im.exec(text)?.[1];

/** sha256 of what follows the first blank line, CRLF line ends (openssl may write LF). */
function bodySum(content) {
  const text = content.toString('latin1').replace(/\r?\n/g, '\r\n');
  const i = text.indexOf('\r\n\r\n');
  return createHash('sha256').update(Buffer.from(i < 0 ? '' : text.slice(i + 4), 'latin1')).digest('hex');
}

const opts = { encoding: 'buffer', maxBuffer: 1 << 30 };

/**
 * One sample. kind: 'smime-out' (decrypt with the recipient's key, verify under ourCa),
 * 'smime-in' (plaintext arrives: verify the partner's signature that survived, under partnerCa),
 * 'pgp-out' (gpg --decrypt with a good signature), 'pdf-out' (the PDF opens in qpdf with the pair's
 * password, qpdf --check is clean, and pdftotext finds the message's id line), 'plain' (body sum only).
 */
export async function verifySample(sample, kind, keys) {
  const raw = await readFile(sample.file);
  const want = sumOfHeader(raw.subarray(0, 65536).toString('latin1'));
  try {
    let content;
    if (kind === 'smime-out') {
      const box = keys.boxes[sample.rcpt];
      if (!box) return { ok: false, id: sample.id, reason: `no key for ${sample.rcpt}` };
      const dec = await run('openssl', ['cms', '-decrypt', '-in', sample.file, '-recip', box.cert, '-inkey', box.key], opts);
      const ver = await runInput('openssl', ['cms', '-verify', '-CAfile', keys.ourCa.cert, '-purpose', 'smimesign'], dec.stdout);
      content = ver;
    } else if (kind === 'smime-in') {
      content = (await run('openssl', ['cms', '-verify', '-in', sample.file, '-CAfile', keys.partnerCa.cert], opts)).stdout;
    } else if (kind === 'pgp-out') {
      const text = raw.toString('latin1');
      const armor = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(text)?.[0];
      if (!armor) return { ok: false, id: sample.id, reason: 'no PGP MESSAGE armor in the delivered message' };
      const r = await runInput('gpg', ['--homedir', keys.pgp.home, '--batch', '--status-fd', '2', '--decrypt'], Buffer.from(armor, 'latin1'), true);
      if (!/\[GNUPG:\] GOODSIG /.test(r.stderr)) return { ok: false, id: sample.id, reason: 'gpg: no good signature' };
      content = r.stdout;
    } else if (kind === 'pdf-out') {
      return await verifyPdf(sample, raw, keys);
    } else content = raw;
    const got = bodySum(content);
    return got === want ? { ok: true, id: sample.id } : { ok: false, id: sample.id, reason: `content sha256 ${got.slice(0, 16)} ≠ X-Bench-Sum ${String(want).slice(0, 16)}` };
  } catch (err) {
    return { ok: false, id: sample.id, reason: String(err.stderr?.toString() || err.message).split('\n')[0] };
  }
}

import { spawn } from 'node:child_process';
function runInput(cmd, args, input, withStderr = false) {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    let err = '';
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', rej);
    p.on('exit', (code) => {
      if (code !== 0) return rej(Object.assign(new Error(`${cmd} exit ${code}: ${err}`), { stderr: err }));
      const stdout = Buffer.concat(out);
      res(withStderr ? { stdout, stderr: err } : stdout);
    });
    p.stdin.on('error', () => {});
    p.stdin.end(input);
  });
}

/** The pair's PDF password, asked of the CLI once per bench run (audited like any `show`). */
const passwords = new Map();
async function pdfPassword(keys, to) {
  const k = `${keys.from}\0${to}`;
  if (!passwords.has(k)) passwords.set(k, (await cli(keys.config, ['pdf', 'password', 'show', '--from', keys.from, '--to', to])).trim().split(/\s+/).pop());
  return passwords.get(k);
}

async function verifyPdf(sample, raw, keys) {
  const text = raw.toString('latin1');
  const b64 = /Content-Type: application\/pdf;[^]*?\r\n\r\n([A-Za-z0-9+/=\r\n]+)/.exec(text)?.[1];
  if (!b64) return { ok: false, id: sample.id, reason: 'no application/pdf part in the delivered message' };
  const dir = await mkdtemp(join(tmpdir(), 'bench-pdf-'));
  try {
    const file = join(dir, 'm.pdf');
    await writeFile(file, Buffer.from(b64.replace(/\s+/g, ''), 'base64'));
    const password = await pdfPassword(keys, sample.rcpt);
    await run('qpdf', [`--password=${password}`, '--decrypt', file, join(dir, 'clear.pdf')], opts);
    await run('qpdf', ['--check', join(dir, 'clear.pdf')], opts);
    const words = (await run('pdftotext', ['-upw', password, file, '-'], opts)).stdout.toString('utf8').replace(/\s+/g, ' ');
    const id = /^X-Bench-Id:[ \t]*(\S+)/im.exec(text)?.[1];
    return words.includes(`bench message ${id} `) ? { ok: true, id: sample.id } : { ok: false, id: sample.id, reason: `pdftotext does not find "bench message ${id}"` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
