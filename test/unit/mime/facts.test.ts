/**
 * Message facts for the policy, from real mails (Thunderbird's S/MIME and OpenPGP corpora) and
 * from hand-made edge cases, including hostile nesting.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { messageFacts, subjectCommands } from '../../../src/mime/index.js';

const TB = resolve(import.meta.dirname, '../../../../shared/corpora/thunderbird-comm-central');
const smime = (f: string) => readFile(join(TB, 'mailnews-test-data-smime', f));
const pgp = (f: string) => readFile(join(TB, 'browser-openpgp-data/eml', f));
const mail = (head: string, body = 'hello\r\n') => Buffer.from(`${head.replace(/\n/g, '\r\n')}\r\n\r\n${body}`);

describe('messageFacts', () => {
  it.each([
    ['alice.env.eml', 'smime', null],
    ['alice.dsig.SHA256.multipart.eml', null, 'smime'],
    ['alice.sig.SHA256.opaque.eml', null, 'smime'],
  ])('tells S/MIME state of %s', async (file, encrypted, signed) => {
    const f = messageFacts(await smime(file));
    expect([f.encrypted, f.signed]).toEqual([encrypted, signed]);
    expect(f.attachments).toEqual([]);
  });

  it.each([
    ['alice-signed.eml', null, 'pgp', []],
    ['encrypted-and-signed-alice-to-bob-nonascii.eml', 'pgp', null, []],
    ['inline-signed-utf8.eml', null, 'pgp', []],
    ['fwd-unsigned-encrypted.eml', null, null, [{ name: 'attached-message.eml', type: 'message/rfc822' }]],
  ])('tells OpenPGP state and attachments of %s', async (file, encrypted, signed, attachments) => {
    const f = messageFacts(await pgp(file));
    expect([f.encrypted, f.signed]).toEqual([encrypted, signed]);
    expect(f.attachments).toEqual(attachments);
  });

  it('finds attachments by disposition or name, with RFC 2231 names, and skips signatures', () => {
    const m = mail(
      'From: a@example.com\nSubject: =?UTF-8?Q?Quartalszahlen_f=C3=BCr?= =?UTF-8?B?IFEz?=\nContent-Type: multipart/mixed; boundary="b1"',
      [
        '--b1',
        'Content-Type: text/plain',
        '',
        'see attached',
        '--b1',
        "Content-Type: application/pdf",
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
        '--b1--',
        '',
      ].join('\r\n'),
    );
    const f = messageFacts(m);
    expect(f.subject).toBe('Quartalszahlen für Q3');
    expect(f.attachments).toEqual([
      { name: '€ rates.pdf', type: 'application/pdf' },
      { name: 'logo.png', type: 'image/png' },
    ]);
    expect(f.size).toBe(m.length);
    expect(f.headers.get('from')).toEqual(['a@example.com']);
  });

  it.each([
    ['X-Priority: 1 (Highest)', 'high'],
    ['X-Priority: 5', 'low'],
    ['Importance: High', 'high'],
    ['Priority: non-urgent', 'low'],
    ['X-MSMail-Priority: High', 'high'],
    ['X-Priority: 3', 'normal'],
  ])('reads priority from %s', (h, p) => {
    expect(messageFacts(mail(`Subject: x\n${h}`)).priority).toBe(p);
  });

  it.each([
    ['Sensitivity: Company-Confidential', 'confidential'],
    ['Sensitivity: Private', 'private'],
    ['Sensitivity: Personal', 'personal'],
    ['Subject: none', 'normal'],
  ])('reads sensitivity from %s', (h, s) => {
    expect(messageFacts(mail(h)).sensitivity).toBe(s);
  });

  it('answers quickly and without exception for 10,000 nested multiparts and broken MIME', () => {
    let body = 'deep\r\n';
    for (let i = 0; i < 10_000; i++) body = `--n${i}\r\nContent-Type: multipart/mixed; boundary=n${i + 1}\r\n\r\n${body}\r\n--n${i}--\r\n`;
    const t0 = Date.now();
    const f = messageFacts(mail('Content-Type: multipart/mixed; boundary=n0', body));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(f.attachments).toEqual([]);
    for (const junk of ['', 'no header at all', 'Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n', 'Content-Type: multipart/mixed\r\n\r\n--x\r\n']) {
      expect(() => messageFacts(Buffer.from(junk))).not.toThrow();
    }
  });
});

describe('subjectCommands', () => {
  it('finds tokens case-insensitively, removes them and tidies spaces', () => {
    expect(subjectCommands('{ENCRYPT} Offer  {send_keys} for you', ['{encrypt}', '{send_keys}', '{sign}'])).toEqual({ found: ['{encrypt}', '{send_keys}'], subject: 'Offer for you' });
    expect(subjectCommands('x{sign}y', ['{sign}'])).toEqual({ found: ['{sign}'], subject: 'x y' });
    expect(subjectCommands('nothing here', ['{sign}'])).toEqual({ found: [], subject: 'nothing here' });
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
