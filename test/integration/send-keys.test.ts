/**
 * send_keys end to end short of SMTP: a real keystore (file KEK, SQLite) with an internal CA, the
 * sender's certificate issued from it and an OpenPGP key generated for them; the attachments go
 * into a message with addAttachments, Python's email package takes them out again, and gpg,
 * gpgsm and openssl — not our code — say what they contain.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/types.js';
import { initCa, issueFromCa, openKeyStore, type KeyStore, type StoredCertificate } from '../../src/keystore/index.js';
import { addAttachments } from '../../src/mime/compose.js';
import { generatePgpKey, type ParsedPgpKey } from '../../src/openpgp/index.js';
import { createCa, issueSmimeCertificate, parseCertificate, parseImport } from '../../src/pki/index.js';
import { sendKeysAttachments } from '../../src/worker/send-keys.js';
import { tempDir, testConfig } from '../helpers/config.js';
import { parseMail } from '../helpers/mail-parse.js';

const exec = promisify(execFile);
const SENDER = 'alice@example.com';
const mail = Buffer.from(`From: Alice <${SENDER}>\r\nTo: bob@example.net\r\nSubject: my keys\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHere they are.\r\n`);

describe('send_keys attachments from a real keystore', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: Config;
  let store: KeyStore;
  let ca: StoredCertificate;
  let cert: StoredCertificate;
  let pgp: ParsedPgpKey;
  const homes: string[] = [];

  async function home(name: string): Promise<string> {
    const h = join(dir, name);
    await mkdir(h, { mode: 0o700 });
    homes.push(h);
    return h;
  }

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-send-keys-'));
    config = testConfig(dir);
    store = await openKeyStore(config);
    ca = await initCa(store, { commonName: 'Example Mail CA', organization: 'Example Ltd', actor: 'test' });
    cert = await issueFromCa(store, config, { address: SENDER, name: 'Alice Example', actor: 'test' });
    pgp = await generatePgpKey({ address: SENDER, name: 'Alice Example' });
    await store.importPgpKey(pgp, { source: 'generated', actor: 'test' });
    // A second CA of the same name (another installation's, say): never mistaken for the issuer.
    const decoy = await createCa({ commonName: 'Example Mail CA', organization: 'Example Ltd' });
    await store.importCertificate(parseCertificate(decoy.certDer), { source: 'import', trusted: true, actor: 'test' });
    // Bob's certificate: public only, so it must never be sent as one of Alice's.
    const bobCa = await createCa({ commonName: 'Other CA' });
    const bob = await issueSmimeCertificate({ ca: bobCa, address: 'bob@example.net', keyType: 'ec-p256' });
    await store.importCertificate(parseCertificate(bob.certDer), { source: 'import', actor: 'test' });
  }, 60_000);

  afterAll(async () => {
    for (const h of homes) await exec('gpgconf', ['--homedir', h, '--kill', 'all']).catch(() => undefined);
    await store?.close();
    await cleanup();
  });

  it('a .p7c with the certificate and its CA, and a .asc with the key, that gpgsm, openssl and gpg import from the mail', async () => {
    const { attachments, missing } = await sendKeysAttachments(store, SENDER, { smime: true, pgp: true });
    expect(missing).toEqual([]);
    expect(attachments.map((a) => [a.filename, a.contentType])).toEqual([
      [`${SENDER}.p7c`, 'application/pkcs7-mime; smime-type=certs-only'],
      [`${SENDER}.asc`, 'application/pgp-keys'],
    ]);
    const parsed = await parseMail(addAttachments(mail, attachments));
    expect(parsed.parts.map((p) => [p.contentType, p.filename])).toEqual([
      ['text/plain', null],
      ['application/pkcs7-mime', `${SENDER}.p7c`],
      ['application/pgp-keys', `${SENDER}.asc`],
    ]);
    expect(parsed.parts[1]!.params['smime-type']).toBe('certs-only');
    const p7c = join(dir, 'out.p7c');
    const asc = join(dir, 'out.asc');
    await writeFile(p7c, parsed.parts[1]!.payload!);
    await writeFile(asc, parsed.parts[2]!.payload!);

    // Exactly the user certificate and the real CA (not the decoy of the same name, not Bob's).
    expect((await parseImport(parsed.parts[1]!.payload!)).certificates.map((c) => c.fingerprint)).toEqual([cert.fingerprint, ca.fingerprint]);
    const printed = (await exec('openssl', ['pkcs7', '-inform', 'DER', '-in', p7c, '-print_certs', '-noout'])).stdout;
    expect(printed.match(/^subject=/gm)).toHaveLength(2);
    expect(printed).toMatch(/subject=CN ?= ?Alice Example/);
    expect(printed).toMatch(/subject=O ?= ?Example Ltd, CN ?= ?Example Mail CA/);

    const sm = await home('gpgsm');
    await exec('gpgsm', ['--homedir', sm, '--batch', '--import', p7c]);
    const listed = (await exec('gpgsm', ['--homedir', sm, '--batch', '--with-colons', '--list-keys'])).stdout;
    const fprs = listed.split('\n').filter((l) => l.startsWith('fpr:')).map((l) => l.split(':')[9]!.toLowerCase());
    const sha1 = (der: Buffer) => new X509Certificate(der).fingerprint.replace(/:/g, '').toLowerCase();
    expect(fprs.sort()).toEqual([sha1(cert.der), sha1(ca.der)].sort());
    expect(listed).toContain(SENDER);

    const gh = await home('gnupg');
    await exec('gpg', ['--homedir', gh, '--batch', '--import', asc]);
    const keys = (await exec('gpg', ['--homedir', gh, '--batch', '--with-colons', '--list-keys'])).stdout;
    expect(keys.split('\n').filter((l) => l.startsWith('pub:'))).toHaveLength(1);
    expect(keys.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]).toBe(pgp.info.fingerprint);
    expect(keys).toContain(`<${SENDER}>`);
    expect(parsed.parts[2]!.payload!.toString()).not.toMatch(/PRIVATE/);
  }, 60_000);

  it('sends only what was asked for, and says what it could not find', async () => {
    const smimeOnly = await sendKeysAttachments(store, SENDER.toUpperCase(), { smime: true, pgp: false });
    expect(smimeOnly.attachments.map((a) => a.contentType)).toEqual(['application/pkcs7-mime; smime-type=certs-only']);
    const none = await sendKeysAttachments(store, 'carol@example.com', { smime: true, pgp: true });
    expect(none).toEqual({ attachments: [], missing: ['no S/MIME certificate for carol@example.com', 'no OpenPGP key for carol@example.com'] });
    // Bob's certificate is stored, but its private key is not: nothing to send for him.
    const bob = await sendKeysAttachments(store, 'bob@example.net', { smime: true, pgp: false });
    expect(bob.attachments).toEqual([]);
    expect(bob.missing[0]).toMatch(/^no usable S\/MIME certificate for bob@example\.net \(1 stored/);
  });

  it('leaves out a certificate that has expired by now, while the key without expiry still goes', async () => {
    const later = new Date(Date.now() + 3 * 365 * 86_400_000); // past the 730 days of issued certificates
    const r = await sendKeysAttachments(store, SENDER, { smime: true, pgp: true }, { now: later });
    expect(r.attachments.map((a) => a.filename)).toEqual([`${SENDER}.asc`]);
    expect(r.missing).toEqual([expect.stringMatching(/^no usable S\/MIME certificate for alice@example\.com/)]);
  });
});
