/**
 * Passwords and permissions: non-ASCII passwords open the file in qpdf, poppler and MuPDF exactly
 * as typed; passwords some reader would hash differently are refused with a typed error that never
 * repeats the password; the key derivations agree with qpdf as the writer; /P as qpdf reads it.
 */
import { createDecipheriv } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PDFDict, PDFDocument, PDFHexString, PDFName, PDFNumber, PDFString, type PDFArray } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertPdfPasswordUsable, normalisePdfPassword, permissionBits, PdfSecurityError, saveEncrypted, type PdfCipher, type PdfSecurity } from '../../../src/pdfmail/security.js';
import { computeR4FileKey, computeR4O, computeR4U } from '../../../src/pdfmail/security-r4.js';
import { fileKeyFromUserPassword } from '../../../src/pdfmail/security-r6.js';
import { tempDir } from '../../helpers/config.js';
import { mutoolText, pdftotext, qpdf } from '../../helpers/pdf-encrypted.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir('postern-pdfpw-')));
afterAll(() => cleanup());

const TEXT = 'Lieferschein Nummer 8812';

async function encryptedFile(name: string, security: PdfSecurity): Promise<string> {
  const doc = await PDFDocument.create();
  doc.addPage([300, 200]).drawText(TEXT, { x: 10, y: 100, size: 12 });
  const file = join(dir, name);
  await writeFile(file, await saveEncrypted(doc, security));
  return file;
}

function opensEverywhere(file: string, password: string): void {
  expect(qpdf('--check', `--password=${password}`, file).code).toBe(0);
  expect(pdftotext(file, password).stdout.toString()).toContain(TEXT);
  expect(mutoolText(file, password).stdout.toString()).toContain(TEXT);
}

async function refusal(security: PdfSecurity): Promise<PdfSecurityError> {
  const doc = await PDFDocument.create();
  const e = await saveEncrypted(doc, security).catch((err: unknown) => err);
  expect(e).toBeInstanceOf(PdfSecurityError);
  const err = e as PdfSecurityError;
  expect(err.code).toBe('password-unusable');
  if (security.userPassword.length > 0) expect(err.message).not.toContain(security.userPassword);
  expect(() => assertPdfPasswordUsable(security.userPassword, security.cipher)).toThrow(PdfSecurityError);
  return err;
}

