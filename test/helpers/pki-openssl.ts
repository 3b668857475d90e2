/**
 * Certificates made by openssl (an independent issuer) for the tests that run the gateway: a CA
 * and mailbox certificates (RSA-2048 or EC P-256) with emailProtection, as PEM files in a folder.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);

export interface Issued {
  /** Paths of the PEM certificate and PEM private key. */
  cert: string;
  key: string;
  email?: string;
}

export async function opensslCa(dir: string, name: string): Promise<Issued> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', `/O=${name}/CN=${name} Root`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash']);
  return { cert, key };
}

let serial = 1000;

export async function opensslMailbox(dir: string, ca: Issued, email: string, kind: 'rsa' | 'ec' = 'rsa'): Promise<Issued> {
  const base = join(dir, email.replace(/[^a-z0-9]/gi, '_'));
  const key = `${base}.key`;
  const cert = `${base}.pem`;
  await run('openssl', kind === 'rsa' ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key] : ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  await run('openssl', ['req', '-new', '-key', key, '-subj', `/CN=${email}/emailAddress=${email}`, '-out', `${base}.csr`]);
  const ku = kind === 'rsa' ? 'digitalSignature,nonRepudiation,keyEncipherment' : 'digitalSignature,nonRepudiation,keyAgreement';
  await writeFile(`${base}.ext`, `basicConstraints=CA:FALSE\nkeyUsage=critical,${ku}\nextendedKeyUsage=emailProtection\nsubjectAltName=email:${email}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`);
  await run('openssl', ['x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(serial++), '-days', '30', '-sha256', '-extfile', `${base}.ext`, '-out', cert]);
  return { cert, key, email };
}
