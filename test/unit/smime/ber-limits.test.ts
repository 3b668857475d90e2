/**
 * The limits of a CMS object from the Internet (smime/ber-limits.ts), each at its boundary, with
 * real CMS beside them: what openssl and Postern write passes, a length of 2^31 in a small blob,
 * deep indefinite-length nesting and too many entries in one SET are refused with the limit named
 * — also through openMessage, which then throws instead of reporting, for the worker to hold it.
 * And the large messages asn1js 4's defaults refused (over 16 MB, over 10,000 BER chunks) decrypt.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LimitExceededError } from '../../../src/core/index.js';
import { checkCmsLimits } from '../../../src/smime/ber-limits.js';
import { decrypt } from '../../../src/smime/decrypt.js';
import { encrypt } from '../../../src/smime/encrypt.js';
import { openMessage } from '../../../src/smime/open.js';
import { prepareDecryptionKey, prepareRecipient } from '../../../src/smime/recipient-keys.js';
import { makeEnvPki, opensslEncrypt, type EnvPki } from '../../helpers/smime-env-pki.js';

let pki: EnvPki;
beforeAll(() => (pki = makeEnvPki()));
afterAll(() => pki?.cleanup());

const ENVELOPED_OID = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
/** `levels` indefinite-length SEQUENCEs one inside the other, closed properly. */
const deep = (levels: number) => Buffer.concat([Buffer.from(Array.from({ length: levels }, () => [0x30, 0x80]).flat()), Buffer.alloc(levels * 2)]);
/** A SET of `n` NULLs inside a SEQUENCE (definite lengths). */
function setOf(n: number): Buffer {
  const set = Buffer.concat([Buffer.from([0x31, 0x83, (n * 2) >> 16, ((n * 2) >> 8) & 0xff, (n * 2) & 0xff]), Buffer.from(Array.from({ length: n }, () => [0x05, 0x00]).flat())]);
  return Buffer.concat([Buffer.from([0x30, 0x83, set.length >> 16, (set.length >> 8) & 0xff, set.length & 0xff]), set]);
}
/** A ContentInfo(EnvelopedData) whose outer SEQUENCE claims `len` bytes (4-byte length). */
const claims = (len: number, pad = 0) => Buffer.concat([Buffer.from([0x30, 0x84, (len >>> 24) & 0xff, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff, ...ENVELOPED_OID]), Buffer.alloc(pad)]);

function refused(der: Buffer): LimitExceededError {
  try {
    checkCmsLimits(der);
  } catch (err) {
    if (err instanceof LimitExceededError) return err;
    throw err;
  }
  throw new Error('not refused');
}

const mail = (der: Buffer) =>
  Buffer.from(`From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n${der.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`);

describe('CMS limits', () => {
  it('real CMS passes: openssl (BER, indefinite lengths, streamed) and Postern (DER)', async () => {
    const content = Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n');
    expect(() => checkCmsLimits(opensslEncrypt(pki, content, [pki.rsa, pki.p256], ['-stream', '-aes256']))).not.toThrow();
    expect(() => checkCmsLimits(opensslEncrypt(pki, content, [pki.rsa], ['-aes128']))).not.toThrow();
    expect(() => checkCmsLimits(Buffer.from(Array(0)))).not.toThrow();
    const own = await encrypt(content, [prepareRecipient(pki.rsa.certDer)]);
    expect(() => checkCmsLimits(own)).not.toThrow();
  });

  it('a length of 2^31 in a small object is refused before anything is read; a truncated object is left to the parser', () => {
    const e = refused(claims(2 ** 31, 300));
    expect(e.limit).toBe('cms_length');
    expect(e.message).toMatch(/^an ASN\.1 length of 2147483648 bytes in a CMS object of 317 bytes/);
    // The boundary: 4 × the object's size (at least 1 KB) is a truncated object (malformed), one more byte absurd.
    const blob = claims(0, 400); // 417 bytes: the threshold is 1668
    expect(() => checkCmsLimits(claims(1668, 400))).not.toThrow();
    expect(refused(claims(1669, 400)).limit).toBe('cms_length');
    expect(blob.length).toBe(417);
    // A length byte count no number fits in.
    const huge = Buffer.concat([Buffer.from([0x30, 0x89, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.alloc(20)]);
    expect(refused(huge).message).toMatch(/^a 9-byte ASN\.1 length in a CMS object/);
  });

  it('nesting: 40 levels of indefinite length pass, 41 are refused; 100,000 levels cost one pass', () => {
    expect(() => checkCmsLimits(deep(40))).not.toThrow();
    const e = refused(deep(41));
    expect(e.limit).toBe('cms_depth');
    expect(e.message).toBe('a CMS object nested deeper than 40 levels');
    expect(refused(deep(100_000)).limit).toBe('cms_depth');
  });

  it('entries in one SET: 1000 pass, 1001 are refused', () => {
    expect(() => checkCmsLimits(setOf(1000))).not.toThrow();
    const e = refused(setOf(1001));
    expect(e.limit).toBe('cms_count');
    expect(e.message).toMatch(/^more than 1000 entries in one set of a CMS object/);
  });

  it('openMessage throws the limit (for the worker to hold the message) instead of reporting a failure', async () => {
    const opts = { keysFor: async () => [], trust: { anchors: [], intermediates: [] } as never };
    await expect(openMessage(mail(claims(2 ** 31, 300)), opts)).rejects.toThrow(/ASN\.1 length of 2147483648 bytes/);
    await expect(openMessage(mail(deep(10_000)), opts)).rejects.toThrow(/nested deeper than 40 levels/);
    // A truncated blob is still a report, as before.
    const r = await openMessage(mail(claims(500, 300)), opts);
    expect(r.encryption?.status).toBe('failed');
  });

  it('a 20 MB message in 4 KB BER chunks decrypts (asn1js 4 refuses over 16 MB and 10,000 nodes by default)', async () => {
    const content = Buffer.concat([Buffer.from('Content-Type: application/octet-stream\r\n\r\n'), Buffer.alloc(20 << 20, 0x41)]);
    const der = opensslEncrypt(pki, content, [pki.rsa], ['-stream', '-aes256']);
    checkCmsLimits(der);
    const d = await decrypt(der, [prepareDecryptionKey(pki.rsa.certDer, pki.rsa.pkcs8)]);
    expect(d.content.length).toBe(content.length);
  }, 60_000);
});
