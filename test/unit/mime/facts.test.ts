/**
 * Message facts for the policy, from real mails (Thunderbird's S/MIME and OpenPGP corpora) and
 * from hand-made edge cases, including hostile nesting.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { messageFacts, subjectCommands } from '../../../src/mime/index.js';

const CORPORA = resolve(import.meta.dirname, '../../../../shared/corpora');
const TB = join(CORPORA, 'thunderbird-comm-central');
const smime = (f: string) => readFile(join(TB, 'mailnews-test-data-smime', f));
const pgp = (f: string) => readFile(join(TB, 'browser-openpgp-data/eml', f));
const mail = (head: string, body = 'hello\r\n') => Buffer.from(`${head.replace(/\n/g, '\r\n')}\r\n\r\n${body}`);

describe('messageFacts: crypto state of real mails', () => {
  it.each([
    ['alice.env.eml', 'smime', null],
    ['alice.dsig.SHA256.multipart.eml', null, 'smime'],
    ['alice.sig.SHA256.opaque.eml', null, 'smime'],
    // Opaque signed around encrypted: only the outer layer can be seen.
    ['alice.env.sig.SHA256.opaque.eml', null, 'smime'],
    // A multipart signature around an opaque one: the inner blob is the message, not an attachment.
    ['alice.plain.sig.SHA256.opaque.dave.dsig.SHA256.multipart.eml', null, 'smime'],
  ])('S/MIME %s', async (file, encrypted, signed) => {
    const f = messageFacts(await smime(file));
    expect([f.encrypted, f.signed]).toEqual([encrypted, signed]);
    expect(f.attachments).toEqual([]);
  });

  it.each([
    // An encryption inside a top-level signature is still the whole message.
    ['alice.dsig.SHA256.multipart.env.dsig.eml', 'smime', 'smime', []],
    ['outer-pgp-sig-inner-smime-enc.eml', 'smime', 'pgp', []],
    // Encryption of one part inside multipart/mixed is not: that part is an attachment.
    ['alice.env.mixed.dsig.SHA256.multipart.eml', null, 'smime', [{ name: 'smime.p7m', type: 'application/pkcs7-mime' }, { name: 'attached-message.eml', type: 'message/rfc822' }]],
  ])('nested S/MIME %s', async (file, encrypted, signed, attachments) => {
    const f = messageFacts(await readFile(join(TB, 'smime-manual', file)));
    expect([f.encrypted, f.signed, f.attachments]).toEqual([encrypted, signed, attachments]);
  });

  it('tells S/MIME without smime-type from the CMS content type, else from a .p7m name', async () => {
    const strip = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/;\s*smime-type=[a-z-]+/i, ''), 'latin1');
    const env = messageFacts(strip(await smime('alice.env.eml')));
    expect([env.encrypted, env.signed]).toEqual(['smime', null]);
    // Opaque signed mail also says name=smime.p7m: the content decides.
    const sig = messageFacts(strip(await smime('alice.sig.SHA256.opaque.eml')));
    expect([sig.encrypted, sig.signed]).toEqual([null, 'smime']);
    const named = messageFacts(mail('Content-Type: application/x-pkcs7-mime; name="smime.p7m"\nContent-Transfer-Encoding: base64', 'not CMS at all\r\n'));
    expect([named.encrypted, named.signed, named.attachments]).toEqual(['smime', null, []]);
    // RFC 8551 3.2.2: some agents label the blob application/octet-stream.
    const octet = (await smime('alice.env.eml')).toString('latin1').replace('application/pkcs7-mime', 'application/octet-stream');
    const asOctet = messageFacts(Buffer.from(octet, 'latin1'));
    expect([asOctet.encrypted, asOctet.signed, asOctet.attachments]).toEqual(['smime', null, []]);
    const certsOnly = messageFacts(mail('Content-Type: application/pkcs7-mime; smime-type=certs-only; name=smime.p7c', 'MIAG\r\n'));
    expect([certsOnly.encrypted, certsOnly.signed]).toEqual([null, null]);
  });

  it.each([
    ['alice-signed.eml', null, 'pgp', []],
    ['bob-to-alice-signed-damaged-signature.eml', null, 'pgp', []],
    ['encrypted-and-signed-alice-to-bob-nonascii.eml', 'pgp', null, []],
    ['enc-to-carol@pgp.icu-revoked.eml', 'pgp', null, []],
    ['outer-pgp-sig-inner-pgp-enc.eml', 'pgp', 'pgp', []],
    ['outer-smime-bad-sig-inner-pgp-enc.eml', 'pgp', 'smime', []],
    // Inline: armour at the start of a line of a text/plain body, after its transfer encoding.
    ['inline-signed-utf8.eml', null, 'pgp', []],
    ['inline-signed-latin1.eml', null, 'pgp', []],
    ['bob-enc-inline-nbsp-qp.eml', 'pgp', null, []],
    ['partial-encrypt-for-alice-plaintext.eml', 'pgp', null, []],
    // Armour in HTML is not inline PGP.
    ['bob-enc-html-nbsp.eml', null, null, []],
    // Exchange's rewrite of PGP/MIME into multipart/mixed.
    ['alice-broken-exchange.eml', 'pgp', null, []],
    // A signed part inside multipart/mixed (a list footer added) is not a signed message.
    ['signed-with-mailman-footer.eml', null, null, []],
    ['fwd-unsigned-encrypted.eml', null, null, [{ name: 'attached-message.eml', type: 'message/rfc822' }]],
    ['signed-by-0x3099ff1238852b9f-to-0xf231550c4f47e38e-unencrypted-with-key.eml', null, 'pgp', [{ name: 'OpenPGP_0x3099FF1238852B9F.asc', type: 'application/pgp-keys' }]],
  ])('OpenPGP %s', async (file, encrypted, signed, attachments) => {
    const f = messageFacts(await pgp(file));
    expect([f.encrypted, f.signed, f.attachments]).toEqual([encrypted, signed, attachments]);
  });

  it('finds inline armour in a base64 text/plain body and in the text part of multipart/mixed', () => {
    const armour = '-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA\r\n-----END PGP MESSAGE-----\r\n';
    const b64 = messageFacts(mail('Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64', Buffer.from(`Grüße\r\n${armour}`).toString('base64')));
    expect(b64.encrypted).toBe('pgp');
    const mixed = messageFacts(
      mail('Content-Type: multipart/mixed; boundary=m', ['--m', 'Content-Type: text/plain', '', armour, '--m', 'Content-Type: application/octet-stream; name=a.pgp', '', 'x', '--m--', ''].join('\r\n')),
    );
    expect([mixed.encrypted, mixed.attachments]).toEqual(['pgp', [{ name: 'a.pgp', type: 'application/octet-stream' }]]);
    // Quoted in a reply, or inside a text attachment, it is not.
    expect(messageFacts(mail('Subject: re', `> ${armour}`)).encrypted).toBeNull();
    const attached = messageFacts(
      mail('Content-Type: multipart/mixed; boundary=m', ['--m', 'Content-Type: text/plain', '', 'see file', '--m', 'Content-Type: text/plain; name=msg.asc', '', armour, '--m--', ''].join('\r\n')),
    );
    expect([attached.encrypted, attached.attachments]).toEqual([null, [{ name: 'msg.asc', type: 'text/plain' }]]);
  });
});

describe('messageFacts: headers and attachments', () => {
  it('finds attachments by disposition or name, with RFC 2231 names, and skips signatures', () => {
    const m = mail(
      'From: a@example.com\nSubject: =?UTF-8?Q?Quartalszahlen_f=C3=BCr?= =?UTF-8?B?IFEz?=\nContent-Type: multipart/mixed; boundary="b1"',
      [
        '--b1',
        'Content-Type: text/plain',
        '',
        'see attached',
        '--b1',
        'Content-Type: application/pdf',
        "Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf",
        '',
        'JVBERi0=',
        '--b1',
        'Content-Type: image/png; name="logo.png"',
        'Content-Disposition: inline',
        '',
        'iVBO',
        '--b1',
        'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=b2',
        '',
        '--b2',
        'Content-Type: text/plain',
        '',
        'signed text',
        '--b2',
        'Content-Type: application/pkcs7-signature; name=smime.p7s',
        'Content-Disposition: attachment; filename=smime.p7s',
        '',
        'MIAG',
        '--b2--',
        '--b1',
        // A detached signature sent as a file, outside multipart/signed, is an attachment.
        'Content-Type: application/pgp-signature; name=release.tar.gz.sig',
        '',
        'iQ',
        '--b1--',
        '',
      ].join('\r\n'),
    );
    const f = messageFacts(m);
    expect(f.subject).toBe('Quartalszahlen für Q3');
    expect(f.attachments).toEqual([
      { name: '€ rates.pdf', type: 'application/pdf' },
      { name: 'logo.png', type: 'image/png' },
      { name: 'release.tar.gz.sig', type: 'application/pgp-signature' },
    ]);
    expect(f.size).toBe(m.length);
    expect(f.headers.get('from')).toEqual(['a@example.com']);
    expect([f.encrypted, f.signed]).toEqual([null, null]);
  });

  it.each([
    ["filename*0*=UTF-8''%E2%82%AC; filename*1=\" rates\"; filename*2=.pdf", '€ rates.pdf'],
    ["filename=\"fallback.pdf\"; filename*=iso-8859-1'de'Gr%FC%DFe.pdf", 'Grüße.pdf'],
    ['filename="=?utf-8?B?R3LDvMOfZS5wZGY=?="', 'Grüße.pdf'],
    ['filename="a; b \\"c\\".pdf"', 'a; b "c".pdf'],
    ['filename=""; name=fallback.pdf', ''],
    ["filename*=x-unknown''%E9t%E9.pdf", 'été.pdf'],
  ])('decodes the file name %s', (param, name) => {
    const f = messageFacts(mail(`Content-Type: multipart/mixed; boundary=x`, `--x\r\nContent-Type: Application/PDF\r\nContent-Disposition: attachment; ${param}\r\n\r\n%PDF\r\n--x--\r\n`));
    expect(f.attachments).toEqual([{ name, type: 'application/pdf' }]);
  });

  it('counts a single-part message that is a file, and a message/rfc822 without descending into it', () => {
    expect(messageFacts(mail('Content-Type: application/pdf\nContent-Disposition: attachment; filename=scan.pdf', '%PDF')).attachments).toEqual([{ name: 'scan.pdf', type: 'application/pdf' }]);
    const fwd = ['--f', 'Content-Type: text/plain', '', 'fyi', '--f', 'Content-Type: message/rfc822', '', 'Subject: inner', 'Content-Type: multipart/mixed; boundary=i', '', '--i', 'Content-Type: application/zip; name=inner.zip', '', 'PK', '--i--', '--f--', ''].join('\r\n');
    expect(messageFacts(mail('Content-Type: multipart/mixed; boundary=f', fwd)).attachments).toEqual([{ name: '', type: 'message/rfc822' }]);
    // In multipart/digest a part without Content-Type is a message (RFC 2046 5.1.5).
    expect(messageFacts(mail('Content-Type: multipart/digest; boundary=d', '--d\r\n\r\nSubject: one\r\n\r\nbody\r\n--d--\r\n')).attachments).toEqual([{ name: '', type: 'message/rfc822' }]);
  });

  it('does not take a nested boundary that extends the outer one for the outer delimiter', () => {
    const body = ['--b', 'Content-Type: multipart/mixed; boundary=b1', '', '--b1', 'Content-Type: text/plain; name=inner.txt', '', 'x', '--b1--', '--b', 'Content-Type: text/plain; name=outer.txt', '', 'y', '--b--', ''].join('\r\n');
    expect(messageFacts(mail('Content-Type: multipart/mixed; boundary=b', body)).attachments.map((a) => a.name)).toEqual(['inner.txt', 'outer.txt']);
  });

  it('reads a part without headers as text/plain, not its body as headers', () => {
    const body = ['--b', '', 'Content-Disposition: attachment; filename=fake.exe', '', 'text', '--b--', ''].join('\r\n');
    expect(messageFacts(mail('Content-Type: multipart/mixed; boundary=b', body)).attachments).toEqual([]);
  });

  it('unfolds headers, keeps every occurrence in order, reads LF-only mail and raw UTF-8 (RFC 6532)', () => {
    const f = messageFacts(Buffer.from('Received: from a\n\tby b\nreceived: from c\nSubject: Grüße\n =?utf-8?B?4oKs?=\nX-Empty:\n\nbody\n'));
    expect(f.headers.get('received')).toEqual(['from a\tby b', 'from c']);
    expect(f.headers.get('x-empty')).toEqual(['']);
    expect(f.subject).toBe('Grüße €');
    // Raw headers keep their encoded-words; only the subject fact is decoded.
    expect(f.headers.get('subject')).toEqual(['Grüße =?utf-8?B?4oKs?=']);
  });

  it('joins encoded-words that split a character and keeps text between words', () => {
    // "€" is E2 82 AC, split across two words.
    expect(messageFacts(mail('Subject: =?UTF-8?Q?=E2=82?= =?UTF-8?Q?=AC_rates?= for =?iso-8859-1?q?caf=E9?=')).subject).toBe('€ rates for café');
    expect(messageFacts(mail('Subject: =?x-nonsense?B?AAA?= =?utf-8?B?!!!?= plain')).subject).toBeTypeOf('string');
  });

  it.each([
    ['X-Priority: 1 (Highest)', 'high'],
    ['X-Priority: 2', 'high'],
    ['X-Priority: 5', 'low'],
    ['X-Priority: 3', 'normal'],
    ['X-Priority: High', 'high'],
    ['Importance: High', 'high'],
    ['Importance: low', 'low'],
    ['Priority: urgent', 'high'],
    ['Priority: non-urgent', 'low'],
    ['X-MSMail-Priority: High', 'high'],
    ['X-MSMail-Priority: Low', 'low'],
    // The first of X-Priority, Importance, Priority, X-MSMail-Priority that says something recognisable decides.
    ['X-Priority: 3\nImportance: high', 'normal'],
    ['Importance: garbage\nPriority: urgent', 'high'],
    ['Subject: none', 'normal'],
  ])('reads priority from %s', (h, p) => {
    expect(messageFacts(mail(`Subject: x\n${h}`)).priority).toBe(p);
  });

  it.each([
    ['Sensitivity: Company-Confidential', 'confidential'],
    ['Sensitivity: confidential', 'confidential'],
    ['Sensitivity: Private', 'private'],
    ['Sensitivity: Personal', 'personal'],
    ['Sensitivity: secret', 'normal'],
    ['Subject: none', 'normal'],
  ])('reads sensitivity from %s', (h, s) => {
    expect(messageFacts(mail(h)).sensitivity).toBe(s);
  });
});

// No test here times anything (elapsed-time assertions flake on a loaded CI machine). The guards
// against hostile input assert the work done instead — the depth and part limits hit, every value
// read exactly — and, where only linearity protects, the input is sized so that a quadratic parser
// would run for minutes, far past the test's time-out (30 s, vitest.config.ts), while the linear
// one takes well under a second: the time-out is the hang guard, one per test.
describe('messageFacts: hostile input', () => {
  it('answers without exception for 10,000 nested multiparts, looking no deeper than the depth limit', () => {
    let body = 'Content-Type: text/plain; name=deep.txt\r\n\r\ndeep\r\n';
    for (let i = 10_000; i > 0; i--) body = `Content-Type: multipart/mixed; boundary=n${i}\r\n\r\n--n${i}\r\n${body}\r\n--n${i}--\r\n`;
    const m = Buffer.from(`Subject: deep\r\n${body}`);
    const f = messageFacts(m);
    // Below the depth limit nothing is looked at: the named part 10,000 levels down is not seen
    // (the next test sees one 40 levels down), so the walk stopped at the limit.
    expect(f.attachments).toEqual([]);
    expect(f.subject).toBe('deep');
  });

  it('sees parts down to the depth limit', () => {
    let body = 'Content-Type: text/plain; name=deep.txt\r\n\r\ndeep\r\n';
    for (let i = 40; i > 0; i--) body = `Content-Type: multipart/mixed; boundary=n${i}\r\n\r\n--n${i}\r\n${body}\r\n--n${i}--\r\n`;
    expect(messageFacts(Buffer.from(body)).attachments).toEqual([{ name: 'deep.txt', type: 'text/plain' }]);
  });

  it('bounds the part count: of 200,000 parts, exactly the first 1000 (MAX_PARTS) are looked at', () => {
    const parts = '--p\r\nContent-Type: text/plain; name=a.txt\r\n\r\nx\r\n'.repeat(200_000);
    const f = messageFacts(mail('Content-Type: multipart/mixed; boundary=p', parts));
    expect(f.attachments).toHaveLength(1000);
    expect(f.attachments.every((a) => a.name === 'a.txt' && a.type === 'text/plain')).toBe(true);
  });

  it('stays linear in header count: 400,000 headers, every one read', () => {
    // Quadratic in the header count would be ~1.6e11 steps here: minutes, not a fraction of a second.
    const headers = 'Received: from x\r\n'.repeat(400_000);
    const f = messageFacts(Buffer.from(`${headers}\r\nbody`));
    expect(f.headers.get('received')).toHaveLength(400_000);
    expect(f.headers.get('received')!.every((v) => v === 'from x')).toBe(true);
  });

  it('gives best-effort facts for broken MIME, never an exception', () => {
    const junk = [
      '',
      '\r\n',
      'no header at all',
      'Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n',
      'Content-Type: multipart/mixed\r\n\r\n--x\r\n',
      'Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: application/pdf; name=truncated.pdf\r\n\r\n%PDF',
      'Content-Type: multipart/signed; boundary=s; protocol=application/pgp-signature\r\n\r\n',
      'Content-Type: application/pkcs7-mime\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIBAAYJ',
      'Content-Type: application/pkcs7-mime\r\n\r\n\x30\x84\xff\xff\xff\xff\x06',
      'Content-Type: ;;;;\r\nContent-Disposition: attachment; filename*99999999999=x; filename*=\'\'%ZZ\r\n\r\n',
      'Subject: =?utf-8?Q?=?= =?=?=\r\n\r\n',
      ':\r\n \r\n\t\r\n: x\r\n\r\n',
      'Content-Type: multipart/mixed; boundary=-\r\n\r\n' + '-'.repeat(100_000),
    ];
    for (const j of junk) expect(() => messageFacts(Buffer.from(j, 'latin1'))).not.toThrow();
    expect(messageFacts(Buffer.from(junk[5]!)).attachments).toEqual([{ name: 'truncated.pdf', type: 'application/pdf' }]);
  });

  it('reads every mail in the shared corpora without exception, each quickly', async () => {
    const dirs = [
      join(TB, 'jsmime-data'),
      join(TB, 'mailnews-test-data-smime'),
      join(TB, 'browser-openpgp-data/eml'),
      join(TB, 'browser-smime-data'),
      join(TB, 'smime-manual'),
      join(CORPORA, 'mime-parser-fixtures/mailparser'),
      join(CORPORA, 'mime-parser-fixtures/postal-mime'),
    ];
    let n = 0;
    for (const dir of dirs) {
      for (const file of await readdir(dir)) {
        if (/\.(p12|pem|md|txt)$/.test(file)) continue;
        const buf = await readFile(join(dir, file));
        // Real mails of a few kilobytes each: a pathological one is caught by the test's time-out.
        const f = messageFacts(buf);
        expect(f.size, file).toBe(buf.length);
        n++;
      }
    }
    expect(n).toBeGreaterThan(100);
  });

  it('reads mime-torture: the forwarded messages are attachments, unnamed media parts are not', async () => {
    const f = messageFacts(await readFile(join(TB, 'jsmime-data/mime-torture')));
    expect(f.subject).toBe('Multi-media mail demonstration');
    // Its top-level multipart holds 8 MESSAGE/RFC822 parts (not descended into) and unnamed audio/image parts.
    expect(f.attachments).toEqual(Array.from({ length: 8 }, () => ({ name: '', type: 'message/rfc822' })));
  });

  it('stays linear on hostile parameters and encoded-words, and reads them exactly', () => {
    // 1,000,000 empty parameters, an unterminated 400,000-byte quoted value, 200,000 adjacent
    // encoded-words: quadratic in any of them is 1e11 steps or more — minutes.
    const f = messageFacts(Buffer.from(`Content-Type: multipart/mixed${';'.repeat(1_000_000)}x=1; name="${'a'.repeat(400_000)}\r\nSubject: ${'=?utf-8?B?4oKs?= '.repeat(200_000)}\r\n\r\n`));
    expect(f.subject).toBe('€'.repeat(200_000));
    // The parameter after the million semicolons was read: a multipart without a boundary, named.
    expect(f.attachments).toEqual([{ name: 'a'.repeat(400_000), type: 'multipart/mixed' }]);
  });

  it('stays linear on an unterminated header section of 400,000 lines, and reads every line', () => {
    // A header section without its blank line, after a boundary whose quote never closes: quadratic
    // in the lines (a search for the end of the header from each line) is ~1.6e11 steps — minutes.
    const f = messageFacts(Buffer.from(`Content-Type: multipart/mixed; boundary="x\r\n${'X: y\r\n'.repeat(400_000)}`));
    expect(f.headers.get('content-type')).toEqual(['multipart/mixed; boundary="x']);
    expect(f.headers.get('x')).toHaveLength(400_000);
    expect(f.attachments).toEqual([]);
  });
});

describe('subjectCommands', () => {
  const tokens = ['{encrypt}', '{send_keys}', '{sign}'];
  it('finds tokens case-insensitively, returns them as configured, removes them and tidies spaces', () => {
    expect(subjectCommands('{ENCRYPT} Offer  {send_keys} for you', tokens)).toEqual({ found: ['{encrypt}', '{send_keys}'], subject: 'Offer for you' });
    expect(subjectCommands('Offer {Sign} {sign}', tokens)).toEqual({ found: ['{sign}'], subject: 'Offer' });
    expect(subjectCommands('nothing  here', tokens)).toEqual({ found: [], subject: 'nothing  here' });
    expect(subjectCommands('{encrypt}', tokens)).toEqual({ found: ['{encrypt}'], subject: '' });
  });
  it('finds a punctuated token inside a word (leaving a space), a bare-word token only as a word', () => {
    expect(subjectCommands('x{sign}y', tokens)).toEqual({ found: ['{sign}'], subject: 'x y' });
    expect(subjectCommands('decrypted report', ['encrypt'])).toEqual({ found: [], subject: 'decrypted report' });
    expect(subjectCommands('ENCRYPT: report', ['encrypt'])).toEqual({ found: ['encrypt'], subject: ': report' });
  });
  it('treats tokens literally and ignores empty ones', () => {
    expect(subjectCommands('a.b (x+) c', ['(x+)', '', '  ', '.'])).toEqual({ found: ['(x+)', '.'], subject: 'a b c' });
  });
});

describe('editHeaders', () => {
  const original = Buffer.from(
    'Received: from a by b\r\n\tfor <x@example.com>; Mon, 1 Jan 2026 00:00:00 +0000\r\nSubject: old {sign}\r\nX-Remove: one\r\n  folded two\r\nFrom: a@example.com\r\nx-remove: again\r\n\r\nbody line\r\n\r\n.. dots\r\n',
  );
  it('removes fields with their folding, adds after the trace fields, replaces the subject, keeps the body byte for byte', async () => {
    const { editHeaders } = await import('../../../src/mime/index.js');
    const out = editHeaders(original, { remove: ['X-REMOVE'], add: [['X-Tag', 'yes']], set: [['Subject', 'Grüße']] }).toString('latin1');
    expect(out).toBe(
      'Received: from a by b\r\n\tfor <x@example.com>; Mon, 1 Jan 2026 00:00:00 +0000\r\nX-Tag: yes\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\r\nFrom: a@example.com\r\n\r\nbody line\r\n\r\n.. dots\r\n',
    );
    expect(messageFacts(Buffer.from(out, 'latin1')).subject).toBe('Grüße');
  });
  it('works on LF-only messages and on a message without a body', async () => {
    const { editHeaders } = await import('../../../src/mime/index.js');
    expect(editHeaders(Buffer.from('A: 1\nB: 2\n\nbody\n'), { remove: ['a'] }).toString()).toBe('B: 2\n\nbody\n');
    expect(editHeaders(Buffer.from('A: 1\r\n'), { add: [['B', '2']] }).toString()).toBe('B: 2\r\nA: 1\r\n\r\n');
  });
});
