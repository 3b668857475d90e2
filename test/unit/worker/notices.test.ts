/**
 * The delivery report and the admin alert read back by Python's email package: the fields
 * (RFC 3834 Auto-Submitted, threading, RFC 2047 subjects), the text, and that nothing taken from
 * the original — a hostile subject or message id, or the body under an alert — gets where it must not.
 */
import { describe, expect, it } from 'vitest';
import { adminAlert, describeOutcome, originalHeadersOf, pdfPasswordNotice, senderNotice, wantsSenderNotice, type RecipientOutcome } from '../../../src/worker/notices.js';
import { header, parseMail } from '../../helpers/mail-parse.js';

const now = new Date('2024-03-12T10:00:00Z');
const outcomes: RecipientOutcome[] = [
  { recipient: 'a@example.net', delivery: 'sent', encryption: 'smime', signed: true },
  { recipient: 'b@example.org', delivery: 'sent', encryption: null, signed: false },
  { recipient: 'c@example.org', delivery: 'held', encryption: null, signed: false, reason: 'encryption required, but there is no S/MIME certificate or OpenPGP key for c@example.org' },
  { recipient: 'd@example.org', delivery: 'bounced', encryption: null, signed: false, reason: 'no mail to competitors' },
  { recipient: 'e@example.org', delivery: 'sent', encryption: 'pgp', signed: false },
];

