/**
 * The R6 key material made once per password (security.ts): a pair's PDFs share U, UE, O, OE and
 * the file key, each still opens in qpdf with the password alone, and another password gets
 * material of its own. AES-128 (R4) keeps a fresh key per document (it costs nothing there).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PDFDocument, PDFDict, PDFName, PDFString, PDFHexString, StandardFonts } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveEncrypted } from '../../../src/pdfmail/security.js';
import { tempDir } from '../../helpers/config.js';
import { pdftotext } from '../../helpers/pdf-encrypted.js';

async function page(text: string): Promise<PDFDocument> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  doc.addPage().drawText(text, { x: 50, y: 700, font, size: 12 });
  return doc;
}

async function encryptEntries(bytes: Uint8Array): Promise<Record<string, string>> {
  const doc = await PDFDocument.load(bytes, { ignoreEncryption: true });
  const enc = doc.context.lookup(doc.context.trailerInfo.Encrypt, PDFDict);
  const out: Record<string, string> = {};
  for (const k of ['U', 'UE', 'O', 'OE', 'Perms']) {
    const v = enc.get(PDFName.of(k));
    out[k] = v instanceof PDFString || v instanceof PDFHexString ? Buffer.from(v.asBytes()).toString('hex') : String(v);
  }
  return out;
}

describe('R6 key material per password', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ dir, cleanup } = await tempDir('postern-pdf-cache-')));
  afterAll(() => cleanup());

  it('is made once per password: shared by its PDFs, each opened by the password alone; another password gets its own', async () => {
    const a1 = await saveEncrypted(await page('first letter'), { userPassword: 'abcd-efgh-jkmn-pqrs-t', cipher: 'aes-256' });
    const a2 = await saveEncrypted(await page('second letter'), { userPassword: 'abcd-efgh-jkmn-pqrs-t', cipher: 'aes-256' });
    const b = await saveEncrypted(await page('third letter'), { userPassword: 'wxyz-2345-6789-abcd-e', cipher: 'aes-256' });
    expect(await encryptEntries(a2)).toEqual(await encryptEntries(a1));
    expect((await encryptEntries(b)).U).not.toBe((await encryptEntries(a1)).U);
    for (const [name, bytes, pw, text] of [['a1', a1, 'abcd-efgh-jkmn-pqrs-t', 'first letter'], ['a2', a2, 'abcd-efgh-jkmn-pqrs-t', 'second letter'], ['b', b, 'wxyz-2345-6789-abcd-e', 'third letter']] as const) {
      const file = join(dir, `${name}.pdf`);
      await writeFile(file, bytes);
      expect(pdftotext(file, pw).stdout.toString('utf8')).toContain(text);
      expect(pdftotext(file, 'abcd-efgh-jkmn-pqrs-x').code).not.toBe(0);
    }
    // Other permissions, other material (Perms carries P under the file key).
    const c = await saveEncrypted(await page('fourth'), { userPassword: 'abcd-efgh-jkmn-pqrs-t', cipher: 'aes-256', permissions: { print: false } });
    expect((await encryptEntries(c)).Perms).not.toBe((await encryptEntries(a1)).Perms);
    // R4: a fresh owner password and key per document.
    const r1 = await saveEncrypted(await page('x'), { userPassword: 'abcd-efgh-jkmn-pqrs-t', cipher: 'aes-128' });
    const r2 = await saveEncrypted(await page('y'), { userPassword: 'abcd-efgh-jkmn-pqrs-t', cipher: 'aes-128' });
    expect((await encryptEntries(r1)).O).not.toBe((await encryptEntries(r2)).O);
  });
});
