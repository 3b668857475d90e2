/**
 * addAttachments read back by Python's email package: the structure, the attachments' bytes and
 * names (RFC 2231 included), and — checked on our own bytes, since a parser re-encodes — that the
 * original body entity is carried over byte for byte, signed multiparts included.
 */
import { describe, expect, it } from 'vitest';
import { addAttachments, type Attachment } from '../../../src/mime/compose.js';
import { header, parseMail } from '../../helpers/mail-parse.js';

const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');
const keys: Attachment = { filename: 'alice@example.com.p7c', contentType: 'application/pkcs7-mime; smime-type=certs-only', content: Buffer.from([0x30, 0x82, 0x01, 0x00, 0xff, 0x00, 0x2d, 0x2d]) };
const asc: Attachment = { filename: 'alice@example.com.asc', contentType: 'application/pgp-keys', content: Buffer.from('-----BEGIN PGP PUBLIC KEY BLOCK-----\r\n\r\nxjMEZ\r\n-----END PGP PUBLIC KEY BLOCK-----\r\n') };

/** The bytes of the first part as written: from after the first delimiter line to the next delimiter. */
function firstPart(out: Buffer): Buffer {
  const boundary = /boundary="([^"]+)"/.exec(out.toString('latin1'))![1]!;
  const start = out.indexOf(`\r\n--${boundary}\r\n`) + boundary.length + 6;
  return out.subarray(start, out.indexOf(`\r\n--${boundary}`, start));
}

