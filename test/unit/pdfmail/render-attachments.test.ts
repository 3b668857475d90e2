/**
 * Attachments in the mail PDF: every file embedded so that poppler (pdfdetach) and MuPDF give it
 * back byte for byte, under a name that is safe to save; forwarded messages as .eml and as text;
 * the limits (count, size) as PdfRenderError; hostile MIME rendered, never thrown.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFonts } from '../../../src/pdfmail/fonts.js';
import { PdfRenderError, renderMailPdf, type RenderLimits } from '../../../src/pdfmail/render.js';
import { mupdfAttachments, popplerAttachments, popplerText, qpdfCheck } from '../../helpers/pdf-readers.js';

const dir = mkdtempSync(join(tmpdir(), 'postern-pdfattach-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LOOK = { organisation: 'Example Ltd', coverText: 'Encrypted for you.', instructions: 'Press Reply.', replyLabel: 'Reply' };
const fonts = loadFonts();
const now = new Date('2026-12-03T04:00:00Z');
let n = 0;

async function render(message: Buffer, limits?: Partial<RenderLimits>) {
  const r = await renderMailPdf({ message, look: LOOK, replyUrl: 'https://portal.example.com/r/t', fonts, now, limits });
  const file = join(dir, `a-${++n}.pdf`);
  writeFileSync(file, await r.doc.save());
  return { ...r, file };
}

interface Part {
  headers: string;
  body: Buffer;
}
const base64Part = (headers: string, data: Buffer): Part => ({ headers: `${headers}\r\nContent-Transfer-Encoding: base64`, body: Buffer.from(data.toString('base64').replace(/.{76}/g, '$&\r\n')) });

function mixed(parts: Part[], subject = 'files'): Buffer {
  const chunks: Buffer[] = [Buffer.from(`From: Anna <anna@example.com>\r\nTo: bob@example.org\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n`)];
  for (const p of parts) chunks.push(Buffer.from(`--zz\r\n${p.headers}\r\n\r\n`), p.body, Buffer.from('\r\n'));
  chunks.push(Buffer.from('--zz--\r\n'));
  return Buffer.concat(chunks);
}

const text = (s: string): Part => ({ headers: 'Content-Type: text/plain; charset=utf-8', body: Buffer.from(s) });

describe('renderMailPdf: attachments', () => {
  it('embeds every file so poppler and MuPDF give it back byte for byte, under safe distinct names', async () => {
    const binary = randomBytes(5000);
    const pdfFile = Buffer.from('%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R /Encrypt 5 0 R >>\n%%EOF\n');
    const p7m = randomBytes(3000);
    const nested = Buffer.from('From: Carol <carol@example.net>\r\nTo: anna@example.com\r\nSubject: =?utf-8?Q?Angebot_f=C3=BCr_Sie?=\r\nDate: Mon, 30 Nov 2026 09:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDas Angebot gilt bis Freitag.\r\n');
    const message = mixed([
      text('See the files.'),
      base64Part('Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="../../etc/passwd"', binary),
      base64Part('Content-Type: application/pdf; name="report.pdf"\r\nContent-Disposition: attachment; filename="report.pdf"; creation-date="Mon, 30 Nov 2026 08:00:00 +0000"', pdfFile),
      base64Part('Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Disposition: attachment; filename="invoice\u202Efdp.exe"', p7m),
      base64Part("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''%C3%9Cbersicht%20%E2%80%93%20Q3.xlsx", binary.subarray(0, 100)),
      base64Part('Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="report.pdf"', binary.subarray(100, 200)),
      base64Part('Content-Type: image/png\r\nContent-Disposition: attachment', binary.subarray(200, 300)),
      { headers: 'Content-Type: message/rfc822', body: nested },
    ]);
    const r = await render(message);
    expect(r.attachments).toBe(7);
    qpdfCheck(r.file);
    const expected = new Map<string, Buffer>([
      ['_.._etc_passwd', binary],
      ['report.pdf', pdfFile],
      ['invoice_fdp.exe', p7m],
      ['Übersicht – Q3.xlsx', binary.subarray(0, 100)],
      ['report (2).pdf', binary.subarray(100, 200)],
      ['attachment-6.bin', binary.subarray(200, 300)],
      ['Angebot für Sie.eml', nested],
    ]);
    for (const got of [popplerAttachments(r.file, join(dir, `poppler-${n}`)), mupdfAttachments(r.file, join(dir, `mupdf-${n}`))]) {
      for (const [name, bytes] of expected) expect(got.get(name)?.equals(bytes), name).toBe(true);
    }
    const shown = popplerText(r.file);
    for (const name of expected.keys()) expect(shown).toContain(name);
    // The forwarded message is shown too: its header fields and its text.
    expect(shown).toContain('Forwarded message (attached as Angebot für Sie.eml)');
    expect(shown).toContain('Carol <carol@example.net>');
    expect(shown).toContain('Das Angebot gilt bis Freitag.');
  });

  it('shows forwarded messages to maxDepth and says where the deeper ones are', async () => {
    let msg = Buffer.from('From: deep@example.com\r\nSubject: level 3\r\n\r\ninnermost text\r\n');
    for (const level of [2, 1]) msg = Buffer.from(`From: f${level}@example.com\r\nSubject: level ${level}\r\nContent-Type: multipart/mixed; boundary="l${level}"\r\n\r\n--l${level}\r\nContent-Type: text/plain\r\n\r\ntext of level ${level}\r\n--l${level}\r\nContent-Type: message/rfc822\r\n\r\n${msg.toString('latin1')}\r\n--l${level}--\r\n`, 'latin1');
    const r = await render(mixed([text('top text'), { headers: 'Content-Type: message/rfc822', body: msg }]), { maxDepth: 2 });
    expect(r.attachments).toBe(1);
    const shown = popplerText(r.file).replace(/\s+/g, ' ');
    expect(shown).toContain('text of level 1');
    expect(shown).toContain('text of level 2');
    expect(shown).not.toContain('innermost text');
    expect(shown).toContain('A forwarded message nested deeper than 2 levels is not shown here');
  });

  it('renders 500 attachments, and stops at the 501st with PdfRenderError naming the limit', async () => {
    const parts = Array.from({ length: 500 }, (_, i) => base64Part(`Content-Type: text/csv\r\nContent-Disposition: attachment; filename="row-${i}.csv"`, Buffer.from(`${i};value\n`)));
    const r = await render(mixed(parts));
    expect(r.attachments).toBe(500);
    qpdfCheck(r.file);
    expect(popplerAttachments(r.file, join(dir, 'five-hundred')).get('row-499.csv')?.toString()).toBe('499;value\n');
    const err = await render(mixed([...parts, parts[0]!])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PdfRenderError);
    expect((err as PdfRenderError).message).toBe('more than 500 attachments for one PDF');
  });

  it('stops an attachment past maxAttachmentBytes with PdfRenderError, naming sizes, not the file', async () => {
    const err = await render(mixed([base64Part('Content-Type: application/zip\r\nContent-Disposition: attachment; filename="secret-plans.zip"', randomBytes(300_000))]), { maxAttachmentBytes: 100_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PdfRenderError);
    expect((err as PdfRenderError).reply.status).toBe('5.3.4');
    expect((err as PdfRenderError).message).toMatch(/^an attachment of \d+ bytes, more than the 100000 bytes one PDF attachment may have$/);
    expect((err as PdfRenderError).message).not.toContain('secret');
  });

  it('embeds a 30 MB attachment byte for byte (stored, since random data does not compress)', async () => {
    const big = randomBytes(30 * 1024 * 1024);
    const r = await render(mixed([text('the big one'), base64Part('Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="big.bin"', big)]));
    expect(r.attachments).toBe(1);
    expect(popplerAttachments(r.file, join(dir, 'big')).get('big.bin')?.equals(big)).toBe(true);
  });

  it('stops MIME nested deeper than the MIME limit with PdfRenderError, and reads a base64 forwarded message', async () => {
    let deep = 'Content-Type: text/plain\r\n\r\nbottom\r\n';
    for (let i = 0; i < 60; i++) deep = `Content-Type: multipart/mixed; boundary="d${i}"\r\n\r\n--d${i}\r\n${deep}\r\n--d${i}--\r\n`;
    const err = await render(Buffer.from(`From: a@example.com\r\nSubject: deep\r\n${deep}`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PdfRenderError);
    expect((err as PdfRenderError).limit).toBe('mime_depth');
    const inner = Buffer.from('From: x@example.net\r\nSubject: inner\r\n\r\nforwarded in base64\r\n');
    const r = await render(mixed([base64Part('Content-Type: message/rfc822', inner)]));
    expect(popplerText(r.file)).toContain('forwarded in base64');
    expect(popplerAttachments(r.file, join(dir, 'b64-eml')).get('inner.eml')?.equals(inner)).toBe(true);
  });

  it('cuts text past maxTextChars with a note and embeds the whole part as a file', async () => {
    const lines = Array.from({ length: 400 }, (_, i) => `line ${String(i).padStart(3, '0')} of the log`);
    const r = await render(mixed([text(lines.join('\r\n'))]), { maxTextChars: 2000 });
    const shown = popplerText(r.file);
    expect(shown).toContain('line 000 of the log');
    expect(shown).not.toContain('line 399 of the log');
    expect(shown.replace(/\s+/g, ' ')).toContain('The text is longer than 2,000 characters and is cut here; all of it is in the attached file message-text.txt.');
    expect(popplerAttachments(r.file, join(dir, 'cut')).get('message-text.txt')?.toString()).toBe(lines.join('\r\n'));
  });

  it('renders hostile MIME: bad base64, unknown charset, no closing boundary, broken HTML, junk headers', async () => {
    const message = Buffer.from(
      [
        'From: =?x-unknown?B?!!!?= <a@example.com>',
        'Subject: =?utf-8?Q?broken=ZZ?= \x00\x01',
        'Content-Type: multipart/mixed; boundary=b',
        '',
        '--b',
        'Content-Type: text/plain; charset=x-no-such-charset',
        '',
        'caf\xe9 au lait',
        '--b',
        'Content-Type: text/html; charset=utf-8',
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from('<div><table><tr><td>cell<p>unclosed <b>bold <a href="https://x.example/">link').toString('base64') + '***not base64***',
        '--b',
        'Content-Type: application/octet-stream; name=',
        'Content-Transfer-Encoding: base64',
        '',
        '@@@@',
      ].join('\r\n'),
      'latin1',
    );
    const r = await render(message);
    qpdfCheck(r.file);
    const shown = popplerText(r.file);
    expect(shown).toContain('café au lait');
    expect(shown).toContain('cell');
    expect(shown).toContain('link [1]');
    expect(r.attachments).toBe(1);
  });
});