describe('PDF passwords', () => {
  it('a German password with umlauts and ß opens AES-256 in qpdf, poppler and MuPDF as typed', async () => {
    const pw = 'Grüße aus Köln – Straße 12';
    opensEverywhere(await encryptedFile('umlaut-r6.pdf', { userPassword: pw, cipher: 'aes-256' }), pw);
  });

  it('Greek, Cyrillic and CJK passwords open AES-256 in qpdf, poppler and MuPDF as typed', async () => {
    // 22 UTF-8 bytes: pdftotext's -upw keeps only 32 bytes of what it is given (see below).
    const pw = 'Καλή Мир 東京';
    opensEverywhere(await encryptedFile('unicode-r6.pdf', { userPassword: pw, cipher: 'aes-256' }), pw);
  });

  it('AES-256 hashes the first 127 bytes of a longer password, as readers do', async () => {
    const pw = 'x'.repeat(121) + 'ÄÖÜäöü'; // 133 UTF-8 bytes, the first 127 end after 'Ü'
    const file = await encryptedFile('long-r6.pdf', { userPassword: pw, cipher: 'aes-256' });
    // pdftotext 22.12 cuts -upw to 32 bytes, so only qpdf and MuPDF can be given this one.
    expect(qpdf('--check', `--password=${pw}`, file).code).toBe(0);
    expect(mutoolText(file, pw).stdout.toString()).toContain(TEXT);
    const cut = 'x'.repeat(121) + 'ÄÖÜ';
    expect(Buffer.byteLength(cut)).toBe(127);
    expect(qpdf('--check', `--password=${cut}`, file).code).toBe(0);
    expect(qpdf('--check', `--password=${cut.slice(0, -1)}`, file).code).toBe(2);
  });

  it('refuses a password SASLprep changes (a ligature, a decomposed umlaut, NBSP): readers hash typed bytes', async () => {
    // Measured: qpdf 11, poppler 22 and MuPDF 1.21 do not SASLprep, Acrobat does; only the
    // normalised form opens the same file in all of them.
    for (const pw of ['ﬁnance 2026', 'Mu\u0308ller 2026', 'two\u00a0words 2026', 'soft\u00adhyphen 2026']) {
      const err = await refusal({ userPassword: pw, cipher: 'aes-256' });
      expect(err.message).toContain('normalised form');
    }
    expect(normalisePdfPassword('ﬁnance 2026')).toBe('finance 2026');
    expect(normalisePdfPassword('Mu\u0308ller 2026')).toBe('Müller 2026');
    expect(normalisePdfPassword('two\u00a0words 2026')).toBe('two words 2026');
    expect(normalisePdfPassword('soft\u00adhyphen 2026')).toBe('softhyphen 2026');
    const told = normalisePdfPassword('ﬁnance 2026');
    opensEverywhere(await encryptedFile('normalised-r6.pdf', { userPassword: told, cipher: 'aes-256' }), told);
  });

  it('refuses what SASLprep prohibits: controls, bidi overrides, private use, mixed-direction letters', async () => {
    for (const pw of ['tab\there', 'evil\u202Eflip', 'private\uE000use', 'abc \u05D0\u05D1']) {
      await refusal({ userPassword: pw, cipher: 'aes-256' });
    }
    // Right-to-left on its own is fine.
    expect(() => assertPdfPasswordUsable('\u05E9\u05DC\u05D5\u05DD \u05E2\u05D5\u05DC\u05DD', 'aes-256')).not.toThrow();
  });

  it('refuses an empty password', async () => {
    for (const cipher of ['aes-256', 'aes-128'] as const) {
      expect((await refusal({ userPassword: '', cipher })).message).toContain('empty');
    }
  });

  it('AES-128 refuses a password beyond Latin-1 and says so, without the password', async () => {
    const err = await refusal({ userPassword: 'Καλημέρα 2026', cipher: 'aes-128' });
    expect(err.message).toContain('Latin-1');
    // The euro sign is Latin-9, not Latin-1 (and PDFDocEncoding puts it elsewhere).
    await refusal({ userPassword: 'price 10€', cipher: 'aes-128' });
  });

  it('AES-128 takes a Latin-1 password; qpdf and MuPDF open it as typed', async () => {
    // poppler 22 hashes the UTF-8 bytes of what is typed for R4 instead of PDFDocEncoding, so a
    // non-ASCII R4 password fails there (its limitation; AES-256 has no such problem).
    const pw = 'Grüße 2026';
    const file = await encryptedFile('latin1-r4.pdf', { userPassword: pw, cipher: 'aes-128' });
    expect(qpdf('--check', `--password=${pw}`, file).code).toBe(0);
    expect(mutoolText(file, pw).stdout.toString()).toContain(TEXT);
  });

  it('one ASCII password opens both the AES-256 and the AES-128 file in all three readers', async () => {
    const pw = 'K7mP-x9Qr-Tw4z';
    for (const cipher of ['aes-256', 'aes-128'] as const) {
      opensEverywhere(await encryptedFile(`same-${cipher}.pdf`, { userPassword: pw, cipher }), pw);
    }
  });
});

