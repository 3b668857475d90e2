/**
 * A test PKI made by openssl, the independent peer for revocation: a root CA run with `openssl ca`
 * (index.txt database), an OCSP responder certificate (OCSPSigning and id-pkix-ocsp-nocheck,
 * issued by the CA), end entities that are good, revoked (keyCompromise) and unknown to the CA's
 * database (issued with `openssl x509 -req`, so not in index.txt), and a rogue responder
 * certificate from nowhere. More certificates with the caller's extension sections (`extraConfig`,
 * `issue`), and delta CRLs made by `openssl ca` too (`gendelta`: the deltaCRLIndicator is written as
 * an arbitrary extension, since openssl has no name for it). Plus: a real `openssl ocsp`
 * responder on loopback, and a node:http server for CRLs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { freePort } from './gateway.js';
import { run } from './pki-openssl.js';
import { parseCertificate, type CertInfo } from '../../src/pki/index.js';

export interface TestPki {
  dir: string;
  caPem: string;
  ca: CertInfo;
  good: CertInfo;
  revoked: CertInfo;
  unknown: CertInfo;
  ocspUrl: string;
  crlUrl: string;
  /** `openssl ca` with the test config. */
  ca_(...args: string[]): Promise<string>;
  /** A fresh CRL (DER) from `openssl ca -gencrl`, with extra options (e.g. -crl_nextupdate, -crlexts SECTION). */
  gencrl(...args: string[]): Promise<Buffer>;
  /** Issue `name` (key, CSR, certificate in the PKI dir) with an extension section; `subj` defaults to /CN=name. */
  issue(name: string, ext: string, opts?: { subj?: string }): Promise<CertInfo>;
  /** The CA database (index.txt) as it is now: a delta CRL lists what changed since such a snapshot. */
  snapshot(): Promise<string>;
  /**
   * A delta CRL (DER) from `openssl ca -gencrl` over the entries that changed since `base` (a
   * snapshot taken when the complete CRL numbered `baseNumber` was made), with deltaCRLIndicator.
   */
  gendelta(base: string, baseNumber: bigint, ...args: string[]): Promise<Buffer>;
  /** The CRL number of a DER CRL, as `openssl crl` reads it. */
  crlNumber(der: Buffer): Promise<bigint>;
}

const certOf = async (pem: string) => {
  const text = await readFile(pem, 'latin1');
  const b64 = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(text)![1]!.replace(/\s+/g, '');
  return parseCertificate(Buffer.from(b64, 'base64'));
};

