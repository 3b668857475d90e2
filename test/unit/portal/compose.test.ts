/**
 * A portal reply as a mail: read back by Python's email package (an independent reading of
 * RFC 5322/2045–2049/2231) and by the repo's own MIME reader (what the worker sees), then written
 * into a real spool and read from incoming/ as the worker would. Hostile subjects, names and
 * media types must not add a header field or leave a path in a file name.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AddressNotCanonicalError, BareNewlineError, NulByteError } from '../../../src/core/index.js';
import { decodeBody, decodeWords, messageFacts, multipartLayout, readEntity } from '../../../src/mime/index.js';
import { attachmentNames, attachmentType, composeReply, msgId, replyEnvelope, spoolReply, type ReplyDraft } from '../../../src/portal/compose.js';
import { Spool } from '../../../src/spool/index.js';
import { header, parseMail, type ParsedPart } from '../../helpers/mail-parse.js';

const NOW = new Date('2026-12-03T08:00:00Z');
const base: ReplyDraft = {
  from: 'carol@partner.example',
  to: ['alice@example.com'],
  subject: 'Re: Quarterly figures',
  text: 'Hello Alice,\n\nthanks.\n-- \nCarol\n',
  inReplyTo: '<orig.1@example.com>',
  references: ['<root@example.com>'],
  attachments: [],
  client: '198.51.100.7',
  portalHost: 'portal.example.com',
  now: NOW,
};

function checkLines(out: Buffer): void {
  const text = out.toString('latin1');
  expect(text.endsWith('\r\n')).toBe(true);
  expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n\0]/);
  for (const line of text.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
}

const headerBlock = (out: Buffer) => out.subarray(0, out.indexOf('\r\n\r\n') + 2).toString('utf8');
const fieldNames = (p: ParsedPart) => p.headers.map(([k]) => k.toLowerCase());

describe('composeReply', () => {
  it('writes the trace, origin and thread fields and the text as UTF-8 quoted-printable', async () => {
    const text = 'Grüße, Alice —\n\nFrom the figures: 5 € fewer.\n.\nA line with trailing space \n' + 'x'.repeat(1200) + '\n';
    const out = composeReply({ ...base, subject: 'Re: Grüße aus Köln', text });
    checkLines(out);
    const head = headerBlock(out);
    // The Received field comes first (RFC 5321 4.4) and names the client and the portal.
    expect(head).toMatch(/^Received: from \[198\.51\.100\.7\] \(\[198\.51\.100\.7\]\)\r\n\tby portal\.example\.com \(Postern portal\) with HTTPS;\r\n\tThu, 3 Dec 2026 08:00:00 \+0000\r\n/);
    expect(head).toMatch(/^Content-Transfer-Encoding: quoted-printable\r$/m);
    // The message is 7-bit: nothing needs 8BITMIME on the way.
    expect([...out].every((b) => b < 0x80)).toBe(true);

    const p = await parseMail(out);
    expect(p.defects).toEqual([]);
    expect(p.contentType).toBe('text/plain');
    expect(p.params.charset).toBe('utf-8');
    expect([header(p, 'From'), header(p, 'To'), header(p, 'Subject')]).toEqual(['carol@partner.example', 'alice@example.com', 'Re: Grüße aus Köln']);
    expect(head).toMatch(/^Date: Thu, 3 Dec 2026 08:00:00 \+0000\r$/m);
    expect(header(p, 'In-Reply-To')).toBe('<orig.1@example.com>');
    expect(header(p, 'References')).toBe('<root@example.com> <orig.1@example.com>');
    expect(header(p, 'Message-ID')).toMatch(/^<[0-9a-z]+\.[0-9a-f]{18}\.reply@portal\.example\.com>$/);
    expect(p.payload!.toString('utf8')).toBe(text);
  });

  it('carries attachments byte for byte under RFC 2231 names, as Python and the repo read them', async () => {
    const binary = randomBytes(200_000);
    const pdf = Buffer.concat([Buffer.from('%PDF-1.7\r\n'), randomBytes(3000), Buffer.from('\n--boundary-lookalike--\r\n')]);
    const attachments = [
      { filename: 'Übersicht März 2026 – Entwurf (endgültig, bitte nicht weitergeben).xlsx', contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', content: binary },
      { filename: 'scan.pdf', contentType: 'application/pdf', content: pdf },
      { filename: 'empty.txt', contentType: 'text/plain', content: Buffer.alloc(0) },
    ];
    const out = composeReply({ ...base, attachments });
    checkLines(out);

    const p = await parseMail(out);
    expect(p.defects).toEqual([]);
    expect(p.contentType).toBe('multipart/mixed');
    expect(header(p, 'In-Reply-To')).toBe('<orig.1@example.com>');
    expect(p.parts.map((x) => x.contentType)).toEqual(['text/plain', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'application/pdf', 'text/plain']);
    expect(p.parts[0]!.payload!.toString('utf8')).toBe(base.text);
    attachments.forEach((a, i) => {
      const part = p.parts[i + 1]!;
      expect(part).toMatchObject({ filename: a.filename, disposition: 'attachment', cte: 'base64', defects: [] });
      expect(part.payload!.equals(a.content)).toBe(true);
    });

    // The repo's reader, as the worker's policy sees the message.
    const facts = messageFacts(out);
    expect(facts.subject).toBe('Re: Quarterly figures');
    expect(facts.attachments.map((a) => a.name)).toEqual(attachments.map((a) => a.filename));
    const top = readEntity(out);
    const parts = multipartLayout(top.body, top.type.params.get('boundary')!).parts;
    expect(parts).toHaveLength(4);
    attachments.forEach((a, i) => expect(decodeBody(readEntity(parts[i + 1]!)).equals(a.content)).toBe(true));
  });

  it('cleans hostile file names: no path, no control or bidi characters, bounded, distinct', async () => {
    const hostile = [
      '../../../../home/alice/.ssh/authorized_keys',
      'C:\\fakepath\\..\\..\\Windows\\System32\\evil.dll',
      'invoice\u202Efdp.exe',
      'report.pdf\r\nX-Injected: 1',
      'report.pdf',
      '\u0000\u0007',
      '..',
      'a'.repeat(5000) + '.txt',
    ];
    const names = attachmentNames(hostile);
    expect(names.slice(0, 5)).toEqual(['authorized_keys', 'evil.dll', 'invoice_fdp.exe', 'report.pdf__X-Injected_ 1', 'report.pdf']);
    expect(names).toHaveLength(hostile.length);
    for (const n of names) {
      expect(n).not.toMatch(/[\/\\\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]/);
      expect(n.startsWith('.')).toBe(false);
      expect(n.length).toBeLessThanOrEqual(120);
    }
    expect(new Set(names.map((n) => n.toLowerCase())).size).toBe(names.length);

    const out = composeReply({ ...base, attachments: hostile.map((filename, i) => ({ filename, contentType: 'application/octet-stream', content: Buffer.from([i, 0, 255]) })) });
    checkLines(out);
    const p = await parseMail(out);
    expect(p.defects).toEqual([]);
    expect(p.parts.slice(1).map((x) => x.filename)).toEqual(names);
    expect(p.parts).toHaveLength(hostile.length + 1);
    for (const part of p.parts.slice(1)) expect(part.headers.map(([k]) => k.toLowerCase())).toEqual(['content-type', 'content-transfer-encoding', 'content-disposition']);
  });

  it('keeps only a plain type/subtype of what the browser claimed', () => {
    expect(attachmentType('image/PNG')).toBe('image/png');
    expect(attachmentType('text/plain; charset=utf-8')).toBe('text/plain');
    expect(attachmentType('text/html\r\nBcc: victim@example.org')).toBe('application/octet-stream');
    expect(attachmentType('multipart/mixed; boundary=x')).toBe('application/octet-stream');
    expect(attachmentType('message/rfc822')).toBe('application/octet-stream');
    expect(attachmentType('')).toBe('application/octet-stream');
    expect(attachmentType('../../x')).toBe('application/octet-stream');
  });

  it('lets no field in through the subject, the text or a message-id', async () => {
    const out = composeReply({
      ...base,
      subject: 'Re: hi\r\nBcc: victim@example.org\nX-Injected: 1\r\n\r\nbody?',
      text: 'line\r\n\r\nBcc: body@example.org\rstray CR\u0000NUL\u0007bell\n',
      inReplyTo: '<a@b>\r\nBcc: victim@example.org',
      references: ['<ok@example.com>', 'junk', '<x@y>\nTo: victim@example.org', '<ok@example.com>'],
    });
    checkLines(out);
    const p = await parseMail(out);
    expect(p.defects).toEqual([]);
    expect(fieldNames(p)).toEqual(['received', 'date', 'from', 'to', 'subject', 'message-id', 'references', 'mime-version', 'content-type', 'content-transfer-encoding']);
    expect(header(p, 'Subject')).toBe('Re: hi Bcc: victim@example.org X-Injected: 1 body?');
    expect(header(p, 'References')).toBe('<ok@example.com>');
    expect(header(p, 'To')).toBe('alice@example.com');
    // The text keeps its lines (a bare CR is a line end as the visitor's browser meant it), minus control characters.
    expect(p.payload!.toString('utf8')).toBe('line\n\nBcc: body@example.org\nstray CRNULbell\n');
  });

  it('folds a long subject in RFC 2047 words and bounds it', async () => {
    const subject = 'Re: ' + 'Ünïcödé '.repeat(200);
    const out = composeReply({ ...base, subject });
    checkLines(out);
    const p = await parseMail(out);
    expect(p.defects).toEqual([]);
    expect(header(p, 'Subject')).toBe(subject.trim().slice(0, 500).trim());
    expect(decodeWords(/^Subject: (.*(?:\r\n[ \t].*)*)/m.exec(headerBlock(out))![1]!.replace(/\r\n[ \t]/g, ''))).toBe(subject.trim().slice(0, 500));
  });

  it('refuses an address with no canonical form, and a reply to nobody', () => {
    expect(() => composeReply({ ...base, from: 'carol@partner.example>\r\nBcc: x@evil.example' })).toThrow(AddressNotCanonicalError);
    expect(() => composeReply({ ...base, to: ['alice@example.com, mallory@evil.example'] })).toThrow(AddressNotCanonicalError);
    expect(() => composeReply({ ...base, to: [] })).toThrow(AddressNotCanonicalError);
  });

  it('writes an internationalised address as it is (RFC 6532) and marks the envelope SMTPUTF8', async () => {
    const out = composeReply({ ...base, from: 'jürgen@partner.example', to: ['ålice@example.com'] });
    const p = await parseMail(out);
    expect(header(p, 'From')).toBe('jürgen@partner.example');
    const env = replyEnvelope({ from: 'jürgen@partner.example', to: ['ålice@example.com'], client: '2001:db8::7', now: NOW });
    expect(env).toMatchObject({ sender: 'jürgen@partner.example', smtputf8: true, body: '8BITMIME', client: { address: '2001:db8::7', trusted: false } });
    expect(headerBlock(composeReply({ ...base, client: '2001:db8::7' }))).toContain('Received: from [IPv6:2001:db8::7] ([IPv6:2001:db8::7])');
  });

  it('reads message-ids with or without brackets, and nothing else', () => {
    expect(msgId('abc@example.com')).toBe('<abc@example.com>');
    expect(msgId(' <abc@example.com> ')).toBe('<abc@example.com>');
    expect(msgId('<a b@example.com>')).toBeUndefined();
    expect(msgId('<abc@example.com> <def@example.com>')).toBeUndefined();
    expect(msgId('no-at-sign')).toBeUndefined();
  });
});

describe('spoolReply', () => {
  let dir: string;
  let spool: Spool;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'postern-compose-'));
    spool = await Spool.open(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the reply into incoming/ with its envelope, as smtpd does, for the worker to claim', async () => {
    const body = composeReply({ ...base, attachments: [{ filename: 'a.bin', contentType: 'application/octet-stream', content: randomBytes(600_000) }] });
    const envelope = replyEnvelope({ from: 'Carol@Partner.Example', to: ['alice@example.com', 'alice@EXAMPLE.com'], client: '198.51.100.7', now: NOW });
    expect(envelope).toEqual({
      sender: 'Carol@partner.example',
      recipients: [{ address: 'alice@example.com' }],
      client: { address: '198.51.100.7', port: 0, helo: '', hostname: '[198.51.100.7]', protocol: 'HTTPS', trusted: false },
      receivedAt: NOW.toISOString(),
    });
    const id = await spoolReply(spool, envelope, body);
    expect(await spool.list('incoming')).toEqual([id]);
    const entry = await spool.read('incoming', id);
    expect(entry.meta.envelope).toEqual(envelope);
    expect(entry.body.equals(body)).toBe(true);
    expect(readdirSync(join(dir, 'spool', 'tmp'))).toEqual([]);
    // The worker's claim takes it as it takes smtpd's entries.
    const claimed = await spool.claim(id);
    expect(claimed!.id).toBe(id);
    expect(claimed!.body.equals(body)).toBe(true);
  });

  it('refuses bytes smtpd would refuse (bare LF, bare CR, NUL) and leaves nothing behind', async () => {
    const envelope = replyEnvelope({ from: base.from, to: base.to, client: base.client });
    await expect(spoolReply(spool, envelope, Buffer.from('Subject: x\r\n\r\nbare\nLF\r\n'))).rejects.toThrow(BareNewlineError);
    await expect(spoolReply(spool, envelope, Buffer.from('Subject: x\r\n\r\nbare\rCR\r\n'))).rejects.toThrow(BareNewlineError);
    await expect(spoolReply(spool, envelope, Buffer.from('Subject: x\r\n\r\nNUL\0\r\n'))).rejects.toThrow(NulByteError);
    expect(await spool.list('incoming')).toEqual([]);
    expect(readdirSync(join(dir, 'spool', 'tmp'))).toEqual([]);
  });
});
