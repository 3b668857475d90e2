/**
 * Baselines measured in the same run as the gateway, so its figures are ratios on a noisy machine:
 *  (b) the same crypto done the way a shell content filter does it — `openssl cms -sign | openssl
 *      cms -encrypt` (or `-decrypt | -verify` inbound) per message, as many at once as cores;
 *  (c) the crypto ceiling — Node's raw RSA-2048 / ECDSA P-256 signatures per second on every core
 *      (worker_threads, one KeyObject each, sign() of a 32-byte-hash-sized input).
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

function sh(cmd) {
  return new Promise((res, rej) => {
    const p = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`${cmd.slice(0, 80)}…: exit ${code}: ${err.split('\n')[0]}`))));
  });
}

/** Run `cmd(i)` for i < count, `parallel` at a time; messages per second. */
export async function shellFilter(count, cmd, parallel = availableParallelism()) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) await sh(cmd(next++));
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { messages: count, parallel, seconds: +seconds.toFixed(3), perSecond: count / seconds };
}

const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;

/** openssl cms sign then encrypt, output discarded (a filter would hand it to sendmail). */
export const signEncryptCmd = (input, signer, recipientCerts) => () =>
  `openssl cms -sign -in ${q(input)} -signer ${q(signer.cert)} -inkey ${q(signer.key)} | openssl cms -encrypt -aes256 ${recipientCerts.map(q).join(' ')} > /dev/null`;

export const decryptVerifyCmd = (input, recipient, caFile) => () =>
  `openssl cms -decrypt -in ${q(input)} -recip ${q(recipient.cert)} -inkey ${q(recipient.key)} | openssl cms -verify -CAfile ${q(caFile)} > /dev/null 2>&1`;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createPrivateKey, sign, randomBytes } = require('node:crypto');
const key = createPrivateKey(workerData.pem);
const data = randomBytes(64);
let n = 0;
const end = performance.now() + workerData.ms;
while (performance.now() < end) { sign('sha256', data, key); n++; }
parentPort.postMessage(n);
`;

/** Raw signatures per second on all cores. kind: 'rsa-2048' | 'ecdsa-p256'. */
export async function rawSign(kind, ms = 2000, threads = availableParallelism()) {
  const { privateKey } =
    kind === 'rsa-2048' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const t0 = performance.now();
  const counts = await Promise.all(
    Array.from({ length: threads }, () => new Promise((res, rej) => {
      const w = new Worker(WORKER, { eval: true, workerData: { pem, ms } });
      w.once('message', res);
      w.once('error', rej);
    })),
  );
  const seconds = (performance.now() - t0) / 1000;
  const total = counts.reduce((a, b) => a + b, 0);
  return { kind, threads, signatures: total, seconds: +seconds.toFixed(3), perSecond: total / (ms / 1000) };
}
