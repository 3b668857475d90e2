/**
 * The streaming S/MIME path (sign-stream, encrypt-stream, message-stream) against `openssl cms`,
 * the reference peer, with a multi-MB body: openssl decrypts what Postern streamed and verifies
 * the signature inside, and the content that comes out is the canonical entity byte for byte.
 * Postern's own reader (BER with indefinite lengths) reads it as well.
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64LineChunks, canonicalScan, crlfChunks, splitMessage } from '../../../src/mime/index.js';
import { decrypt } from '../../../src/smime/decrypt.js';
import { encryptChunks } from '../../../src/smime/encrypt-stream.js';
import { smimeMessageChunks } from '../../../src/smime/message-stream.js';
import { prepareDecryptionKey, prepareRecipient } from '../../../src/smime/recipient-keys.js';
import { signingBoundary } from '../../../src/smime/sign-stream.js';
import { prepareSigner, type SmimeSigner } from '../../../src/smime/signer.js';
import { tempDir } from '../../helpers/config.js';
import { makeTestPki, type TestPki } from '../../helpers/smime-sig-pki.js';

let dir: string;
let cleanup: () => Promise<void>;
let pki: TestPki;
let signer: SmimeSigner;

/** ~3 MB of 7-bit text in CRLF lines, with a first line that differs per call. */
function entityText(tag: string, size = 3 * 1024 * 1024): Buffer {
  const line = 'The quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOPQRSTUV\r\n';
  return Buffer.from(`Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${tag}\r\n${line.repeat(Math.ceil(size / line.length))}`, 'latin1');
}

/** The entity as a source of uneven chunks (a CRLF split across two of them now and then). */
async function* chunked(data: Buffer, size = 65_537): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(c);
  return Buffer.concat(out);
}

function openssl(args: string[]): Buffer {
  return execFileSync('openssl', args, { maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
}

const OUTER = Buffer.from('From: alice@example.org\r\nTo: alice@example.org\r\nSubject: streamed\r\n', 'latin1');

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  pki = await makeTestPki(dir);
  signer = prepareSigner(pki.users.rsa.certDer, pki.users.rsa.pkcs8, [pki.inter.certDer]);
}, 60_000);
afterAll(() => cleanup?.());

describe('streamed S/MIME read by openssl cms', () => {
  it('sign (detached) + encrypt (RSA, AES-256-CBC): openssl decrypts, then verifies; the content is the entity', async () => {
    const entity = entityText('detached');
    const boundary = signingBoundary();
    const scan = await canonicalScan(chunked(entity), [boundary]);
    expect(scan).toEqual({ canonical: true, crlf: true, contains: false, bytes: entity.length });
    const msg = await collect(
      smimeMessageChunks(OUTER, crlfChunks(chunked(entity)), {
        signer,
        sign: { form: 'detached', boundary },
        recipients: [prepareRecipient(pki.users.rsa.certDer)],
        encrypt: { cipher: 'aes-256-cbc' },
        editHeader: (h) => Buffer.concat([Buffer.from('X-Edited: yes\r\n'), h]),
      }),
    );
    expect(msg.toString('latin1', 0, 200)).toMatch(/^X-Edited: yes\r\nFrom: alice@example.org\r\n/);
    expect(msg.toString('latin1')).toContain('Content-Type: application/pkcs7-mime; smime-type=enveloped-data');
    // Base64 lines of exactly 76 characters, CRLF, up to the last.
    const body = msg.toString('latin1').split('\r\n\r\n')[1]!.split('\r\n');
    expect(body.slice(0, -2).every((l) => l.length === 76)).toBe(true);
    await writeFile(join(dir, 'm1.eml'), msg);
    openssl(['cms', '-decrypt', '-in', join(dir, 'm1.eml'), '-recip', join(pki.dir, 'rsa.pem'), '-inkey', join(pki.dir, 'rsa.key'), '-out', join(dir, 'm1.signed')]);
    const signedEntity = await readFile(join(dir, 'm1.signed'));
    expect(signedEntity.toString('latin1', 0, 100)).toMatch(/^Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"; micalg=sha-256;/);
    // (No -binary: for multipart/signed that flag makes openssl hash the part differently.)
    openssl(['cms', '-verify', '-in', join(dir, 'm1.signed'), '-CAfile', pki.caFile, '-out', join(dir, 'm1.content')]);
    expect((await readFile(join(dir, 'm1.content'))).equals(entity)).toBe(true);
  }, 60_000);

  it('sign (opaque, BER) + encrypt (ECDH P-256, AES-256-GCM AuthEnvelopedData): openssl decrypts and verifies', async () => {
    const entity = entityText('opaque');
    const msg = await collect(
      smimeMessageChunks(OUTER, crlfChunks(chunked(entity, 4099)), {
        signer,
        sign: { form: 'opaque' },
        recipients: [prepareRecipient(pki.users.ec256.certDer)],
        encrypt: { cipher: 'aes-256-gcm' },
      }),
    );
    expect(msg.toString('latin1')).toContain('smime-type=authEnveloped-data');
    await writeFile(join(dir, 'm2.eml'), msg);
    openssl(['cms', '-decrypt', '-in', join(dir, 'm2.eml'), '-recip', join(pki.dir, 'ec256.pem'), '-inkey', join(pki.dir, 'ec256.key'), '-out', join(dir, 'm2.signed')]);
    const inner = await readFile(join(dir, 'm2.signed'));
    expect(inner.toString('latin1', 0, 80)).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=signed-data/);
    openssl(['cms', '-verify', '-in', join(dir, 'm2.signed'), '-CAfile', pki.caFile, '-binary', '-out', join(dir, 'm2.content')]);
    expect((await readFile(join(dir, 'm2.content'))).equals(entity)).toBe(true);
  }, 60_000);

  it('sign only (detached): openssl verifies the multipart/signed message as it is', async () => {
    const entity = entityText('sign only');
    const msg = await collect(smimeMessageChunks(OUTER, crlfChunks(chunked(entity)), { signer }));
    await writeFile(join(dir, 'm3.eml'), msg);
    openssl(['cms', '-verify', '-in', join(dir, 'm3.eml'), '-CAfile', pki.caFile, '-out', join(dir, 'm3.content')]);
    expect((await readFile(join(dir, 'm3.content'))).equals(entity)).toBe(true);
    // The same split as the Buffer path would make of it: outer fields, then the signed entity.
    expect(splitMessage(msg).outer.equals(OUTER)).toBe(true);
  }, 60_000);

  it("Postern's own reader decrypts the indefinite-length BER (CBC and GCM, RSA and ECDH)", async () => {
    const content = entityText('own reader', 1_500_000);
    for (const [who, cipher] of [['rsa', 'aes-128-cbc'], ['ec256', 'aes-128-gcm']] as const) {
      const u = pki.users[who];
      const der = await collect(encryptChunks(chunked(content, 1000), [prepareRecipient(u.certDer)], { cipher }));
      expect(der.subarray(0, 2).equals(Buffer.from([0x30, 0x80]))).toBe(true);
      const back = await decrypt(der, [prepareDecryptionKey(u.certDer, u.pkcs8)]);
      expect(back.content.equals(content)).toBe(true);
    }
  }, 60_000);
});

