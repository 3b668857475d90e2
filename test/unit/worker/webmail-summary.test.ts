/**
 * The webmail summary (the portal's mailbox list reads it): the fields of the contract with the
 * portal, the correspondents the user may reply to (internal addresses only, each once, in
 * canonical form), attachments with their decoded sizes, and hostile input kept in bounds.
 */
import { describe, expect, it } from 'vitest';
import { webmailSummary } from '../../../src/worker/webmail-summary.js';

const received = new Date('2024-03-12T10:00:00Z');
const opts = { envelopeSender: 'alice@example.com', internalDomains: ['example.com', 'xn--bcher-kva.example'], received };
const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');

describe('webmailSummary', () => {
  it('reads the fields the list shows, and the internal correspondents', () => {
    const pdf = Buffer.alloc(3000, 7).toString('base64').replace(/.{76}/g, '$&\n');
    const msg = crlf(`From: "Alice A." <Alice@Example.COM>
To: Bob <bob@partner.example>, carol@EXAMPLE.com
Cc: =?UTF-8?Q?J=C3=B6rg?= <joerg@bücher.example>, "Eve, the other" <eve@evil.example>
Reply-To: sales@example.com
Subject: =?UTF-8?Q?Angebot_f=C3=BCr_Sie?=
Date: Mon, 11 Mar 2024 09:00:00 +0100
Message-ID: <o1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

Hello
--b1
Content-Type: application/pdf; name="offer.pdf"
Content-Disposition: attachment; filename*=utf-8''Angebot%20f%C3%BCr%20Sie.pdf
Content-Transfer-Encoding: base64

${pdf}
--b1
Content-Type: message/rfc822

Subject: inner
Content-Type: text/plain; name="not-counted.txt"

forwarded
--b1--
`);
    const s = webmailSummary(msg, opts);
    expect(s).toEqual({
      v: 1,
      from: '"Alice A." <Alice@Example.COM>',
      to: ['bob@partner.example', 'carol@example.com'],
      cc: ['joerg@xn--bcher-kva.example', 'eve@evil.example'],
      subject: 'Angebot für Sie',
      date: '2024-03-11T08:00:00.000Z',
      messageId: '<o1@example.com>',
      size: msg.length,
      attachments: [
        { name: 'Angebot für Sie.pdf', type: 'application/pdf', size: 3000 },
        { name: '', type: 'message/rfc822', size: expect.any(Number) as number },
      ],
      // Envelope sender, From, Reply-To, To, Cc: the internal ones, each once.
      correspondents: ['alice@example.com', 'sales@example.com', 'carol@example.com', 'joerg@xn--bcher-kva.example'],
    });
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it('a message with nothing: the received time, empty lists, the null sender no correspondent', () => {
    const s = webmailSummary(crlf('\nbody only\n'), { ...opts, envelopeSender: '' });
    expect(s).toMatchObject({ from: '', to: [], cc: [], subject: '', date: received.toISOString(), messageId: '', attachments: [], correspondents: [] });
    expect(webmailSummary(crlf('Date: yesterday-ish\n\nx\n'), opts).date).toBe(received.toISOString());
  });

  it('hostile input stays in bounds: one line, clipped, no path in a file name, bounded lists', () => {
    const many = Array.from({ length: 1000 }, (_, i) => `u${i}@example.com`).join(', ');
    const msg = crlf(`From: x@evil.example
To: ${many}
Subject: ${'A'.repeat(5000)}\u0007
Message-ID: <a@b> <c@d>
Content-Type: multipart/mixed; boundary=q

--q
Content-Type: application/octet-stream; name="../../etc/passwd"
Content-Transfer-Encoding: base64

cm9vdDp4OjA6MA==
--q
Content-Disposition: attachment; filename="=?UTF-8?B?4oCuZmRwLmV4ZQ==?=\u0001"

x
--q--
`);
    const s = webmailSummary(msg, opts);
    expect(s.subject.length).toBeLessThanOrEqual(1000);
    expect(s.subject).not.toMatch(/[\x00-\x1f]/);
    expect(s.to).toHaveLength(200);
    expect(s.correspondents.length).toBeLessThanOrEqual(200);
    expect(s.messageId).toBe('<a@b>');
    expect(s.attachments).toEqual([
      { name: '.._.._etc_passwd', type: 'application/octet-stream', size: 10 },
      { name: '?fdp.exe?', type: 'text/plain', size: 1 },
    ]);
  });

  it('does not count a signature as an attachment, and survives a part bomb', () => {
    const signed = crlf(`Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=s

--s
Content-Type: text/plain

signed text
--s
Content-Type: application/pkcs7-signature; name=smime.p7s
Content-Disposition: attachment; filename=smime.p7s

AAAA
--s--
`);
    expect(webmailSummary(signed, opts).attachments).toEqual([]);
    const bomb = crlf(`Content-Type: multipart/mixed; boundary=z\n\n${'--z\nContent-Disposition: attachment; filename=a\n\nx\n'.repeat(5000)}--z--\n`);
    expect(webmailSummary(bomb, opts).attachments.length).toBeLessThanOrEqual(1000);
  });
});
