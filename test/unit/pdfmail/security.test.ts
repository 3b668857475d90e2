/**
 * saveEncrypted against three independent readers (qpdf, poppler, MuPDF), a byte scan of the raw
 * file (streams inflated without decryption), and a walk over every string and stream of the raw
 * file checking each one is AES-CBC ciphertext under the file key.
 */
import { createDecipheriv } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PDFArray, PDFDict, PDFDocument, PDFHexString, PDFInvalidObject, PDFName, PDFNumber, PDFObject, PDFRef, PDFStream, PDFString } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveEncrypted, type PdfCipher } from '../../../src/pdfmail/security.js';
import { computeR4FileKey, computeR4U, r4ObjectKey } from '../../../src/pdfmail/security-r4.js';
import { fileKeyFromUserPassword } from '../../../src/pdfmail/security-r6.js';
import { tempDir } from '../../helpers/config.js';
import { mutoolText, pdftotext, plaintextsIn, qpdf, run } from '../../helpers/pdf-encrypted.js';
import { buildFixture, SECRETS, type Fixture } from './security-fixture.js';

const PASSWORD = 'Correct-Horse 7 Battery';
const WRONG = 'Correct-Horse 7 Batterz';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir('postern-pdfcrypt-')));
afterAll(() => cleanup());

const bytesOf = (o: PDFString | PDFHexString): Buffer => Buffer.from(o.asBytes());

/** Every string of an object, however deep; stream dictionaries included. */
function stringsOf(o: PDFObject, out: Buffer[] = []): Buffer[] {
  if (o instanceof PDFString || o instanceof PDFHexString) out.push(bytesOf(o));
  else if (o instanceof PDFDict) for (const [, v] of o.entries()) stringsOf(v, out);
  else if (o instanceof PDFArray) for (let i = 0; i < o.size(); i++) stringsOf(o.get(i), out);
  else if (o instanceof PDFStream) stringsOf(o.dict, out);
  return out;
}

/** Decrypts IV ‖ AES-CBC with PKCS#7; throws on bad padding (so plaintext would be caught). */
function aesCbcOpen(algorithm: string, key: Buffer, data: Buffer): Buffer {
  expect(data.length % 16).toBe(0);
  expect(data.length).toBeGreaterThanOrEqual(32);
  const d = createDecipheriv(algorithm, key, data.subarray(0, 16));
  return Buffer.concat([d.update(data.subarray(16)), d.final()]);
}