describe('stream helpers', () => {
  it('crlfChunks makes CRLF of bare LF and lone CR, also across chunk borders', async () => {
    const input = Buffer.from('a\nb\r\nc\rd\r', 'latin1');
    for (const size of [1, 2, 3, 100]) expect((await collect(crlfChunks(chunked(input, size)))).toString('latin1')).toBe('a\r\nb\r\nc\r\nd\r\n');
  });

  it('base64LineChunks writes what withBase64Lines writes, for any chunking', async () => {
    const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 31) & 0xff));
    const want = data.toString('base64').replace(/.{1,76}/g, '$&\r\n');
    for (const size of [1, 56, 57, 58, 1000, 20_000]) expect((await collect(base64LineChunks(chunked(data, size)))).toString('latin1')).toBe(want);
  });

  it('canonicalScan finds 8-bit bytes, long lines and a boundary split across chunks', async () => {
    expect((await canonicalScan(chunked(Buffer.from('ok\r\n')))).canonical).toBe(true);
    expect((await canonicalScan(chunked(Buffer.from('caf\xe9\r\n', 'latin1')))).canonical).toBe(false);
    expect((await canonicalScan(chunked(Buffer.from(`${'x'.repeat(997)}\r\n`), 100))).canonical).toBe(true);
    expect((await canonicalScan(chunked(Buffer.from(`${'x'.repeat(998)}\r\n`), 100))).canonical).toBe(false);
    expect((await canonicalScan(chunked(Buffer.from('aaa--=_b0undary-zzz'), 5), ['=_b0undary'])).contains).toBe(true);
  });

  it('canonicalScan says whether the bytes are CRLF already (bare LF, lone CR, across chunk borders)', async () => {
    const crlf = async (s: string, size = 3) => (await canonicalScan(chunked(Buffer.from(s, 'latin1'), size))).crlf;
    expect(await crlf('a\r\nbb\r\n\r\nccc\r\n')).toBe(true);
    expect(await crlf('a\r\nb\nc\r\n')).toBe(false);
    expect(await crlf('\nabc')).toBe(false);
    expect(await crlf('ab\rc\r\n')).toBe(false);
    expect(await crlf('abc\r')).toBe(false);
    expect(await crlf('ab\r\r\n')).toBe(false);
    for (const size of [1, 2, 4, 100]) expect(await crlf('x\r\ny\r\n', size)).toBe(true);
  });
});
