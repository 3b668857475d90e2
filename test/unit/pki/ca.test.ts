/**
 * The internal CA against openssl as the oracle: chains verify for S/MIME signing, the profile is
 * what clients expect, and mail signed or encrypted with issued keys works in openssl smime/cms.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaError, createCa, issueSmimeCertificate, keyMatchesCertificate, parseCertificate, parsePrivateKey, type IssuedMaterial, type KeyType } from '../../../src/pki/index.js';
import { tempDir } from '../../helpers/config.js';

const run = promisify(execFile);
const pem = (der: Buffer) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;

describe('internal CA', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const cas: Record<string, IssuedMaterial> = {};

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-ca-'));
    cas.ec = await createCa({ commonName: 'Example Mail CA', organization: 'Example Ltd' });
    cas.rsa = await createCa({ commonName: 'Example RSA CA', keyType: 'rsa-3072' });
    for (const [k, ca] of Object.entries(cas)) await writeFile(join(dir, `ca-${k}.pem`), pem(ca.certDer));
  });
  afterAll(() => cleanup());

  async function files(name: string, m: IssuedMaterial) {
    const cert = join(dir, `${name}.pem`);
    const key = join(dir, `${name}.key`);
    await writeFile(cert, pem(m.certDer));
    await writeFile(key, createPrivateKey({ key: m.keyPkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600 });
    return { cert, key };
  }

  it('makes a self-signed CA with the constraints of a CA', () => {
    const ca = parseCertificate(cas.ec!.certDer);
    expect(ca).toMatchObject({ isCA: true, pathLength: 0, selfIssued: true, subject: 'CN=Example Mail CA,O=Example Ltd', key: { algorithm: 'ec', curve: 'P-256' } });
    expect(ca.keyUsage).toEqual(expect.arrayContaining(['keyCertSign', 'cRLSign']));
    expect(ca.notAfter.getTime() - ca.notBefore.getTime()).toBeGreaterThan(3649 * 86_400_000);
    expect(parseCertificate(cas.rsa!.certDer).key).toMatchObject({ algorithm: 'rsa', bits: 3072 });
  });

  it.each([
    ['ec', 'rsa-2048'],
    ['ec', 'ec-p256'],
    ['rsa', 'rsa-2048'],
    ['rsa', 'ec-p256'],
  ] as const)('issues from the %s CA a %s certificate that openssl verifies for S/MIME, with the mailbox profile', async (caName, keyType: KeyType) => {
    const issued = await issueSmimeCertificate({ ca: cas[caName]!, address: 'Bob.Smith@Example.COM', name: 'Bob Smith', keyType, crlUrl: 'http://pki.example.com/mail-ca.crl' });
    const cert = parseCertificate(issued.certDer);
    expect(cert).toMatchObject({ isCA: false, emails: ['Bob.Smith@example.com'], subject: 'CN=Bob Smith', extKeyUsage: ['1.3.6.1.5.5.7.3.4'], crlUrls: ['http://pki.example.com/mail-ca.crl'] });
    expect(cert.issuer).toBe(parseCertificate(cas[caName]!.certDer).subject);
    expect(cert.keyUsage).toEqual(keyType.startsWith('ec') ? ['digitalSignature', 'keyAgreement'] : ['digitalSignature', 'keyEncipherment']);
    expect(cert.authorityKeyId).toBe(parseCertificate(cas[caName]!.certDer).subjectKeyId);
    expect(keyMatchesCertificate(await parsePrivateKey(issued.keyPkcs8), cert)).toBe(true);

    const f = await files(`bob-${caName}-${keyType}`, issued);
    const ca = join(dir, `ca-${caName}.pem`);
    const verify = await run('openssl', ['verify', '-purpose', 'smimesign', '-CAfile', ca, f.cert]);
    expect(verify.stdout).toMatch(/: OK/);
    if (!keyType.startsWith('ec')) expect((await run('openssl', ['verify', '-purpose', 'smimeencrypt', '-CAfile', ca, f.cert])).stdout).toMatch(/: OK/);

    // A mail signed with the issued key verifies in openssl smime against the CA…
    const msg = join(dir, 'msg.txt');
    await writeFile(msg, 'Content-Type: text/plain\r\n\r\nSigned by the internal CA.\r\n');
    const signed = join(dir, `signed-${caName}-${keyType}.eml`);
    await run('openssl', ['cms', '-sign', '-signer', f.cert, '-inkey', f.key, '-in', msg, '-out', signed]);
    const v = await run('openssl', ['smime', '-verify', '-CAfile', ca, '-in', signed]);
    expect(v.stdout).toContain('Signed by the internal CA.');
    // …and mail encrypted to the certificate decrypts with its key (keyEncipherment / keyAgreement).
    const enc = join(dir, `enc-${caName}-${keyType}.eml`);
    await run('openssl', ['cms', '-encrypt', '-aes256', '-in', msg, '-out', enc, f.cert]);
    expect((await run('openssl', ['cms', '-decrypt', '-in', enc, '-inkey', f.key, '-recip', f.cert])).stdout).toContain('Signed by the internal CA.');
  });

  it('refuses what is not a plain mailbox, with a message', async () => {
    for (const [address, message] of [
      ['no-at-sign', /not an e-mail address/],
      ['a@b@example.com', /not an e-mail address/],
      ['bob smith@example.com', /not allowed/],
      ['jörg@example.com', /SmtpUTF8Mailbox/],
      ['bob@exa_mple.com', /ASCII \(A-label\) host name/],
    ] as const) {
      await expect(issueSmimeCertificate({ ca: cas.ec!, address })).rejects.toThrow(message);
    }
    await expect(issueSmimeCertificate({ ca: cas.ec!, address: 'x' })).rejects.toBeInstanceOf(CaError);
  });

  it('will not issue from a certificate that is not a CA', async () => {
    const bob = await issueSmimeCertificate({ ca: cas.ec!, address: 'bob@example.com', keyType: 'ec-p256' });
    await expect(issueSmimeCertificate({ ca: bob, address: 'eve@example.com' })).rejects.toThrow(/not a CA certificate/);
  });
});
