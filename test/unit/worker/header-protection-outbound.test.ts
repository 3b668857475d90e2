/**
 * Header protection outbound in the forms the gateway tests through SMTP do not reach — S/MIME
 * opaque signed-data, S/MIME encrypted without a signature, OpenPGP signed only — each read by the
 * independent peer (openssl cms with the RFC 9216 keys, gpg) with its protected fields intact, and
 * read back by Postern's own inbound path (a round trip: the protected section in force again).
 */
import { createPrivateKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log/index.js';
import { protectHeaders } from '../../../src/mime/index.js';
import { generatePgpKey, pgpOpenMessage, pgpResultHeaders, pgpSignMessage, preparePgpSigner, preparePgpVerificationKey } from '../../../src/openpgp/index.js';
import { encryptMessage, openMessage, prepareDecryptionKey, prepareRecipient, prepareSigner, prepareTrustStore, resultHeaders, signMessage } from '../../../src/smime/index.js';
import { openProtected } from '../../../src/worker/header-protection.js';
import { tempDir } from '../../helpers/config.js';
import { gpgHome, type GpgHome } from '../../helpers/gpg-home.js';
import { run } from '../../helpers/pki-openssl.js';

const RFC9216 = join(import.meta.dirname, '../../../../shared/corpora/rfc9216-smime-example-keys');
const KEYS = join(RFC9216, 'keys-and-cms-from-davidi67-examples-cms/certs-and-keys');
const CA = join(RFC9216, 'certs-from-wbond-certvalidator/Sample_LAMPS_RSA_Certification_Authority.selfsigned.pem');
const der = async (pemFile: string) => Buffer.from((await readFile(pemFile, 'utf8')).replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
const pkcs8 = async (pemFile: string) => createPrivateKey(await readFile(pemFile, 'utf8')).export({ format: 'der', type: 'pkcs8' });
const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
const fields = (text: string, name: string) => [...text.slice(0, text.indexOf('\r\n\r\n') + 2).matchAll(new RegExp(`^${name}: (.*)\\r$`, 'gmi'))].map((m) => m[1]);
const fieldsOf = (h: [string, string][], name: string) => h.filter(([n]) => n === name).map(([, v]) => v);

const mail = (from: string) =>
  Buffer.from(crlf(`From: ${from}\nTo: Bob Babbage <bob@smime.example>\nSubject: The FooCorp contract\nDate: ${new Date().toUTCString()}\nMessage-ID: <out@smime.example>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\nThe terms, as agreed.\n`), 'latin1');

describe('header protection outbound, read by openssl and gpg, and back by Postern', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gpg: GpgHome;
  const log = silentLogger();

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-hp-out-'));
    gpg = gpgHome();
  });
  afterAll(async () => {
    gpg?.close();
    await cleanup?.();
  });

  it('S/MIME opaque signed-data, hp="clear": openssl verifies and shows the protected fields; Postern reads them as protected', async () => {
    const signer = prepareSigner(await der(join(KEYS, 'lamps-alice.crt')), await pkcs8(join(KEYS, 'lamps-alice.p8.pem')), []);
    const p = protectHeaders(mail('Alice Lovelace <alice@smime.example>'), { encrypted: false, confidentiality: 'obscure', legacyDisplay: true });
    const out = await signMessage(p.message, signer, { form: 'opaque', payload: p.payload });
    expect(fields(out.toString('latin1'), 'Subject')).toEqual(['The FooCorp contract']);
    await writeFile(join(dir, 'opaque.eml'), out);
    await run('openssl', ['cms', '-verify', '-in', join(dir, 'opaque.eml'), '-CAfile', CA, '-out', join(dir, 'opaque.txt')]);
    const payload = crlf(await readFile(join(dir, 'opaque.txt'), 'latin1'));
    expect(payload).toMatch(/^Content-Type: text\/plain; charset=us-ascii;\r\n\thp="clear"; protected-headers="v1"\r$/m);
    expect(fields(payload, 'Subject')).toEqual(['The FooCorp contract']);
    expect(fields(payload, 'From')).toEqual(['Alice Lovelace <alice@smime.example>']);

    const trust = prepareTrustStore([await der(CA)], []);
    const back = await openProtected(out, async (m) => {
      const r = await openMessage(m, { trust, keysFor: async () => [] });
      return { result: r, headers: resultHeaders(r) };
    }, 'smime', log, 'test');
    expect(fieldsOf(back.headers, 'X-Postern-Header-Protection')).toEqual(['protected; method=smime; form=rfc9788; hp=clear; protected-by=signature']);
  });

  it('S/MIME encrypted without a signature, hp="cipher": openssl decrypts the section and the legacy display; Postern restores the Subject', async () => {
    const p = protectHeaders(mail('Alice Lovelace <alice@smime.example>'), { encrypted: true, confidentiality: 'obscure', legacyDisplay: true });
    const out = await encryptMessage(p.message, [prepareRecipient(await der(join(KEYS, 'lamps-bob.encrypt.crt')))], { payload: p.payload });
    expect(fields(out.toString('latin1'), 'Subject')).toEqual(['[...]']);
    await writeFile(join(dir, 'enc.eml'), out);
    await run('openssl', ['cms', '-decrypt', '-in', join(dir, 'enc.eml'), '-inkey', join(KEYS, 'lamps-bob.decrypt.p8.pem'), '-out', join(dir, 'enc.txt')]);
    const payload = crlf(await readFile(join(dir, 'enc.txt'), 'latin1'));
    expect(fields(payload, 'Subject')).toEqual(['The FooCorp contract']);
    expect(fields(payload, 'HP-Outer')).toContain('Subject: [...]');
    expect(payload).toMatch(/hp-legacy-display="1"/);
    expect(payload.slice(payload.indexOf('\r\n\r\n') + 4)).toBe('Subject: The FooCorp contract\r\n\r\nThe terms, as agreed.\r\n');

    const keys = [prepareDecryptionKey(await der(join(KEYS, 'lamps-bob.encrypt.crt')), await pkcs8(join(KEYS, 'lamps-bob.decrypt.p8.pem')))];
    const back = await openProtected(out, async (m) => {
      const r = await openMessage(m, { trust: prepareTrustStore([], []), keysFor: async () => keys });
      return { result: r, headers: resultHeaders(r) };
    }, 'smime', log, 'test');
    expect(fieldsOf(back.headers, 'X-Postern-Header-Protection')).toEqual(['protected; method=smime; form=rfc9788; hp=cipher; protected-by=encryption; integrity=unauthenticated; restored="Subject"']);
    expect(fields(back.result.message.toString('latin1'), 'Subject')).toEqual(['The FooCorp contract']);
  });

  it('OpenPGP signed only, hp="clear": gpg verifies the signed part, which holds the protected fields; Postern reads them as protected', async () => {
    const made = await generatePgpKey({ address: 'pat@example.com', name: 'Pat' });
    gpg.import(made.publicKey);
    const p = protectHeaders(mail('Pat <pat@example.com>'), { encrypted: false, confidentiality: 'obscure', legacyDisplay: true });
    const out = (await pgpSignMessage(p.message, await preparePgpSigner(made.secretKey!), { payload: p.payload })).toString('latin1');
    const boundary = /boundary="([^"]+)"/.exec(out)![1]!;
    const [, signed, sig] = out.split(`--${boundary}`).map((x) => x.replace(/^\r\n/, ''));
    const content = signed!.slice(0, -2); // the CRLF before the delimiter is the delimiter's
    const v = gpg.run(['--status-fd', '2', '--verify', gpg.file('sig.asc', sig!.slice(sig!.indexOf('-----BEGIN'))), gpg.file('content', content)]);
    expect(v.stderr).toMatch(/GOODSIG [0-9A-F]+ Pat <pat@example\.com>/);
    expect(fields(content, 'Subject')).toEqual(['The FooCorp contract']);
    expect(content).toMatch(/hp="clear"; protected-headers="v1"/);

    const key = await preparePgpVerificationKey(made.publicKey, { trusted: true });
    const back = await openProtected(Buffer.from(out, 'latin1'), async (m) => {
      const r = await pgpOpenMessage(m, { keysFor: async () => [], verificationKeysFor: async () => [key] });
      return { result: r, headers: pgpResultHeaders(r) };
    }, 'pgp', log, 'test');
    expect(fieldsOf(back.headers, 'X-Postern-Signature')[0]).toMatch(/^valid; method=pgp; signer=pat@example\.com/);
    expect(fieldsOf(back.headers, 'X-Postern-Header-Protection')).toEqual(['protected; method=pgp; form=rfc9788; hp=clear; protected-by=signature']);
  });
});
