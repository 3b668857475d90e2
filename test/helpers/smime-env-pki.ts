/**
 * Test PKI for the CMS encryption tests, made by openssl itself (an independent issuer): a CA and
 * mailbox certificates for RSA-2048 and EC P-256/P-384/P-521, plus certificates that must be
 * refused as recipients. Also small wrappers around `openssl cms` and MIME bodies of the corpora.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EnvIdentity {
  name: string;
  certPath: string;
  keyPath: string;
  certDer: Buffer;
  pkcs8: Buffer;
}

export interface EnvPki {
  dir: string;
  ca: EnvIdentity;
  rsa: EnvIdentity;
  rsa2: EnvIdentity;
  p256: EnvIdentity;
  p384: EnvIdentity;
  p521: EnvIdentity;
  /** Cannot be encrypted to. */
  rsaSignOnly: EnvIdentity;
  ecSignOnly: EnvIdentity;
  ed25519: EnvIdentity;
  cleanup(): void;
}

export function run(cmd: string, args: string[], opts: { input?: Buffer | string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Buffer {
  try {
    return execFileSync(cmd, args, { input: opts.input, env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.toString() || e.message}`);
  }
}

const EXT = `
[enc_rsa]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=emailProtection
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=email:$ENV::ADDR
[enc_ec]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement
extendedKeyUsage=emailProtection
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=email:$ENV::ADDR
[sign_only]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=emailProtection
subjectKeyIdentifier=hash
subjectAltName=email:$ENV::ADDR
`;

export function makeEnvPki(): EnvPki {
  const dir = mkdtempSync(join(tmpdir(), 'postern-env-'));
  writeFileSync(join(dir, 'ext.cnf'), EXT);
  const load = (name: string): EnvIdentity => {
    const certPath = join(dir, `${name}.crt`);
    const keyPath = join(dir, `${name}.key`);
    const certDer = Buffer.from(new X509Certificate(readFileSync(certPath)).raw);
    const pkcs8 = createPrivateKey(readFileSync(keyPath)).export({ format: 'der', type: 'pkcs8' }) as Buffer;
    return { name, certPath, keyPath, certDer, pkcs8 };
  };
  const genkey = (name: string, alg: string[]) => run('openssl', ['genpkey', ...alg, '-out', join(dir, `${name}.key`)]);
  genkey('ca', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  run('openssl', ['req', '-x509', '-new', '-key', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', '30', '-subj', '/O=Postern Test/CN=Envelope Test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  let serial = 0x1000;
  const issue = (name: string, alg: string[], ext: string) => {
    genkey(name, alg);
    const addr = `${name}@example.org`;
    run('openssl', ['req', '-new', '-key', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`), '-subj', `/O=Postern Test/CN=${name}`]);
    run('openssl', ['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-set_serial', String(serial++),
      '-days', '30', '-out', join(dir, `${name}.crt`), '-extfile', join(dir, 'ext.cnf'), '-extensions', ext], { env: { ...process.env, ADDR: addr } });
    return load(name);
  };
  const rsa = ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
  const ec = (c: string) => ['-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${c}`];
  return {
    dir,
    ca: load('ca'),
    rsa: issue('rsa', rsa, 'enc_rsa'),
    rsa2: issue('rsa2', rsa, 'enc_rsa'),
    p256: issue('p256', ec('P-256'), 'enc_ec'),
    p384: issue('p384', ec('P-384'), 'enc_ec'),
    p521: issue('p521', ec('P-521'), 'enc_ec'),
    rsaSignOnly: issue('rsasign', rsa, 'sign_only'),
    ecSignOnly: issue('ecsign', ec('P-256'), 'sign_only'),
    ed25519: issue('ed', ['-algorithm', 'ED25519'], 'sign_only'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** `openssl cms -decrypt` of a DER message with one identity; the plaintext bytes. */
export function opensslDecrypt(pki: EnvPki, der: Buffer, who: EnvIdentity): Buffer {
  const inPath = join(pki.dir, `in-${process.pid}-${Math.random().toString(36).slice(2)}.der`);
  writeFileSync(inPath, der);
  try {
    return run('openssl', ['cms', '-decrypt', '-binary', '-inform', 'DER', '-in', inPath, '-recip', who.certPath, '-inkey', who.keyPath]);
  } finally {
    rmSync(inPath, { force: true });
  }
}

/** `openssl cms -encrypt` of `content` to the identities, DER out; `-keyopt` pairs in args apply to every recipient. */
export function opensslEncrypt(pki: EnvPki, content: Buffer, to: EnvIdentity[], args: string[]): Buffer {
  const keyopts: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) (args[i] === '-keyopt' ? keyopts.push(args[i]!, args[++i]!) : rest.push(args[i]!));
  return run('openssl', ['cms', '-encrypt', '-binary', '-outform', 'DER', ...rest, ...to.flatMap((t) => ['-recip', t.certPath, ...keyopts])], { input: content });
}

/** The base64 body of a one-part application/pkcs7-mime message (corpus .eml / .env files), decoded. */
export function mimeBodyDer(message: Buffer): Buffer {
  const text = message.toString('latin1');
  const m = /\r?\n\r?\n/.exec(text);
  if (!m) throw new Error('no header/body separator');
  return Buffer.from(text.slice(m.index + m[0].length).replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
}

/** A PEM certificate or key file → DER certificate / PKCS#8. */
export const pemCertDer = (path: string): Buffer => Buffer.from(new X509Certificate(readFileSync(path)).raw);
export const pemKeyPkcs8 = (path: string): Buffer => createPrivateKey(readFileSync(path)).export({ format: 'der', type: 'pkcs8' }) as Buffer;
