/**
 * Keys for the bench, made by independent tools and imported with the `postern` CLI as an admin
 * would: openssl CAs and mailbox certificates (RSA-2048, EC P-256), a gpg key for the OpenPGP
 * recipient, `postern pgp generate` for the OpenPGP sender. The private keys of the recipients stay
 * in the bench's folder so openssl and gpg can decrypt the sample that arrives at the sink.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cli } from './gateway.js';

export const run = promisify(execFile);

async function ca(dir, name) {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', `/O=${name}/CN=${name} Root`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash']);
  return { cert, key };
}

let serial = 5000;
async function mailbox(dir, issuer, email, kind = 'rsa') {
  const base = join(dir, email.replace(/[^a-z0-9]/gi, '_'));
  const key = `${base}.key`;
  const cert = `${base}.pem`;
  const s = serial++;
  await run('openssl', kind === 'rsa' ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key] : ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  await run('openssl', ['req', '-new', '-key', key, '-subj', `/CN=${email}/emailAddress=${email}`, '-out', `${base}.csr`]);
  const ku = kind === 'rsa' ? 'digitalSignature,nonRepudiation,keyEncipherment' : 'digitalSignature,nonRepudiation,keyAgreement';
  await writeFile(`${base}.ext`, `basicConstraints=CA:FALSE\nkeyUsage=critical,${ku}\nextendedKeyUsage=emailProtection\nsubjectAltName=email:${email}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`);
  await run('openssl', ['x509', '-req', '-in', `${base}.csr`, '-CA', issuer.cert, '-CAkey', issuer.key, '-set_serial', String(s), '-days', '30', '-sha256', '-extfile', `${base}.ext`, '-out', cert]);
  return { cert, key, email };
}

export const ADDR = {
  plainFrom: 'plain@example.com',
  plainTo: 'plain@partner.example',
  rsaFrom: 'sender-rsa@example.com',
  rsaTo: 'rcpt-rsa@partner.example',
  ecFrom: 'sender-ec@example.com',
  ecTo: 'rcpt-ec@partner.example',
  many: Array.from({ length: 10 }, (_, i) => `r${i}@partner.example`),
  inFrom: 'bob@partner.example',
  inTo: 'alice@example.com',
  pgpFrom: 'pgp-sender@example.com',
  // PDF mail (issue 16): the bench policy sends PDFs to pdf.example; the sender has no keys.
  pdfFrom: 'pdf-sender@example.com',
  pdfTo: 'reader@pdf.example',
  pgpTo: 'pgp-rcpt@partner.example',
};

/** Make every key and import it into the gateway of `config`. Returns the paths the verifier needs. */
export async function setupKeys(dir, config) {
  const k = join(dir, 'keys');
  await mkdir(k, { recursive: true });
  const [ourCa, partnerCa] = await Promise.all([ca(k, 'Example-Corp'), ca(k, 'Partner')]);
  const boxes = {};
  const jobs = [
    [ADDR.rsaFrom, ourCa, 'rsa'],
    [ADDR.ecFrom, ourCa, 'ec'],
    [ADDR.inTo, ourCa, 'rsa'],
    [ADDR.rsaTo, partnerCa, 'rsa'],
    [ADDR.ecTo, partnerCa, 'ec'],
    [ADDR.inFrom, partnerCa, 'rsa'],
    ...ADDR.many.map((a) => [a, partnerCa, 'rsa']),
  ];
  // openssl key generation in parallel (2048-bit RSA takes ~0.1 s each), gpg's meanwhile; each
  // `postern` command is a Node start-up, so as few as possible: one cert import for everything
  // (a PEM with certificate and key imports both; --trust marks only the CAs as anchors).
  const gpg = pgpKeygen(k);
  await Promise.all(jobs.map(async ([addr, issuer, kind]) => (boxes[addr] = await mailbox(k, issuer, addr, kind))));
  const withKeys = [];
  for (const a of [ADDR.rsaFrom, ADDR.ecFrom, ADDR.inTo]) {
    const both = join(k, `${a}.both.pem`);
    await writeFile(both, (await readFile(boxes[a].cert, 'utf8')) + (await readFile(boxes[a].key, 'utf8')));
    withKeys.push(both);
  }
  const certImport = ['cert', 'import', ourCa.cert, partnerCa.cert, ...withKeys, ...[ADDR.rsaTo, ADDR.ecTo, ADDR.inFrom, ...ADDR.many].map((a) => boxes[a].cert), '--trust'];
  await cli(config, certImport);
  // certImport: the same import into another gateway (the keystore in PostgreSQL).
  return { ourCa, partnerCa, boxes, certImport, pgp: await setupPgp(k, config, await gpg) };
}

