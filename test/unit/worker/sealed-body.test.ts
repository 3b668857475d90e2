/**
 * Which outbound bodies are ciphertext already (worker/transform.ts sealedBody: the structure from
 * mime/ciphertext.ts, then the bytes checked by CMS parsing or by the OpenPGP packet sequence),
 * with the ciphertext made by openssl cms, gpgsm, gpg and openpgp.js — and what only looks so: a
 * signed-data labelled enveloped-data, a signed-only or clear-signed message in the PGP/MIME data
 * slot, damaged CMS, and armour in a text body (inline PGP is not taken as whole-body ciphertext).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealedBody } from '../../../src/worker/transform.js';
import { tempDir } from '../../helpers/config.js';
import { gpgHome, type GpgHome } from '../../helpers/gpg-home.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../../helpers/pki-openssl.js';
import { startGpgsm, type Gpgsm } from '../../helpers/smime-sig-peers.js';

const CONTENT = 'Content-Type: text/plain\r\n\r\nthe secret\r\n';
const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
const b64 = (d: Buffer) => d.toString('base64').replace(/.{76}/g, '$&\r\n');
const mail = (entity: string) => Buffer.from(`From: alice@example.com\r\nTo: bob@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n${entity}`, 'latin1');
const pkcs7 = (der: Buffer, smimeType = 'enveloped-data') => `Content-Type: application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(der)}\r\n`;
const pgpMime = (data: string) => `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="pe"\r\n\r\n--pe\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--pe\r\nContent-Type: application/octet-stream\r\n\r\n${crlf(data)}\r\n--pe--\r\n`;

describe('sealedBody: already encrypted by the sender?', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let ca: Issued, bob: Issued;
  let gpg: GpgHome;
  let gpgsm: Gpgsm;
  const cms = async (args: string[]) => {
    await writeFile(join(dir, 'in'), CONTENT);
    await run('openssl', ['cms', ...args, '-in', join(dir, 'in'), '-out', join(dir, 'out'), '-outform', 'DER']);
    return readFile(join(dir, 'out'));
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-sealed-'));
    ca = await opensslCa(dir, 'Peers');
    bob = await opensslMailbox(dir, ca, 'bob@example.org');
    gpg = gpgHome();
    gpg.generate('Bob <bob@example.org>', 'ed25519');
    gpgsm = await startGpgsm(join(dir, 'gpgsm'), await readFile(ca.cert, 'utf8'), [await readFile(bob.cert, 'utf8')]);
  }, 60_000);
  afterAll(async () => {
    gpg?.close();
    await gpgsm?.stop();
    await cleanup?.();
  });

  it('S/MIME made by openssl cms (AES-CBC enveloped-data, AES-GCM authEnveloped-data) and gpgsm', async () => {
    expect(await sealedBody(mail(pkcs7(await cms(['-encrypt', '-aes256', '-recip', bob.cert]))))).toBe('smime');
    expect(await sealedBody(mail(pkcs7(await cms(['-encrypt', '-aes-256-gcm', '-recip', bob.cert]), 'authEnveloped-data')))).toBe('smime');
    await writeFile(join(dir, 'plain'), CONTENT);
    const r = await gpgsm.run(['--encrypt', '-r', 'bob@example.org', '-o', join(dir, 'gpgsm.p7m'), join(dir, 'plain')]);
    expect(r.code, r.stderr).toBe(0);
    expect(await sealedBody(mail(pkcs7(await readFile(join(dir, 'gpgsm.p7m')))))).toBe('smime');
  });

  it('PGP/MIME made by gpg and openpgp.js, Exchange\'s rewrite of it, and PGP/MIME inside a detached signature', async () => {
    const armour = gpg.run(['--armor', '--encrypt', '-r', 'bob@example.org'], CONTENT).stdout.toString();
    expect(await sealedBody(mail(pgpMime(armour)))).toBe('pgp');
    const key = await openpgp.readKey({ armoredKey: gpg.exportPublic('bob@example.org').toString() });
    const js = (await openpgp.encrypt({ message: await openpgp.createMessage({ text: CONTENT }), encryptionKeys: key })) as string;
    expect(await sealedBody(mail(pgpMime(js)))).toBe('pgp');
    const exchange = `Content-Type: multipart/mixed; boundary="ex"\r\n\r\n--ex\r\nContent-Type: text/plain\r\n\r\n\r\n--ex\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--ex\r\nContent-Type: application/octet-stream; name=encrypted.asc\r\n\r\n${crlf(armour)}\r\n--ex--\r\n`;
    expect(await sealedBody(mail(exchange))).toBe('pgp');
    const inner = pgpMime(armour);
    const sig = gpg.run(['--detach-sign', '--armor', '-u', 'bob@example.org'], inner).stdout.toString();
    const signed = `Content-Type: multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha256; boundary="sg"\r\n\r\n--sg\r\n${inner}\r\n--sg\r\nContent-Type: application/pgp-signature\r\n\r\n${crlf(sig)}\r\n--sg--\r\n`;
    expect(await sealedBody(mail(signed))).toBe('pgp');
  });

  it('what only looks encrypted is not: a label on signed-data, damaged CMS, signed-only or clear-signed data in the PGP/MIME slot, armour in a text body', async () => {
    expect(await sealedBody(mail(pkcs7(await cms(['-sign', '-nodetach', '-signer', bob.cert, '-inkey', bob.key]))))).toBeNull();
    const enveloped = await cms(['-encrypt', '-aes256', '-recip', bob.cert]);
    expect(await sealedBody(mail(pkcs7(enveloped.subarray(0, 60))))).toBeNull();
    expect(await sealedBody(mail(pgpMime(gpg.run(['--armor', '--sign', '-u', 'bob@example.org'], CONTENT).stdout.toString())))).toBeNull();
    expect(await sealedBody(mail(pgpMime(gpg.run(['--clearsign', '-u', 'bob@example.org'], CONTENT).stdout.toString())))).toBeNull();
    const armour = gpg.run(['--armor', '--encrypt', '-r', 'bob@example.org'], CONTENT).stdout.toString();
    expect(await sealedBody(mail(`Content-Type: text/plain\r\n\r\n${crlf(armour)}`))).toBeNull();
    expect(await sealedBody(mail(`Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nhi\r\n--m\r\n${pgpMime(armour)}\r\n--m--\r\n`))).toBeNull();
  });
});