describe('permissions', () => {
  it('/P has bits 7–8 and 13–32 set and 1–2 clear, whatever is granted', () => {
    for (const p of [{}, { print: false, copy: false }, { modify: true, annotate: true }]) {
      const bits = permissionBits(p) >>> 0;
      expect(bits & 0b11).toBe(0);
      expect(bits & 0xc0).toBe(0xc0);
      expect((bits & 0xfffff000) >>> 0).toBe(0xfffff000);
      expect(permissionBits(p)).toBeLessThan(0); // stored as a signed 32-bit integer
    }
  });

  it.each<[PdfCipher]>([['aes-256'], ['aes-128']])('qpdf reads back what was granted (%s)', async (cipher) => {
    const pw = 'K7mP-x9Qr-Tw4z';
    const file = await encryptedFile(`perm-${cipher}.pdf`, { userPassword: pw, cipher, permissions: { print: false, copy: false, modify: true, annotate: true } });
    const text = qpdf('--show-encryption', `--password=${pw}`, file).stdout.toString();
    expect(text).toContain('print low resolution: not allowed');
    expect(text).toContain('print high resolution: not allowed');
    expect(text).toContain('extract for any purpose: not allowed');
    expect(text).toContain('extract for accessibility: allowed');
    expect(text).toContain('modify document assembly: allowed');
    expect(text).toContain('modify annotations: allowed');
    expect(text).toContain('modify forms: allowed');
    expect(text).toContain('modify other: allowed');
  });
});

describe('key derivation against qpdf as the writer', () => {
  const PW = 'qpdf-made 4711';
  const OWNER = 'owner secret 0815';

  async function qpdfEncrypted(bits: '256' | '128'): Promise<{ enc: PDFDict; id0: Buffer }> {
    const plain = join(dir, `plain-${bits}.pdf`);
    const doc = await PDFDocument.create();
    doc.addPage();
    await writeFile(plain, await doc.save());
    const out = join(dir, `qpdf-${bits}.pdf`);
    const extra = bits === '128' ? ['--use-aes=y'] : [];
    // No object streams: pdf-lib cannot look into encrypted ones, and only /Encrypt is read here.
    const r = qpdf('--object-streams=disable', '--encrypt', PW, OWNER, bits, ...extra, '--', plain, out);
    expect(r.code).toBe(0);
    const parsed = await PDFDocument.load(await readFile(out), { ignoreEncryption: true, updateMetadata: false });
    const enc = parsed.context.lookup(parsed.context.trailerInfo.Encrypt!, PDFDict);
    const id0 = Buffer.from(((parsed.context.trailerInfo.ID as PDFArray).get(0) as PDFHexString | PDFString).asBytes());
    return { enc, id0 };
  }
  const bytes = (enc: PDFDict, key: string): Buffer => Buffer.from((enc.lookup(PDFName.of(key)) as PDFHexString | PDFString).asBytes());

  it('R6: Algorithm 2.A/2.B opens qpdf’s U/UE with the password, and the file key opens its Perms', async () => {
    const { enc } = await qpdfEncrypted('256');
    expect(enc.lookup(PDFName.of('R'), PDFNumber).asNumber()).toBe(6);
    const key = fileKeyFromUserPassword(Buffer.from(PW), bytes(enc, 'U'), bytes(enc, 'UE'));
    expect(key).toBeDefined();
    expect(fileKeyFromUserPassword(Buffer.from('qpdf-made 4712'), bytes(enc, 'U'), bytes(enc, 'UE'))).toBeUndefined();
    const ecb = createDecipheriv('aes-256-ecb', key!, null).setAutoPadding(false);
    const perms = Buffer.concat([ecb.update(bytes(enc, 'Perms')), ecb.final()]);
    expect(perms.subarray(9, 12).toString('latin1')).toBe('adb');
    expect(perms.readInt32LE(0)).toBe(enc.lookup(PDFName.of('P'), PDFNumber).asNumber());
  });

  it('R4: Algorithms 2, 3 and 5 give qpdf’s O and U from the same passwords', async () => {
    const { enc, id0 } = await qpdfEncrypted('128');
    expect(enc.lookup(PDFName.of('R'), PDFNumber).asNumber()).toBe(4);
    const O = computeR4O(Buffer.from(OWNER), Buffer.from(PW));
    expect(O).toEqual(bytes(enc, 'O'));
    const P = enc.lookup(PDFName.of('P'), PDFNumber).asNumber();
    const key = computeR4FileKey(Buffer.from(PW), O, P, id0, true);
    expect(computeR4U(key, id0).subarray(0, 16)).toEqual(bytes(enc, 'U').subarray(0, 16));
  });
});