async function pgpKeygen(k) {
  const home = join(k, 'gnupg');
  await mkdir(home, { recursive: true, mode: 0o700 });
  try {
    await run('gpg', ['--homedir', home, '--batch', '--passphrase', '', '--quick-gen-key', `PGP Rcpt <${ADDR.pgpTo}>`, 'future-default', 'default', 'never']);
    const { stdout } = await run('gpg', ['--homedir', home, '--batch', '--armor', '--export', ADDR.pgpTo]);
    const pub = join(k, 'pgp-rcpt.asc');
    await writeFile(pub, stdout);
    return { home, pub };
  } catch (err) {
    return { home, error: err };
  }
}

/** OpenPGP: the recipient's key made by gpg (public part imported), the sender's by postern. */
async function setupPgp(k, config, gpg) {
  const { home } = gpg;
  try {
    if (gpg.error) throw gpg.error;
    const [, generated] = await Promise.all([cli(config, ['pgp', 'import', gpg.pub]), cli(config, ['pgp', 'generate', ADDR.pgpFrom, '--name', 'PGP Sender'])]);
    const fp = /^generated: ([0-9A-F]{40,64})\b/im.exec(generated)?.[1];
    if (!fp) throw new Error(`no fingerprint in: ${generated}`);
    const senderPub = join(k, 'pgp-sender.asc');
    await writeFile(senderPub, await cli(config, ['pgp', 'export', fp]));
    await run('gpg', ['--homedir', home, '--batch', '--import', senderPub]);
    return { home, ok: true };
  } catch (err) {
    return { home, ok: false, reason: String(err.message ?? err).split('\n')[0] };
  }
}

/**
 * The inbound test message: signed by the partner (openssl cms -sign, as a partner's client would)
 * and encrypted to alice with AES-256-CBC and RSA PKCS#1 v1.5 (openssl's and Outlook's default).
 * The file is the MIME entity (header fields of the CMS part and its base64), CRLF throughout;
 * the load generator puts the outer header fields above it. Returns {path, sum}.
 */
export async function inboundEntity(dir, keys, size, { filler }) {
  const { createHash } = await import('node:crypto');
  const inner = join(dir, `inbound-${size}.txt`);
  const body = Buffer.concat([Buffer.from('bench inbound message\r\n'), filler(Math.max(0, size - 400))]);
  await writeFile(inner, Buffer.concat([Buffer.from('Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'), body]));
  const signed = join(dir, `inbound-${size}.signed`);
  const enc = join(dir, `inbound-${size}.enc`);
  const from = keys.boxes[ADDR.inFrom];
  await run('openssl', ['cms', '-sign', '-in', inner, '-signer', from.cert, '-inkey', from.key, '-binary', '-out', signed]);
  await run('openssl', ['cms', '-encrypt', '-in', signed, '-aes256', '-binary', '-out', enc, keys.boxes[ADDR.inTo].cert]);
  const text = (await readFile(enc, 'latin1')).replace(/\r?\n/g, '\r\n');
  const path = join(dir, `inbound-${size}.eml`);
  await writeFile(path, text.endsWith('\r\n') ? text : text + '\r\n', 'latin1');
  return { path, sum: createHash('sha256').update(body).digest('hex') };
}
