/**
 * The scenarios of issue 9 and their message counts (full run and --quick), picked so that the
 * whole `npm run bench` stays within 10 minutes on a 2-core machine.
 *
 * verify: what the sink checks on every message ('sum': the body hash, pass-through), expect: what
 * each message must look like at the sink, check: how the sample is decrypted/verified (verify.js),
 * filter: the matching shell-filter baseline (b), ceiling: the matching raw-sign baseline (c),
 * latency: also measured at half the scenario's maximum throughput (open loop), backend: 'postgres'
 * for a gateway whose keystore is in PostgreSQL (bench/postgres.js) instead of SQLite.
 */
import { ADDR } from './pki.js';

const KB = 1024;
const MB = 1024 * KB;
const PDF = '^Content-Type: multipart/mixed; boundary="=_postern_pdf_';
const ENCRYPTED = '^Content-Type: application/pkcs7-mime; smime-type=(auth)?enveloped-data';

export const SCENARIOS = [
  { name: 'passthrough', title: 'pass-through 4 KB', from: ADDR.plainFrom, rcpts: [ADDR.plainTo], size: 4 * KB, count: 2000, quick: 300, verify: 'sum', check: 'plain', latency: true },
  { name: 'smime-rsa', title: 'S/MIME sign+encrypt RSA-2048', from: ADDR.rsaFrom, rcpts: [ADDR.rsaTo], size: 4 * KB, count: 1500, quick: 200, expect: [ENCRYPTED], check: 'smime-out', filter: 'rsa', ceiling: 'rsa-2048', latency: true },
  // Issue 19: the same with the keystore in PostgreSQL (bench/postgres.js), right after it so both run on the same machine state; goal ≥ 0.85 × smime-rsa.
  { name: 'smime-rsa-pg', title: 'S/MIME sign+encrypt RSA, PostgreSQL', from: ADDR.rsaFrom, rcpts: [ADDR.rsaTo], size: 4 * KB, count: 1500, quick: 200, expect: [ENCRYPTED], check: 'smime-out', filter: 'rsa', ceiling: 'rsa-2048', latency: true, backend: 'postgres' },
  { name: 'smime-ec', title: 'S/MIME sign+encrypt EC P-256', from: ADDR.ecFrom, rcpts: [ADDR.ecTo], size: 4 * KB, count: 1000, quick: 100, expect: [ENCRYPTED], check: 'smime-out', filter: 'ec', ceiling: 'ecdsa-p256' },
  { name: 'smime-in', title: 'S/MIME decrypt+verify inbound', from: ADDR.inFrom, rcpts: [ADDR.inTo], size: 4 * KB, count: 1000, quick: 100, inbound: true, expect: ['^X-Postern-Signature: valid', '^X-Postern-Encryption: decrypted'], check: 'smime-in', filter: 'in', ceiling: 'rsa-2048' },
  { name: 'smime-100k', title: 'S/MIME sign+encrypt 100 KB', from: ADDR.rsaFrom, rcpts: [ADDR.rsaTo], size: 100 * KB, count: 300, quick: 30, expect: [ENCRYPTED], check: 'smime-out', filter: 'rsa-100k', ceiling: 'rsa-2048' },
  { name: 'smime-10m', title: 'S/MIME sign+encrypt 10 MB', from: ADDR.rsaFrom, rcpts: [ADDR.rsaTo], size: 10 * MB, count: 30, quick: 4, concurrency: 2, expect: [ENCRYPTED], check: 'smime-out', filter: 'rsa-10m', ceiling: 'rsa-2048' },
  { name: 'smime-10rcpt', title: 'S/MIME 10 recipients, own certs', from: ADDR.rsaFrom, rcpts: ADDR.many, size: 4 * KB, count: 300, quick: 30, expect: [ENCRYPTED], check: 'smime-out', filter: 'rsa-10rcpt', ceiling: 'rsa-2048' },
  { name: 'pgp', title: 'OpenPGP sign+encrypt', from: ADDR.pgpFrom, rcpts: [ADDR.pgpTo], size: 4 * KB, count: 500, quick: 50, expect: ['^Content-Type: multipart/encrypted'], check: 'pgp-out', pgp: true },
  // PDF mail beside the S/MIME figures: the goal is the 4 KB PDF rate at least half smime-rsa's.
  { name: 'pdf', title: 'PDF mail 4 KB', from: ADDR.pdfFrom, rcpts: [ADDR.pdfTo], size: 4 * KB, count: 1000, quick: 100, expect: [PDF], check: 'pdf-out', latency: true },
  { name: 'pdf-1m', title: 'PDF mail 1 MB with an attachment', from: ADDR.pdfFrom, rcpts: [ADDR.pdfTo], size: 1 * MB, count: 100, quick: 10, mixed: true, expect: [PDF], check: 'pdf-out' },
  { name: 'memory-50m', title: 'S/MIME sign+encrypt one 50 MB', from: ADDR.rsaFrom, rcpts: [ADDR.rsaTo], size: 50 * MB, count: 1, quick: 1, concurrency: 1, warm: 0, expect: [ENCRYPTED], check: 'smime-out', memory: true },
  { name: 'memory-50m-mixed', title: 'S/MIME sign+encrypt one 50 MB multipart/mixed', from: ADDR.rsaFrom, rcpts: [ADDR.rsaTo], size: 50 * MB, count: 1, quick: 1, concurrency: 1, warm: 0, expect: [ENCRYPTED], check: 'smime-out', memory: true, mixed: true },
  { name: 'pgp-50m', title: 'OpenPGP sign+encrypt one 50 MB', from: ADDR.pgpFrom, rcpts: [ADDR.pgpTo], size: 50 * MB, count: 1, quick: 1, concurrency: 1, warm: 0, expect: ['^Content-Type: multipart/encrypted'], check: 'pgp-out', pgp: true, memory: true },
];

/** Shell-filter baselines (b): input size, signer, recipients, count. */
export const FILTERS = {
  rsa: { size: 4 * KB, from: ADDR.rsaFrom, rcpts: [ADDR.rsaTo], count: 300, quick: 20 },
  ec: { size: 4 * KB, from: ADDR.ecFrom, rcpts: [ADDR.ecTo], count: 300, quick: 20 },
  in: { size: 4 * KB, inbound: true, count: 300, quick: 20 },
  'rsa-100k': { size: 100 * KB, from: ADDR.rsaFrom, rcpts: [ADDR.rsaTo], count: 100, quick: 20 },
  'rsa-10m': { size: 10 * MB, from: ADDR.rsaFrom, rcpts: [ADDR.rsaTo], count: 6, quick: 1 },
  'rsa-10rcpt': { size: 4 * KB, from: ADDR.rsaFrom, rcpts: ADDR.many, count: 100, quick: 20 },
};
