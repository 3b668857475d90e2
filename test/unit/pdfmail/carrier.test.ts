/**
 * The mail that carries the PDF (pdfmail/carrier.ts), read back by Python's email package: the
 * original's header outside without its MIME fields, the explaining text (and HTML, with the
 * sender's address escaped), the PDF byte for byte — and nothing of the original body.
 */
import { describe, expect, it } from 'vitest';
import { carrierMessage } from '../../../src/pdfmail/carrier.js';
import { header, parseMail, type ParsedPart } from '../../helpers/mail-parse.js';

const leaves = (p: ParsedPart): ParsedPart[] => (p.parts.length ? p.parts.flatMap(leaves) : [p]);
const original = Buffer.from(
  'From: Alice <alice@example.com>\r\nTo: carol@plain.example\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\r\nMessage-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: multipart/mixed; boundary="x"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nsecret body words\r\n--x--\r\n',
);
const pdf = Uint8Array.from(Array.from({ length: 5000 }, (_, i) => (i * 13) & 0xff));

describe('the carrying mail', () => {
  it('keeps the header, replaces the body by the text and the PDF, and fills in the sender and organisation', async () => {
    const msg = carrierMessage({ original, pdf, filename: 'message.pdf', text: '{sender} wrote to you.\n-- \n{organisation}', sender: 'alice@example.com', organisation: 'Example Ltd' });
    expect(msg.toString('latin1')).not.toContain('secret body words');
    const p = await parseMail(msg);
    expect(p.defects).toEqual([]);
    expect(p.contentType).toBe('multipart/mixed');
    expect(header(p, 'Subject')).toBe('Grüße');
    expect(header(p, 'Message-ID')).toBe('<m1@example.com>');
    expect(p.headers.filter(([k]) => /^(content-type|mime-version|content-transfer-encoding)$/i.test(k))).toHaveLength(2);
    const [text, file] = leaves(p);
    expect(text!.contentType).toBe('text/plain');
    expect(text!.payload!.toString('utf8').replace(/\r\n/g, '\n')).toBe('alice@example.com wrote to you.\n-- \nExample Ltd\n');
    expect(file!.contentType).toBe('application/pdf');
    expect(file!.filename).toBe('message.pdf');
    expect(file!.disposition).toBe('attachment');
    expect(Buffer.from(pdf).equals(file!.payload!)).toBe(true);
  });

  it('puts HTML beside the text, with the sender escaped, and a file name that cannot break its parameter', async () => {
    const msg = carrierMessage({ original, pdf, filename: 'a"b/../c.pdf', text: 'from {sender}', html: '<p>from <b>{sender}</b></p>', sender: '"<script>"@example.com', organisation: 'X' });
    const p = await parseMail(msg);
    expect(p.defects).toEqual([]);
    const [text, html, file] = leaves(p);
    expect(p.parts[0]!.contentType).toBe('multipart/alternative');
    expect(text!.payload!.toString('utf8')).toContain('from "<script>"@example.com');
    expect(html!.payload!.toString('utf8')).toContain('from <b>&#34;&#60;script&#62;&#34;@example.com</b>');
    expect(file!.filename).toBe('a_b_.._c.pdf');
  });
});
