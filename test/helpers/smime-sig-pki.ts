/**
 * A throw-away PKI made by openssl for the SignedData tests: root CA → intermediate CA → end
 * entities (RSA-2048, RSASSA-PSS, EC P-256, EC P-384) with emailProtection, plus certificates that
 * must be refused (no signing key usage, serverAuth only) and an unrelated root. openssl, not
 * Postern, makes them, so our parser and path validation are checked against an independent issuer.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);

export interface Identity {
  name: string;
  email: string;
  certPem: string;
  keyPem: string;
  certDer: Buffer;
  pkcs8: Buffer;
}

export interface TestPki {
  dir: string;
  root: Identity;
  inter: Identity;
  otherRoot: Identity;
  users: Record<'rsa' | 'pss' | 'ec256' | 'ec384' | 'noSignKu' | 'serverEku' | 'nonRep', Identity>;
  /** root + intermediate PEM, for openssl -CAfile when the message lacks the intermediate. */
  caFile: string;
  rootFile: string;
  interFile: string;
}

const pemToDer = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

async function openssl(dir: string, args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

async function load(dir: string, name: string, email: string): Promise<Identity> {
  const certPem = await readFile(join(dir, `${name}.pem`), 'utf8');
  const keyPem = await readFile(join(dir, `${name}.key`), 'utf8');
  return { name, email, certPem, keyPem, certDer: pemToDer(certPem), pkcs8: createPrivateKey(keyPem).export({ format: 'der', type: 'pkcs8' }) };
}

const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n';
const ee = (email: string, ku: string, eku: string) =>
  `basicConstraints=CA:FALSE\nkeyUsage=critical,${ku}\nextendedKeyUsage=${eku}\nsubjectAltName=email:${email}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`;

async function issue(dir: string, name: string, subject: string, keyArgs: string[], issuer: string, ext: string, serial: number): Promise<void> {
  await openssl(dir, ['genpkey', ...keyArgs, '-out', `${name}.key`]);
  await openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`]);
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-set_serial', String(serial), '-days', '365', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
}

async function selfSigned(dir: string, name: string, subject: string): Promise<void> {
  await openssl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', `${name}.key`]);
  await openssl(dir, ['req', '-x509', '-new', '-key', `${name}.key`, '-subj', subject, '-days', '3650', '-sha256', '-extensions', 'v3', '-config', `${name}.cnf`, '-out', `${name}.pem`]);
}

export async function makeTestPki(dir: string): Promise<TestPki> {
  for (const n of ['root', 'other-root']) {
    await writeFile(join(dir, `${n}.cnf`), `[req]\ndistinguished_name=dn\n[dn]\n[v3]\n${CA_EXT.replace('keyid\n', 'keyid:always\n')}`);
    await selfSigned(dir, n, n === 'root' ? '/O=Postern Test/CN=Postern Test Root' : '/O=Elsewhere/CN=Unrelated Root');
  }
  await issue(dir, 'inter', '/O=Postern Test/CN=Postern Test Mail CA', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'root', CA_EXT, 2);
  const rsa = ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
  const specs: [keyof TestPki['users'], string, string[], string, string][] = [
    ['rsa', 'alice@example.org', rsa, 'digitalSignature,keyEncipherment', 'emailProtection'],
    ['pss', 'paul@example.org', ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048'], 'digitalSignature', 'emailProtection'],
    ['ec256', 'erin@example.org', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'digitalSignature,keyAgreement', 'emailProtection'],
    ['ec384', 'eve@example.org', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], 'digitalSignature', 'emailProtection'],
    ['noSignKu', 'nosign@example.org', rsa, 'keyEncipherment', 'emailProtection'],
    ['serverEku', 'server@example.org', rsa, 'digitalSignature', 'serverAuth'],
    ['nonRep', 'nonrep@example.org', rsa, 'nonRepudiation', 'emailProtection'],
  ];
  let serial = 100;
  for (const [name, email, keyArgs, ku, eku] of specs) {
    await issue(dir, name, `/O=Postern Test/CN=${name}`, keyArgs, 'inter', ee(email, ku, eku), serial++);
  }
  const users = {} as TestPki['users'];
  for (const [name, email] of specs) users[name] = await load(dir, name, email);
  const root = await load(dir, 'root', '');
  const inter = await load(dir, 'inter', '');
  await writeFile(join(dir, 'ca.pem'), root.certPem + inter.certPem);
  return {
    dir,
    root,
    inter,
    otherRoot: await load(dir, 'other-root', ''),
    users,
    caFile: join(dir, 'ca.pem'),
    rootFile: join(dir, 'root.pem'),
    interFile: join(dir, 'inter.pem'),
  };
}

export const derToPem = (der: Buffer, label = 'CERTIFICATE') => `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
export { pemToDer };

/** A 4 KB canonical MIME entity: CRLF line ends, trailing spaces and a line starting "From ". */
export function mimeEntity(size = 4096): Buffer {
  const head = 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nFrom the start, trailing space: \r\n';
  let body = head;
  for (let i = 0; body.length < size - 2; i++) body += `line ${i} of the signed text, with =3D and tabs\t\r\n`;
  return Buffer.from(`${body.slice(0, size - 2)}\r\n`);
}