function checkLines(out: Buffer): void {
  const text = out.toString('latin1');
  expect(text.endsWith('\r\n')).toBe(true);
  expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  for (const line of text.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
}

describe('addAttachments', () => {
  it('wraps a plain text message: headers kept, Content-* moved to the first part, one base64 part per attachment', async () => {
    const body = 'Hello Bob,\r\n\r\nhere are my keys.\r\n-- \r\nAlice\r\n';
    const msg = crlf(
      'Received: from a by b; Tue, 12 Mar 2024 10:00:00 +0000\nFrom: Alice <alice@example.com>\nTo: bob@example.net\nSubject: keys\nMIME-Version: 1.0\n' +
        'Content-Type: text/plain;\n charset="utf-8"\nContent-Transfer-Encoding: 7bit\nMessage-ID: <1@example.com>\n\n' + body,
    );
    const out = addAttachments(msg, [keys, asc]);
    checkLines(out);
    // Our bytes: the first part is the original entity exactly (its folded Content-Type too).
    expect(firstPart(out).toString('latin1')).toBe('Content-Type: text/plain;\r\n charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n' + body);
    const head = out.subarray(0, out.indexOf('\r\n\r\n')).toString('latin1');
    expect(head.match(/^MIME-Version:/gim)).toHaveLength(1);
    expect(head).not.toMatch(/^Content-Type: text\/plain/im);
    expect(head.startsWith('Received: from a by b;')).toBe(true);

    const p = await parseMail(out);
    expect(p.defects).toEqual([]);
    expect(p.contentType).toBe('multipart/mixed');
    expect([header(p, 'From'), header(p, 'To'), header(p, 'Subject'), header(p, 'Message-ID')]).toEqual(['Alice <alice@example.com>', 'bob@example.net', 'keys', '<1@example.com>']);
    expect(p.parts.map((x) => x.contentType)).toEqual(['text/plain', 'application/pkcs7-mime', 'application/pgp-keys']);
    // Python hands text back with LF line ends; the exact bytes were checked above.
    expect(p.parts[0]!.payload!.toString('utf8')).toBe(body.replace(/\r\n/g, '\n'));
    expect(p.parts[0]!.params.charset).toBe('utf-8');
    const [, p7c, key] = p.parts;
    expect(p7c).toMatchObject({ filename: keys.filename, disposition: 'attachment', cte: 'base64', params: { 'smime-type': 'certs-only', name: keys.filename }, defects: [] });
    expect(p7c!.payload!.equals(keys.content)).toBe(true);
    expect(key).toMatchObject({ filename: asc.filename, disposition: 'attachment' });
    expect(key!.payload!.equals(asc.content)).toBe(true);
  });

  it('keeps a multipart/alternative body whole as the first part', async () => {
    const inner =
      'This is a multi-part message in MIME format.\r\n--alt1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n' +
      '--alt1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Gr\u00fc\u00dfe</p>\r\n--alt1--\r\n';
    const msg = Buffer.concat([crlf('From: a@example.com\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=alt1\n\n'), Buffer.from(inner, 'utf8')]);
    const out = addAttachments(msg, [asc]);
    checkLines(out);
    expect(firstPart(out).equals(Buffer.concat([Buffer.from('Content-Type: multipart/alternative; boundary=alt1\r\n\r\n'), Buffer.from(inner, 'utf8')]))).toBe(true);
    // Raw UTF-8 in the HTML part: the multipart must say 8bit (RFC 2045 6.4).
    expect(out.toString('latin1')).toMatch(/^Content-Transfer-Encoding: 8bit\r$/m);
    const p = await parseMail(out);
    expect(p.defects).toEqual([]);
    expect(header(p, 'Subject')).toBe('Grüße');
    expect(p.parts.map((x) => x.contentType)).toEqual(['multipart/alternative', 'application/pgp-keys']);
    expect(p.parts[0]!.parts.map((x) => x.contentType)).toEqual(['text/plain', 'text/html']);
    expect(p.parts[0]!.parts[0]!.payload!.toString('utf8')).toBe('Grüße');
    expect(p.parts[0]!.parts[1]!.payload!.toString('utf8')).toBe('<p>Grüße</p>');
  });

  it('carries a multipart/signed entity byte for byte, without a final line end too', () => {
    const signed =
      '--sig\r\nContent-Type: text/plain\r\n\r\nsigned text  \r\n--sig\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIB\r\n--sig--';
    const ct = 'Content-Type: multipart/signed; protocol="application/pkcs7-signature";\r\n\tmicalg=sha-256; boundary="sig"\r\n';
    const msg = Buffer.from(`From: a@example.com\r\n${ct}MIME-Version: 1.0\r\n\r\n${signed}`);
    const out = addAttachments(msg, [keys]);
    checkLines(out);
    expect(firstPart(out).toString('latin1')).toBe(`${ct}\r\n${signed}`);
  });

  it('treats a message without Content-Type as text/plain and keeps its transfer encoding', async () => {
    const msg = crlf('From: a@example.com\nSubject: old style\nContent-Transfer-Encoding: quoted-printable\n\nsch=C3=B6n\n');
    const out = addAttachments(msg, [asc]);
    expect(firstPart(out).toString('latin1')).toBe('Content-Transfer-Encoding: quoted-printable\r\n\r\nsch=C3=B6n\r\n');
    const p = await parseMail(out);
    expect(p.parts[0]).toMatchObject({ contentType: 'text/plain', cte: 'quoted-printable' });
    expect(p.parts[0]!.payload!.toString('utf8')).toBe('schön\n');
    expect(out.toString('latin1')).toMatch(/^Content-Transfer-Encoding: 7bit\r$/m);
  });

  it('names attachments with RFC 2231 when not ASCII, in continuations when long, and never lets a name break a line', async () => {
    const long = `Schlüssel von Jürgen Müller-Lüdenscheidt für die Geschäftsführung ${'ä'.repeat(40)}.asc`;
    const ascii = `${'very-long-ascii-name-'.repeat(5)}"quoted".asc`;
    const out = addAttachments(crlf('From: a@example.com\n\nhi\n'), [
      { ...asc, filename: 'Jürgen.asc' },
      { ...asc, filename: long },
      { ...asc, filename: ascii },
      { ...asc, filename: 'evil.asc\r\nBcc: victim@example.org' },
    ]);
    checkLines(out);
    for (const line of out.toString('latin1').split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
    expect(out.toString('latin1')).not.toMatch(/^Bcc:/m);
    expect(out.toString('latin1')).toContain("filename*=utf-8''J%C3%BCrgen.asc");
    const p = await parseMail(out);
    expect(p.defects).toEqual([]);
    expect(p.parts.slice(1).map((x) => x.filename)).toEqual(['Jürgen.asc', long, ascii, 'evil.asc Bcc: victim@example.org']);
    expect(p.parts.slice(1).map((x) => x.defects)).toEqual([[], [], [], []]);
  });

  it('handles a message without a body or a header, and refuses a content type that is not one', async () => {
    const noBody = addAttachments(Buffer.from('From: a@example.com\r\nSubject: x'), [asc]);
    checkLines(noBody);
    expect(firstPart(noBody).toString('latin1')).toBe('\r\n');
    expect((await parseMail(noBody)).parts.map((x) => x.contentType)).toEqual(['text/plain', 'application/pgp-keys']);
    const noHeader = addAttachments(Buffer.from('\r\njust text\r\n'), [asc]);
    expect(noHeader.toString('latin1').startsWith('MIME-Version: 1.0\r\n')).toBe(true);
    expect(firstPart(noHeader).toString('latin1')).toBe('\r\njust text\r\n');
    expect(() => addAttachments(noBody, [{ ...asc, contentType: 'pgp keys' }])).toThrow(/not a media type/);
  });
});