function wellFormed(msg: Buffer): void {
  const text = msg.toString('latin1');
  expect(text.endsWith('\r\n')).toBe(true);
  expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  for (const line of text.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
  // Headers and text alike stay 7-bit: no SMTPUTF8 or 8BITMIME needed to send a notice.
  expect(/^[\x00-\x7f]*$/.test(text)).toBe(true);
}

/** The header block of our own bytes, for checks on fields a parser would merge or hide. */
const head = (msg: Buffer) => msg.subarray(0, msg.indexOf('\r\n\r\n') + 2).toString('latin1');

describe('senderNotice', () => {
  const original = Buffer.from('From: Alice <alice@example.com>\r\nSubject: =?UTF-8?Q?Quartalszahlen_f=C3=BCr_M=C3=A4rz?=\r\nDate: Mon, 11 Mar 2024 09:00:00 +0100\r\nMessage-ID: <orig.1@example.com>\r\n\r\nsecret body\r\n');

  it('reports per recipient what happened, threaded to the original, as an automatic reply', async () => {
    const msg = senderNotice({ hostname: 'gw.example.com', queueId: 'Q1', sender: 'alice@example.com', originalHeaders: originalHeadersOf(original), outcomes, now });
    wellFormed(msg);
    const p = await parseMail(msg);
    expect(p.defects).toEqual([]);
    expect(p.contentType).toBe('text/plain');
    expect(p.params.charset).toBe('utf-8');
    expect(header(p, 'From')).toBe('Mail Delivery System <MAILER-DAEMON@gw.example.com>');
    // Python writes an address without a display name bare; our bytes have the brackets.
    expect(header(p, 'To')).toBe('alice@example.com');
    expect(head(msg)).toContain('\r\nTo: <alice@example.com>\r\n');
    expect(header(p, 'Subject')).toBe('Delivery report: Quartalszahlen für März');
    expect(header(p, 'Auto-Submitted')).toBe('auto-replied');
    expect(header(p, 'In-Reply-To')).toBe('<orig.1@example.com>');
    expect(header(p, 'References')).toBe('<orig.1@example.com>');
    expect(header(p, 'Date')).toBe('Tue, 12 Mar 2024 10:00:00 +0000');
    expect(header(p, 'Message-ID')).toMatch(/^<[a-z0-9]+\.Q1\.report\.[0-9a-f]{12}@gw\.example\.com>$/);
    const text = p.payload!.toString('utf8');
    expect(text.replace(/\n/g, ' ')).toContain('Your message "Quartalszahlen für März" (sent Mon, 11 Mar 2024 09:00:00 +0100) was:');
    expect(text).toContain('- sent signed and encrypted (S/MIME) to a@example.net\n');
    expect(text).toContain('- sent unencrypted to b@example.org\n');
    expect(text).toContain('- sent encrypted (OpenPGP) to e@example.org\n');
    expect(text).toContain('- not delivered to d@example.org: no mail to competitors\n');
    // A long item wraps, its continuation indented under the text.
    expect(text).toMatch(/- held for c@example\.org: encryption required, but there is no S\/MIME\n {2}certificate or OpenPGP key for c@example\.org\n/);
    expect(text).toContain('waits until an administrator releases');
    expect(text).toContain('Queue ID: Q1');
    expect(text).not.toContain('secret body');
  });

  it('never lets the original add a header field, and falls back when it has no subject or id', async () => {
    const hostile = { subject: 'hi\r\nBcc: victim@example.org\r\n\r\nforged body', messageId: 'x\r\nBcc: v@example.org <ok@example.com>', date: 'today\r\nX-Evil: 1' };
    const msg = senderNotice({ hostname: 'gw.example.com', queueId: 'Q2', sender: 'alice@example.com', originalHeaders: hostile, outcomes: outcomes.slice(0, 1), now });
    wellFormed(msg);
    expect(head(msg)).not.toMatch(/^(Bcc|X-Evil):/im);
    const p = await parseMail(msg);
    expect(header(p, 'Subject')).toBe('Delivery report: hi Bcc: victim@example.org forged body');
    expect(header(p, 'In-Reply-To')).toBe('<ok@example.com>');
    expect(p.headers.map(([k]) => k.toLowerCase())).not.toContain('bcc');

    const bare = await parseMail(senderNotice({ hostname: 'gw.example.com', queueId: 'Q3', sender: 'alice@example.com', originalHeaders: {}, outcomes: outcomes.slice(1, 2), now }));
    expect(header(bare, 'Subject')).toBe('Delivery report: (no subject)');
    expect(header(bare, 'In-Reply-To')).toBeUndefined();
    expect(bare.payload!.toString()).toContain('Your message (no subject) was:');
    expect(() => senderNotice({ hostname: 'h', queueId: 'Q', sender: '', originalHeaders: {}, outcomes, now })).toThrow(/null sender/);
  });

  it('is not sent to the null sender or about automatic mail', () => {
    expect(wantsSenderNotice('alice@example.com', {})).toBe(true);
    expect(wantsSenderNotice('alice@example.com', { autoSubmitted: 'No' })).toBe(true);
    expect(wantsSenderNotice('', {})).toBe(false);
    expect(wantsSenderNotice('alice@example.com', { autoSubmitted: 'auto-replied' })).toBe(false);
    expect(wantsSenderNotice('alice@example.com', { autoSubmitted: 'auto-generated; owner-email="x@example.com"' })).toBe(false);
  });

  it('words each outcome', () => {
    const o = (x: Partial<RecipientOutcome>) => describeOutcome({ recipient: 'r@example.net', delivery: 'sent', encryption: null, signed: false, ...x });
    expect(o({ signed: true })).toBe('sent signed, unencrypted, to r@example.net');
    expect(o({ encryption: 'pdf' })).toBe('sent as an encrypted PDF to r@example.net');
    expect(o({ encryption: 'pdf', signed: true })).toBe('sent signed, as an encrypted PDF, to r@example.net');
    expect(o({ delivery: 'deleted', reason: 'spam' })).toBe('deleted by policy, not delivered to r@example.net: spam');
    expect(o({ delivery: 'held' })).toBe('held for r@example.net');
  });
});

describe('adminAlert', () => {
  const original = Buffer.from(
    'Received: from client.example.com by gw.example.com; Tue, 12 Mar 2024 09:59:00 +0000\r\nFrom: Bob <bob@example.com>\r\nTo: rival@competitor.example\r\n' +
      'Subject: =?UTF-8?B?UHJlaXNsaXN0ZSDDvGJlcnNpY2h0?=\r\nX-Long: ' + 'y'.repeat(1200) + '\r\nMessage-ID: <m2@example.com>\r\n\r\nCONFIDENTIAL PRICE LIST\r\n',
  );

  it('names the rule, the recipients and what was done, and carries the header block but never the body', async () => {
    const msg = adminAlert({
      hostname: 'gw.example.com',
      queueId: 'Q9',
      to: ['security@example.com', 'postmaster@example.com'],
      rules: ['no mail to competitors'],
      reason: 'the recipient domain is on the competitors list',
      sender: 'bob@example.com',
      recipients: [{ recipient: 'rival@competitor.example', delivery: 'held', encryption: null, signed: false, reason: 'held by policy' }, 'cc@example.org'],
      original,
      now,
    });
    wellFormed(msg);
    expect(msg.toString('latin1')).not.toContain('CONFIDENTIAL');
    const p = await parseMail(msg);
    expect(p.defects).toEqual([]);
    expect(header(p, 'From')).toBe('Postern <MAILER-DAEMON@gw.example.com>');
    expect(header(p, 'To')).toBe('security@example.com, postmaster@example.com');
    expect(header(p, 'Subject')).toBe('Policy alert: rule "no mail to competitors" (queue Q9)');
    expect(header(p, 'Auto-Submitted')).toBe('auto-generated');
    expect(header(p, 'In-Reply-To')).toBeUndefined();
    const text = p.payload!.toString('utf8');
    expect(text).toContain('Policy rule "no mail to competitors" matched a message.');
    expect(text).toContain('Reason: the recipient domain is on the competitors list');
    expect(text).toContain('Sender:    <bob@example.com>');
    expect(text).toContain('Subject:   Preisliste übersicht');
    expect(text).toContain('Recipients:\n- held for rival@competitor.example: held by policy\n- cc@example.org\n');
    // The header block as written (folding and encoded words kept); the long field survives quoted-printable.
    expect(text).toContain('Received: from client.example.com by gw.example.com; Tue, 12 Mar 2024 09:59:00 +0000\n');
    expect(text).toContain('Subject: =?UTF-8?B?UHJlaXNsaXN0ZSDDvGJlcnNpY2h0?=\n');
    expect(text).toContain(`X-Long: ${'y'.repeat(1200)}\n`);
    expect(text).toContain('Message-ID: <m2@example.com>');
    expect(text).not.toContain('CONFIDENTIAL');
  });

  it('stops at the first line that is not a header field, so a message without the empty line cannot leak its body', async () => {
    const broken = Buffer.from('From: bob@example.com\r\nSubject: x\r\nCONFIDENTIAL PRICE LIST\r\nmore: looks like a field\r\n');
    const msg = adminAlert({ hostname: 'gw.example.com', queueId: 'Q10', to: ['sec@example.com'], rules: ['a', 'b'], sender: '', recipients: [], original: broken, now });
    wellFormed(msg);
    const text = (await parseMail(msg)).payload!.toString('utf8');
    expect(text).toContain('Policy rules "a", "b" matched a message.');
    expect(text).toContain('Sender:    <> (the null sender)');
    expect(text).toMatch(/Subject: x\n$/);
    expect(text).not.toContain('CONFIDENTIAL');
    expect(text).not.toContain('looks like a field');
  });

  it('keeps hostile rule names and reasons out of the header block', async () => {
    const msg = adminAlert({ hostname: 'gw.example.com', queueId: 'Q11', to: ['sec@example.com\r\nBcc: x@example.org'], rules: ['r\r\nBcc: y@example.org'], reason: 'z\r\nBcc: z@example.org', sender: 'b@example.com', recipients: ['c@example.org'], original, now });
    wellFormed(msg);
    expect(head(msg)).not.toMatch(/^Bcc:/im);
    expect(() => adminAlert({ hostname: 'h', queueId: 'Q', to: [], rules: [], sender: '', recipients: [], original, now })).toThrow(/at least one address/);
  });
});

describe('PDF password notice', () => {
  it('tells the sender the password once, for whom, and how to pass it on; the original subject cannot add a field', async () => {
    const original = originalHeadersOf(Buffer.from('Subject: =?UTF-8?B?' + Buffer.from('Angebot für Sie\r\nBcc: x@evil.example').toString('base64') + '?=\r\nMessage-ID: <o1@example.com>\r\n\r\nbody'));
    const msg = pdfPasswordNotice({ hostname: 'gw.example.com', queueId: 'Q1', sender: 'alice@example.com', recipient: 'carol@plain.example', password: 'abcd-efgh-jkmn-pqrs-t', recipientScope: false, reset: false, originalHeaders: original, now });
    wellFormed(msg);
    expect(head(msg)).not.toMatch(/^Bcc:/im);
    const p = await parseMail(msg);
    expect(p.defects).toEqual([]);
    expect(header(p, 'Subject')).toBe('Password for encrypted PDF mail to carol@plain.example');
    expect(header(p, 'To')).toBe('alice@example.com');
    expect(header(p, 'Auto-Submitted')).toBe('auto-generated');
    expect(header(p, 'In-Reply-To')).toBe('<o1@example.com>');
    const text = p.payload!.toString('utf8').replace(/\s+/g, ' ');
    expect(text).toContain('Your message "Angebot für Sie Bcc: x@evil.example" went to carol@plain.example as an encrypted PDF.');
    expect(p.payload!.toString('utf8')).toMatch(/\n {4}abcd-efgh-jkmn-pqrs-t\r?\n/);
    expect(text).toMatch(/by telephone or in person, never by e-mail/);
    expect(text).toContain('every encrypted PDF you send to carol@plain.example');
  });

  it("an administrator's new password, and one password for all senders, are said as such", async () => {
    const reset = await parseMail(pdfPasswordNotice({ hostname: 'gw.example.com', queueId: 'Q2', sender: 'alice@example.com', recipient: 'dave@plain.example', password: 'wxyz-2345-6789-abcd-e', recipientScope: true, reset: true, now }));
    expect(header(reset, 'Subject')).toBe('New password for encrypted PDF mail to dave@plain.example');
    const text = reset.payload!.toString('utf8').replace(/\s+/g, ' ');
    expect(text).toContain('An administrator made a new password for the encrypted PDF mail you send to dave@plain.example.');
    expect(text).toContain('every encrypted PDF sent to dave@plain.example, from anyone here; the previous password opens only the PDFs sent before');
    expect(() => pdfPasswordNotice({ hostname: 'h', queueId: 'Q3', sender: '', recipient: 'x@y.example', password: 'p', recipientScope: false, reset: false })).toThrow(/null sender/);
  });
});