describe.each<[PdfCipher, string, string, string]>([
  ['aes-256', 'R = 6', 'AESv3', 'aes-256-cbc'],
  ['aes-128', 'R = 4', 'AESv2', 'aes-128-cbc'],
])('saveEncrypted %s', (cipher, revision, method, algorithm) => {
  let fx: Fixture;
  let raw: Uint8Array;
  let file: string;

  beforeAll(async () => {
    fx = await buildFixture();
    raw = await saveEncrypted(fx.doc, { userPassword: PASSWORD, cipher });
    file = join(dir, `${cipher}.pdf`);
    await writeFile(file, raw);
  });

  it('qpdf: the revision and method asked for, the default permissions, a clean file once decrypted', async () => {
    const shown = qpdf('--show-encryption', `--password=${PASSWORD}`, file);
    expect(shown.code).toBe(0);
    const text = shown.stdout.toString();
    expect(text).toContain(revision);
    expect(text).toContain('Supplied password is user password');
    for (const m of ['stream', 'string', 'file']) expect(text).toContain(`${m} encryption method: ${method}`);
    expect(text).toContain('print high resolution: allowed');
    expect(text).toContain('extract for any purpose: allowed');
    expect(text).toContain('modify anything: not allowed');
    expect(text).toContain('modify annotations: not allowed');

    const out = join(dir, `${cipher}-decrypted.pdf`);
    expect(qpdf('--decrypt', `--password=${PASSWORD}`, file, out).code).toBe(0);
    const check = qpdf('--check', out);
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    expect(check.stdout.toString()).toContain('No syntax or stream encoding errors found');
    // The encrypted file itself, read with the password, is just as clean.
    const direct = qpdf('--check', `--password=${PASSWORD}`, file);
    expect([direct.code, direct.stderr]).toEqual([0, '']);
  });

  it('every reader refuses a wrong password', () => {
    const q = qpdf('--decrypt', `--password=${WRONG}`, file, join(dir, 'never.pdf'));
    expect(q.code).toBe(2);
    expect(q.stderr).toContain('invalid password');
    const p = pdftotext(file, WRONG);
    expect(p.code).not.toBe(0);
    expect(p.stderr).toContain('Incorrect password');
    const m = mutoolText(file, WRONG);
    expect(m.code).not.toBe(0);
    expect(m.stderr).toContain('cannot authenticate password');
  });

  it('poppler and MuPDF give the page text; poppler the title', () => {
    const p = pdftotext(file, PASSWORD);
    expect(p.code).toBe(0);
    expect(p.stdout.toString()).toContain(SECRETS.pageText);
    const m = mutoolText(file, PASSWORD);
    expect(m.code).toBe(0);
    expect(m.stdout.toString()).toContain(SECRETS.pageText);
    const info = run('pdfinfo', ['-upw', PASSWORD, file]);
    expect(info.stdout.toString()).toMatch(new RegExp(`^Title:\\s+${SECRETS.title}$`, 'm'));
  });

  it('pdfdetach and mutool give the embedded files byte for byte', async () => {
    const out = join(dir, `${cipher}-detached`);
    await run('mkdir', ['-p', out]);
    const d = run('pdfdetach', ['-upw', PASSWORD, '-saveall', '-o', out, file]);
    expect([d.code, d.stderr]).toEqual([0, '']);
    expect((await readdir(out)).sort()).toEqual([SECRETS.attachmentName, 'raw.txt'].sort());
    expect(await readFile(join(out, SECRETS.attachmentName))).toEqual(fx.payload);
    expect(await readFile(join(out, 'raw.txt'))).toEqual(fx.rawPayload);
    // mutool decodes (decrypts, inflates) the hand-made stream itself.
    const shown = run('mutool', ['show', '-p', PASSWORD, '-b', file, String(fx.rawFileRef.objectNumber)]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toEqual(fx.rawPayload);
  });

  it('the raw file holds none of the plaintexts, not even in inflated streams', async () => {
    const needles = Object.values(SECRETS);
    expect(plaintextsIn(raw, needles)).toEqual([]);
    // The scan does find them all in the same document saved without encryption.
    const clear = await fx.doc.save({ useObjectStreams: false });
    expect(plaintextsIn(clear, needles)).toEqual(needles);
  });

  it('every string and stream but /Encrypt and /ID is AES-CBC ciphertext under the file key', async () => {
    const parsed = await PDFDocument.load(raw, { ignoreEncryption: true, updateMetadata: false });
    const ctx = parsed.context;
    const encryptRef = ctx.trailerInfo.Encrypt as PDFRef;
    const enc = ctx.lookup(encryptRef, PDFDict);
    const get = (k: string): Buffer => bytesOf(enc.lookup(PDFName.of(k)) as PDFString | PDFHexString);
    const id0 = bytesOf((ctx.trailerInfo.ID as PDFArray).get(0) as PDFHexString);
    expect(id0.length).toBe(16);
    let keyFor: (ref: PDFRef) => Buffer;
    if (cipher === 'aes-256') {
      const fileKey = fileKeyFromUserPassword(Buffer.from(PASSWORD), get('U'), get('UE'));
      expect(fileKey).toBeDefined();
      expect(fileKeyFromUserPassword(Buffer.from(WRONG), get('U'), get('UE'))).toBeUndefined();
      keyFor = () => fileKey!;
    } else {
      const P = enc.lookup(PDFName.of('P'), PDFNumber).asNumber();
      const fileKey = computeR4FileKey(Buffer.from(PASSWORD), get('O'), P, id0, true);
      // Algorithm 6: the password is right iff the first 16 bytes of U match.
      expect(computeR4U(fileKey, id0).subarray(0, 16)).toEqual(get('U').subarray(0, 16));
      keyFor = (ref) => r4ObjectKey(fileKey, ref.objectNumber, ref.generationNumber);
    }
    let strings = 0;
    let streams = 0;
    for (const [ref, object] of ctx.enumerateIndirectObjects()) {
      if (ref === encryptRef) continue;
      for (const s of stringsOf(object)) {
        aesCbcOpen(algorithm, keyFor(ref), s);
        strings++;
      }
      if (object instanceof PDFStream) {
        aesCbcOpen(algorithm, keyFor(ref), Buffer.from(object.getContents()));
        streams++;
      }
    }
    // Title, producer, dates, URI, file names, nested note, checksum, descriptions…
    expect(strings).toBeGreaterThanOrEqual(12);
    // Content stream, font widths…, metadata, two embedded files.
    expect(streams).toBeGreaterThanOrEqual(4);
  });

  it('leaves the caller’s document as it was: saved again, it is the clear original', async () => {
    const clear = join(dir, `${cipher}-clear.pdf`);
    await writeFile(clear, await fx.doc.save());
    const t = run('pdftotext', [clear, '-']);
    expect(t.stdout.toString()).toContain(SECRETS.pageText);
  });
});

describe('saveEncrypted, the rest', () => {
  const pw = 'K7mP-x9Qr-Tw4z';

  it('declares Adobe extension level 8 for AES-256 in a 1.7 file, and none for AES-128', async () => {
    for (const [cipher, level] of [['aes-256', 8], ['aes-128', undefined]] as const) {
      const doc = await PDFDocument.create();
      doc.addPage();
      const parsed = await PDFDocument.load(await saveEncrypted(doc, { userPassword: pw, cipher }), { ignoreEncryption: true, updateMetadata: false });
      const ext = parsed.catalog.lookupMaybe(PDFName.of('Extensions'), PDFDict);
      const adbe = ext?.lookupMaybe(PDFName.of('ADBE'), PDFDict);
      expect(adbe?.lookupMaybe(PDFName.of('ExtensionLevel'), PDFNumber)?.asNumber()).toBe(level);
    }
  });

  it('encrypts literal strings as a reader decodes them: escapes, parentheses, backslashes, Unicode', async () => {
    const doc = await PDFDocument.create();
    doc.addPage();
    // A literal string as pdf-lib keeps it (escaped source text) and a UTF-16 text string.
    doc.context.lookup(doc.context.trailerInfo.Info, PDFDict).set(PDFName.of('Subject'), PDFString.of('x\\(y\\) z \\\\ end\\051'));
    doc.setAuthor('Ωμέγα \u202Eevil\u202C 東京');
    const file = join(dir, 'escapes.pdf');
    await writeFile(file, await saveEncrypted(doc, { userPassword: pw, cipher: 'aes-256' }));
    const info = run('pdfinfo', ['-enc', 'UTF-8', '-upw', pw, file]).stdout.toString();
    expect(info).toMatch(/^Subject:\s+x\(y\) z \\ end\)$/m);
    expect(info).toContain('Ωμέγα \u202Eevil\u202C 東京');
  });

  it('refuses a document already encrypted, an unparsed object, an unknown cipher — with a typed error', async () => {
    const doc = await PDFDocument.create();
    doc.addPage();
    const encrypted = await saveEncrypted(doc, { userPassword: pw, cipher: 'aes-256' });
    const again = await PDFDocument.load(encrypted, { ignoreEncryption: true });
    await expect(saveEncrypted(again, { userPassword: pw, cipher: 'aes-256' })).rejects.toMatchObject({ name: 'PdfSecurityError', code: 'unsupported-document' });

    const broken = await PDFDocument.create();
    broken.addPage();
    broken.context.register(PDFInvalidObject.of(Buffer.from('(unbalanced string')));
    await expect(saveEncrypted(broken, { userPassword: pw, cipher: 'aes-256' })).rejects.toMatchObject({ name: 'PdfSecurityError', code: 'unsupported-document' });

    const cipher = 'rc4-40' as PdfCipher;
    await expect(saveEncrypted(doc, { userPassword: pw, cipher })).rejects.toMatchObject({ name: 'PdfSecurityError', code: 'unsupported-document' });
  });

  it('gives a document without pages the blank page doc.save() would', async () => {
    const file = join(dir, 'empty.pdf');
    await writeFile(file, await saveEncrypted(await PDFDocument.create(), { userPassword: pw, cipher: 'aes-256' }));
    expect(run('pdfinfo', ['-upw', pw, file]).stdout.toString()).toMatch(/^Pages:\s+1$/m);
    expect(qpdf('--check', `--password=${pw}`, file).code).toBe(0);
  });
});