/** `ocspPort` and `crlPort` go into the certificates' AIA and CRL distribution point. */
export async function makeTestPki(dir: string, ocspPort: number, crlPort: number, opts: { extraConfig?: string } = {}): Promise<TestPki> {
  await mkdir(join(dir, 'newcerts'), { recursive: true });
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '1000\n');
  await writeFile(join(dir, 'crlnumber'), '01\n');
  const ocspUrl = `http://127.0.0.1:${ocspPort}`;
  const crlUrl = `http://127.0.0.1:${crlPort}/ca.crl`;
  const cnf = join(dir, 'ca.cnf');
  await writeFile(cnf, `[ca]
default_ca = CA_default
[CA_default]
dir = ${dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 1
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
emailAddress = optional
[ee_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = emailProtection
authorityInfoAccess = OCSP;URI:${ocspUrl}
crlDistributionPoints = URI:${crlUrl}
authorityKeyIdentifier = keyid
[ocsp_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
noCheck = ignored
[crl_ext]
authorityKeyIdentifier = keyid
${opts.extraConfig ?? ''}
`);
  const ca_ = async (...args: string[]) => (await run('openssl', ['ca', '-config', cnf, '-batch', ...args])).stdout;
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-days', '60', '-subj', '/O=Revocation Test/CN=Revocation Test Root',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash']);
  const issue = async (name: string, ext: string, viaCa = true, subj = `/CN=${name}`) => {
    const key = join(dir, `${name}.key`);
    await run('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-subj', subj, '-out', join(dir, `${name}.csr`)]);
    if (viaCa) await ca_('-in', join(dir, `${name}.csr`), '-out', join(dir, `${name}.pem`), '-extensions', ext, '-notext');
    else await run('openssl', ['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-set_serial', '0x7777', '-days', '30', '-sha256', '-extfile', cnf, '-extensions', ext, '-out', join(dir, `${name}.pem`)]);
    return join(dir, `${name}.pem`);
  };
  await issue('ocsp', 'ocsp_ext');
  const good = await issue('good', 'ee_ext');
  const revoked = await issue('revoked', 'ee_ext');
  const unknown = await issue('unknown', 'ee_ext', false);
  await ca_('-revoke', revoked, '-crl_reason', 'keyCompromise');
  // A responder certificate nobody authorised: self-signed, with the OCSPSigning EKU.
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'rogue.key'), '-out', join(dir, 'rogue.pem'), '-days', '30', '-subj', '/CN=Rogue OCSP',
    '-addext', 'extendedKeyUsage=OCSPSigning', '-addext', 'keyUsage=critical,digitalSignature']);
  const gencrl = async (...args: string[]) => {
    const out = join(dir, `crl-${Math.random().toString(36).slice(2)}.der`);
    await ca_('-gencrl', '-crlexts', 'crl_ext', '-out', `${out}.pem`, ...args);
    await run('openssl', ['crl', '-in', `${out}.pem`, '-outform', 'DER', '-out', out]);
    return readFile(out);
  };
  const snapshot = () => readFile(join(dir, 'index.txt'), 'utf8');
  const gendelta = async (base: string, baseNumber: bigint, ...args: string[]) => {
    const before = new Set(base.split('\n'));
    const tag = Math.random().toString(36).slice(2);
    const db = join(dir, `delta-${tag}.txt`);
    await writeFile(db, (await snapshot()).split('\n').filter((l) => l && !before.has(l)).map((l) => `${l}\n`).join(''));
    const deltaCnf = join(dir, `delta-${tag}.cnf`);
    await writeFile(deltaCnf, `${(await readFile(cnf, 'utf8')).replace(/^database = .*$/m, `database = ${db}`)}
[delta_ext_${tag}]
authorityKeyIdentifier = keyid
2.5.29.27 = critical, ASN1:INTEGER:${baseNumber}
`);
    const out = join(dir, `delta-${tag}.der`);
    await run('openssl', ['ca', '-config', deltaCnf, '-batch', '-gencrl', '-crlexts', `delta_ext_${tag}`, '-out', `${out}.pem`, ...args]);
    await run('openssl', ['crl', '-in', `${out}.pem`, '-outform', 'DER', '-out', out]);
    return readFile(out);
  };
  const crlNumber = async (der: Buffer) => {
    const f = join(dir, `n-${Math.random().toString(36).slice(2)}.der`);
    await writeFile(f, der);
    return BigInt(`0x${/crlNumber=(?:0x)?([0-9A-Fa-f]+)/.exec((await run('openssl', ['crl', '-inform', 'DER', '-in', f, '-noout', '-crlnumber'])).stdout)![1]}`);
  };
  return {
    dir, caPem: join(dir, 'ca.pem'), ca: await certOf(join(dir, 'ca.pem')), good: await certOf(good), revoked: await certOf(revoked), unknown: await certOf(unknown),
    ocspUrl, crlUrl, ca_, gencrl, snapshot, gendelta, crlNumber,
    issue: async (name, ext, o = {}) => certOf(await issue(name, ext, true, o.subj)),
  };
}

/** A real `openssl ocsp` responder; `signer` names the cert/key pair in the PKI dir (ocsp or rogue). */
export async function startOpensslOcsp(pki: TestPki, port: number, opts: { signer?: string; ndays?: number } = {}): Promise<ChildProcess> {
  const signer = opts.signer ?? 'ocsp';
  const child = spawn('openssl', ['ocsp', '-index', join(pki.dir, 'index.txt'), '-CA', pki.caPem, '-rsigner', join(pki.dir, `${signer}.pem`), '-rkey', join(pki.dir, `${signer}.key`),
    '-port', String(port), '-nrequest', '200', '-ndays', String(opts.ndays ?? 1)], { stdio: ['ignore', 'ignore', 'pipe'] });
  // Ready when it says so: a probing TCP connect would wedge it (it serves one connection at a
  // time and blocks on one that sends nothing).
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => (child.kill(), reject(new Error(`openssl ocsp did not start: ${stderr}`))), 10_000);
    child.stderr!.on('data', (d) => {
      stderr += String(d);
      if (stderr.includes('waiting for OCSP client connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`openssl ocsp exited (${code}): ${stderr}`))));
  });
  child.stderr!.resume();
  return child;
}

export async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  await new Promise<void>((res) => {
    child.once('exit', () => res());
    child.kill('SIGTERM');
  });
}

/** A node:http server on 127.0.0.1 answering with `handler`; `hits` counts requests by path. */
export async function httpServer(port: number, handler: (path: string) => { status?: number; body: Buffer } | 'hang'): Promise<{ server: Server; hits: Map<string, number>; close: () => Promise<void> }> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    req.resume();
    const a = handler(path);
    if (a === 'hang') return; // accept, read, never answer
    res.writeHead(a.status ?? 200, { 'content-type': 'application/octet-stream' });
    res.end(a.body);
  });
  await new Promise<void>((res) => server.listen(port, '127.0.0.1', () => res()));
  return {
    server,
    hits,
    close: () => new Promise<void>((res) => {
      server.closeAllConnections();
      server.close(() => res());
    }),
  };
}

export { freePort };
