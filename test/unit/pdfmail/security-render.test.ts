/**
 * pdfrender's document through the security handler: a Unicode mail with attachments (text,
 * binary, a PDF) encrypted with AES-256 and AES-128 reads back in poppler and MuPDF, gives every
 * attachment byte for byte, and leaves no subject, body word, address, name, attachment byte or
 * reply link in the raw file, streams inflated or not.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFonts } from '../../../src/pdfmail/fonts.js';
import { renderMailPdf } from '../../../src/pdfmail/render.js';
import { saveEncrypted, type PdfCipher } from '../../../src/pdfmail/security.js';
import { tempDir } from '../../helpers/config.js';
import { mutoolText, pdftotext, plaintextsIn, run } from '../../helpers/pdf-encrypted.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir('postern-pdfmail-enc-')));
afterAll(() => cleanup());

const PASSWORD = 'HK7M-P9QR-TW4Z-XC3V-N';
const SUBJECT = 'Vertrag Grüße – Αθήνα – Москва – 東京';
const BODY = ['Sehr geehrte Frau Müller, anbei der Vertrag.', 'Καλημέρα σας, τι κάνετε;', 'Добрый день, как дела?', '報告書を添付いたします。'];
const TEXT_FILE = Buffer.from('Kontonummer 4711-0815, Saldo neunundneunzig Tausend\n');
const BINARY_FILE = randomBytes(200_000);
const b64 = (b: Buffer | string): string => (Buffer.isBuffer(b) ? b : Buffer.from(b)).toString('base64').replace(/.{76}/g, '$&\r\n');

async function mailWithPdfAttachment(): Promise<string> {
  const { PDFDocument } = await import('pdf-lib');
  const inner = await PDFDocument.create();
  inner.addPage().drawText('Inner PDF attachment Valkyrie', { x: 20, y: 700 });
  const innerPdf = Buffer.from(await inner.save());
  return [
    'From: =?utf-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen.mueller@example.com>',
    'To: Zoe Papadopoulou <zoe.papadopoulou@example.gr>',
    'Date: Wed, 02 Dec 2026 17:45:00 +0100',
    `Subject: =?utf-8?B?${Buffer.from(SUBJECT).toString('base64')}?=`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    b64(BODY.join('\r\n')),
    '--b1',
    'Content-Type: text/plain; name="konto.txt"',
    'Content-Disposition: attachment; filename="konto.txt"',
    'Content-Transfer-Encoding: base64',
    '',
    b64(TEXT_FILE),
    '--b1',
    'Content-Type: application/octet-stream; name="data.bin"',
    'Content-Disposition: attachment; filename="data.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    b64(BINARY_FILE),
    '--b1',
    'Content-Type: application/pdf; name="inner.pdf"',
    'Content-Disposition: attachment; filename="inner.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    b64(innerPdf),
    '--b1--',
    '',
  ].join('\r\n');
}

describe.each<[PdfCipher]>([['aes-256'], ['aes-128']])('a rendered mail, encrypted with %s', (cipher) => {
  let file: string;
  let raw: Uint8Array;
  const replyUrl = 'https://portal.example.com/reply/Zq81fWmRkT-token';

  beforeAll(async () => {
    const message = Buffer.from(await mailWithPdfAttachment());
    const look = { organisation: 'Example Ltd', coverText: 'Open it with the password the sender gave you.', instructions: 'Press the button to reply.', replyLabel: 'Reply' };
    const rendered = await renderMailPdf({ message, look, replyUrl, fonts: loadFonts(), now: new Date('2026-12-03T04:00:00Z') });
    const started = process.hrtime.bigint();
    raw = await saveEncrypted(rendered.doc, { userPassword: PASSWORD, cipher });
    console.log(`${cipher}: saveEncrypted of a ${rendered.pages}-page mail with ${rendered.attachments} attachments: ${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(1)} ms`);
    file = join(dir, `mail-${cipher}.pdf`);
    await writeFile(file, raw);
  });

  it('poppler and MuPDF give the subject, the addresses and the body in four scripts', () => {
    for (const r of [pdftotext(file, PASSWORD), mutoolText(file, PASSWORD)]) {
      expect(r.code).toBe(0);
      const text = r.stdout.toString();
      expect(text).toContain(SUBJECT);
      expect(text).toContain('juergen.mueller@example.com');
      for (const line of BODY) expect(text).toContain(line);
    }
  });

  it('pdfdetach gives every attachment byte for byte, the PDF attachment included', async () => {
    const out = join(dir, `detached-${cipher}`);
    await mkdir(out);
    const d = run('pdfdetach', ['-upw', PASSWORD, '-saveall', '-o', out, file]);
    expect([d.code, d.stderr]).toEqual([0, '']);
    expect(await readFile(join(out, 'konto.txt'))).toEqual(TEXT_FILE);
    expect(await readFile(join(out, 'data.bin'))).toEqual(BINARY_FILE);
    const inner = join(out, 'inner.pdf');
    expect(run('pdftotext', [inner, '-']).stdout.toString()).toContain('Inner PDF attachment Valkyrie');
  });

  it('the raw file holds no subject, body, address, name, attachment bytes or reply link', () => {
    const needles = [SUBJECT, ...BODY, 'juergen.mueller@example.com', 'zoe.papadopoulou', 'Jürgen Müller', 'Papadopoulou', 'Kontonummer 4711-0815', 'Valkyrie', replyUrl, 'Zq81fWmRkT', 'konto.txt'];
    expect(plaintextsIn(raw, needles)).toEqual([]);
    // A random window of the binary attachment is not in the file either.
    const window = BINARY_FILE.subarray(100_000, 100_032);
    expect(Buffer.from(raw).includes(window)).toBe(false);
  });
});
