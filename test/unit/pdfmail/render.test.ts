/**
 * The mail as a PDF, checked by independent readers: poppler and MuPDF must extract the header
 * fields and text exactly as sent (German, Greek, Cyrillic, Chinese, Japanese, Korean), qpdf finds
 * the file clean, the metadata names nobody, and the pages are drawn (not blank).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PDFDocument, rgb } from 'pdf-lib';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFonts } from '../../../src/pdfmail/fonts.js';
import { renderMailPdf, type PdfLook } from '../../../src/pdfmail/render.js';
import { saveEncrypted } from '../../../src/pdfmail/security.js';
import { inkedPixels, mupdfText, pdfInfo, popplerText, qpdfCheck } from '../../helpers/pdf-readers.js';

const dir = mkdtempSync(join(tmpdir(), 'postern-pdfrender-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

export const LOOK: PdfLook = {
  organisation: 'Example Ltd',
  coverText: 'You receive this message as an encrypted PDF because it holds confidential information.\n\nOpen it with the password the sender gave you.',
  instructions: 'To answer this message securely, press the button below and sign in with the same password.',
  replyLabel: 'Reply securely',
};
const fonts = loadFonts();
const now = new Date('2026-12-03T04:00:00Z');
let n = 0;

async function pdf(message: string | Buffer, replyUrl: string | null = 'https://portal.example.com/reply/tok3n'): Promise<{ file: string; pages: number; warnings: string[] }> {
  const r = await renderMailPdf({ message: Buffer.isBuffer(message) ? message : Buffer.from(message.replace(/\r?\n/g, '\r\n')), look: LOOK, replyUrl, fonts, now });
  const file = join(dir, `mail-${++n}.pdf`);
  writeFileSync(file, await r.doc.save());
  return { file, pages: r.pages, warnings: r.warnings };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const SUBJECT = 'Grüße aus Köln – Αθήνα – Москва – 北京 – 東京 – 서울';
const BODY_LINES = [
  'Sehr geehrte Frau Müller, ä ö ü ß Ä Ö Ü sind da.',
  'Ελληνικά: Καλημέρα σας, τι κάνετε;',
  'Русский: Добрый день, как дела?',
  '中文：请查收附件中的报告。',
  '日本語：報告書を添付いたします。',
  '한국어: 첨부된 보고서를 확인해 주세요.',
];

const unicodeMail = [
  'From: =?utf-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.com>',
  `To: =?utf-8?B?${b64('Ζωή Παπαδοπούλου')}?= <zoe@example.gr>, =?utf-8?B?${b64('Иван Петров')}?= <ivan@example.ru>`,
  `Cc: =?utf-8?B?${b64('王小明')}?= <wang@example.cn>`,
  'Date: Wed, 02 Dec 2026 17:45:00 +0100',
  `Subject: =?utf-8?B?${b64(SUBJECT)}?=`,
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: base64',
  '',
  b64(BODY_LINES.join('\r\n')),
].join('\r\n');

describe('renderMailPdf: the mail as readers see it', () => {
  it('gives header fields and text in six scripts exactly, to poppler and to MuPDF', async () => {
    const { file, pages } = await pdf(unicodeMail);
    expect(pages).toBe(3);
    qpdfCheck(file);
    for (const text of [popplerText(file), mupdfText(file)]) {
      expect(text).toContain(SUBJECT);
      expect(text).toContain('Jürgen Müller <juergen@example.com>');
      expect(text).toContain('Ζωή Παπαδοπούλου <zoe@example.gr>, Иван Петров <ivan@example.ru>');
      expect(text).toContain('王小明 <wang@example.cn>');
      expect(text).toContain('Wed, 02 Dec 2026 17:45:00 +0100');
      for (const line of BODY_LINES) expect(text).toContain(line);
      expect(text).not.toContain('\uFFFD');
    }
    // Each font subsetted, and only the fonts the text needs.
    const fontsUsed = execFileSync('pdffonts', [file]).toString();
    expect(fontsUsed).toMatch(/\+DejaVuSans\s/);
    expect(fontsUsed).toMatch(/DroidSansFallback/);
    expect(fontsUsed).toMatch(/NanumGothic/);
    for (const line of fontsUsed.split('\n').slice(2).filter(Boolean)) expect(line).toMatch(/^[A-Z]{6}\+\S+\s.*\byes\s+yes\s+yes\b/);
    // Every glyph drawable: a broken subset extracts fine and draws blank (FreeType: "invalid outline").
    const draw = spawnSync('mutool', ['draw', '-o', join(dir, 'glyphs-%d.png'), '-r', '40', file, '2'], { encoding: 'utf8' });
    expect(draw.status).toBe(0);
    expect(draw.stderr).not.toMatch(/FT_Load_Glyph|invalid outline/);
  });

  it('embeds no CJK font for a mail without CJK text, and names nobody in the metadata', async () => {
    const { file } = await pdf('From: Anna Schmidt <anna@example.com>\nTo: Bob Jones <bob@example.org>\nSubject: Quarterly figures for Acme\nDate: Wed, 02 Dec 2026 17:45:00 +0100\n\nDear Bob,\n\nthe figures are attached.\n');
    expect(execFileSync('pdffonts', [file]).toString()).not.toMatch(/Droid|Nanum/);
    const info = pdfInfo(file);
    expect(info).toMatch(/^Producer:\s+Postern$/m);
    expect(info).toMatch(/^Metadata Stream:\s+no$/m);
    expect(info).not.toMatch(/^(Title|Author|Subject|Keywords|Creator):/m);
    expect(info).not.toMatch(/Quarterly|Anna|Bob|Acme|example/);
    expect(popplerText(file)).toContain('Quarterly figures for Acme');
  });

  it('draws the cover and the mail page: neither is blank', async () => {
    const { file } = await pdf(unicodeMail);
    expect(inkedPixels(file, 1, dir)).toBeGreaterThan(1500);
    expect(inkedPixels(file, 2, dir)).toBeGreaterThan(1500);
  });

  it('shows HTML as text with its links numbered and listed, scripts and styles dropped', async () => {
    const html = '<html><head><title>Newsletter</title><style>p { color: red }</style><script>alert("gotcha")</script></head><body><h1>Offer</h1><p>See <a href="https://shop.example.com/offer?id=7">our offer</a> and <a href="mailto:sales@example.com">write to us</a>.</p><p><a href="javascript:steal()">click</a></p></body></html>';
    const { file } = await pdf(`From: shop@example.com\nTo: bob@example.org\nSubject: Offer\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n${html}\n`);
    const text = popplerText(file);
    expect(text).toContain('See our offer [1] and write to us [2].');
    expect(text).toContain('[1] https://shop.example.com/offer?id=7');
    expect(text).toContain('[2] mailto:sales@example.com');
    expect(text).not.toMatch(/gotcha|color: red|javascript|Newsletter/);
  });

  it('shows the plain part of multipart/alternative and every inline text part of multipart/mixed in order', async () => {
    const mail = [
      'From: a@example.com', 'To: b@example.org', 'Subject: parts', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="m"', '',
      '--m', 'Content-Type: multipart/alternative; boundary="a"', '',
      '--a', 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable', '', 'First part, plain: Gr=FC=DFe', '',
      '--a', 'Content-Type: text/html', '', '<p>First part, HTML only</p>', '--a--',
      '--m', 'Content-Type: text/plain; charset=koi8-r', 'Content-Transfer-Encoding: base64', '', Buffer.from([0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4]).toString('base64'),
      '--m', 'Content-Type: text/plain; format=flowed', '', 'Third part is one ', 'flowed line.', '> quoted ', '> too', '--m--', '',
    ].join('\n');
    const text = popplerText((await pdf(mail)).file);
    expect(text).toContain('First part, plain: Grüße');
    expect(text).not.toContain('HTML only');
    expect(text.indexOf('Привет')).toBeGreaterThan(text.indexOf('Grüße'));
    expect(text).toContain('Third part is one flowed line.');
    expect(text).toContain('> quoted too');
  });

  it('wraps long lines and words to the page, keeps every character, and expands tabs', async () => {
    const word = 'x'.repeat(400);
    const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    const { file } = await pdf(`From: a@example.com\nTo: b@example.org\nSubject: wrap\n\n${long}\n${word}\ncol1\tcol2\n`);
    const text = popplerText(file);
    expect(text.replace(/\s+/g, ' ')).toContain(long);
    expect(text.replace(/\n/g, '')).toContain(word);
    expect(text).toMatch(/col1 +col2/);
  });

  it('reads Outlook quotes and dashes in an iso-8859-1 subject and body as Windows-1252 does', async () => {
    const { file } = await pdf(Buffer.from('From: a@example.com\r\nTo: b@example.org\r\nSubject: =?iso-8859-1?Q?=93Angebot=94_=96_Stra=DFe?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=84Gr=FC=DFe=93 =96 100 =80\r\n'));
    const text = popplerText(file);
    expect(text).toContain('“Angebot” – Straße');
    expect(text).toContain('„Grüße“ – 100 €');
  });

  it('draws no bidi override and no control character raw', async () => {
    const { file } = await pdf(Buffer.from('From: a@example.com\r\nTo: b@example.org\r\nSubject: invoice\u202Efdp.exe\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nopen \u202Egnp.exe\u202C now\x07\x1b[31m red\r\n'));
    for (const text of [popplerText(file), mupdfText(file)]) {
      expect(text).not.toMatch(/[\u202A-\u202E\u2066-\u2069\x07\x1b]/);
      expect(text).toContain('invoicefdp.exe');
      expect(text).toContain('open gnp.exe now\uFFFD\uFFFD[31m red');
    }
  });

  it('puts the Reply button on the last page: a link to the reply URL', async () => {
    const { file, pages } = await pdf(unicodeMail, 'https://portal.example.com/reply/Zm9vYmFy?x=(1)');
    const json = JSON.parse(execFileSync('qpdf', ['--json=1', '--json-key=objects', file]).toString()) as { objects: Record<string, Record<string, unknown>> };
    const links = Object.values(json.objects).filter((o) => o['/Subtype'] === '/Link');
    expect(links).toHaveLength(1);
    const action = links[0]!['/A'] as Record<string, string>;
    expect(action['/S']).toBe('/URI');
    expect(action['/URI']).toBe('https://portal.example.com/reply/Zm9vYmFy?x=(1)');
    const last = execFileSync('pdftotext', ['-f', String(pages), '-l', String(pages), '-enc', 'UTF-8', file, '-']).toString();
    expect(last).toContain('Reply securely');
    expect(last.replace(/\s+/g, ' ')).toContain(LOOK.instructions);
  });

  it('leaves the button out without a reply URL, and for one that is not http(s), with a warning', async () => {
    const none = await pdf(unicodeMail, null);
    expect(popplerText(none.file)).not.toContain('Reply securely');
    expect(none.warnings).toEqual([]);
    const bad = await pdf(unicodeMail, 'javascript:alert(1)');
    expect(popplerText(bad.file)).not.toContain('Reply securely');
    expect(bad.warnings).toEqual(['PDF reply URL is not an http(s) URL: no Reply button']);
  });

  it('puts the logo (PNG or JPEG, scaled to fit) on the cover, and leaves out one it cannot read, with a warning', async () => {
    const source = await PDFDocument.create();
    source.addPage([300, 100]).drawRectangle({ x: 0, y: 0, width: 100, height: 100, color: rgb(0.1, 0.3, 0.6) });
    const sourceFile = join(dir, 'logo-source.pdf');
    writeFileSync(sourceFile, await source.save());
    execFileSync('pdftoppm', ['-r', '144', '-png', '-singlefile', sourceFile, join(dir, 'logo')]);
    execFileSync('pdftoppm', ['-r', '144', '-jpeg', '-singlefile', sourceFile, join(dir, 'logo')]);
    for (const ext of ['png', 'jpg']) {
      const r = await renderMailPdf({ message: Buffer.from(unicodeMail), look: { ...LOOK, logo: readFileSync(join(dir, `logo.${ext}`)) }, replyUrl: null, fonts, now });
      const file = join(dir, `with-logo-${ext}.pdf`);
      writeFileSync(file, await r.doc.save());
      expect(r.warnings).toEqual([]);
      const images = execFileSync('pdfimages', ['-list', '-f', '1', '-l', '1', file]).toString().split('\n').slice(2).filter(Boolean);
      expect(images).toHaveLength(1);
      // 600 × 200 pixels drawn at most 190 × 64 points: 144 dpi and more on the page.
      expect(Number(images[0]!.trim().split(/\s+/)[12])).toBeGreaterThanOrEqual(144);
    }
    const broken = await renderMailPdf({ message: Buffer.from(unicodeMail), look: { ...LOOK, logo: Buffer.from('\x89PNG\r\n\x1a\nnot really', 'latin1') }, replyUrl: null, fonts, now });
    expect(broken.warnings).toEqual(['PDF logo could not be read: left out']);
    const gif = await renderMailPdf({ message: Buffer.from(unicodeMail), look: { ...LOOK, logo: Buffer.from('GIF89a') }, replyUrl: null, fonts, now });
    expect(gif.warnings).toEqual(['PDF logo is neither PNG nor JPEG: left out']);
  });

  it('reads the same after saveEncrypted, twice in a row: the fonts every PDF shares stay intact', async () => {
    for (const round of [1, 2]) {
      const r = await renderMailPdf({ message: Buffer.from(unicodeMail), look: LOOK, replyUrl: null, fonts, now });
      const file = join(dir, `encrypted-${round}.pdf`);
      writeFileSync(file, await saveEncrypted(r.doc, { userPassword: 'Rh7kTq3mWz9x', cipher: 'aes-256' }));
      const text = execFileSync('pdftotext', ['-upw', 'Rh7kTq3mWz9x', '-raw', '-enc', 'UTF-8', file, '-']).toString();
      expect(text).toContain(SUBJECT);
      for (const line of BODY_LINES) expect(text).toContain(line);
      const draw = spawnSync('mutool', ['draw', '-p', 'Rh7kTq3mWz9x', '-o', join(dir, `enc-${round}-%d.png`), '-r', '40', file, '2'], { encoding: 'utf8' });
      expect(draw.status).toBe(0);
      expect(draw.stderr).not.toMatch(/FT_Load_Glyph|invalid|error/i);
    }
  });

  it('falls back to Helvetica when no font file is found, saying so, with other scripts replaced', async () => {
    const missing = loadFonts(['/nonexistent/NoSuchFont.ttf']);
    expect(missing.families).toHaveLength(0);
    expect(missing.warnings.join('\n')).toMatch(/NoSuchFont\.ttf is missing[^]*Helvetica/);
    const r = await renderMailPdf({ message: Buffer.from(unicodeMail), look: LOOK, replyUrl: null, fonts: missing, now });
    const file = join(dir, 'helvetica.pdf');
    writeFileSync(file, await r.doc.save());
    qpdfCheck(file);
    const text = popplerText(file);
    expect(text).toContain('Sehr geehrte Frau Müller, ä ö ü ß Ä Ö Ü sind da.');
    expect(text).toContain('中文'.replace(/./g, '?'));
  });
});
