/**
 * Webmail's notices read back by Python's email package: the recipient's notice carries the link
 * and the sender, and nothing of the message (its subject, its text); the sender's notice carries
 * the password once; hostile values (a subject with a header in it, an organisation with quotes
 * and umlauts, an admin's template with control characters) stay inside their field.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_NOTICE_SUBJECT, DEFAULT_NOTICE_TEXT } from '../../../src/config/webmail.js';
import { describeOutcome, originalHeadersOf } from '../../../src/worker/notices.js';
import { webmailPasswordNotice, webmailRecipientNotice } from '../../../src/worker/webmail-notices.js';
import { header, parseMail } from '../../helpers/mail-parse.js';

const now = new Date('2024-03-12T10:00:00Z');
const head = (msg: Buffer) => msg.subarray(0, msg.indexOf('\r\n\r\n') + 2).toString('latin1');

function wellFormed(msg: Buffer): void {
  const text = msg.toString('latin1');
  expect(text.endsWith('\r\n')).toBe(true);
  expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  for (const line of text.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
  expect(/^[\x00-\x7f]*$/.test(text)).toBe(true);
}

describe('webmailRecipientNotice', () => {
  it('names the sender and the link, from the organisation; no subject or text of the message exists to leak', async () => {
    const msg = webmailRecipientNotice({
      hostname: 'gw.example.com',
      queueId: 'Q1',
      sender: 'alice@example.com',
      recipient: 'bob@partner.example',
      url: 'https://mail.example.com/webmail/',
      organisation: 'Müller & "Söhne" GmbH',
      from: 'postmaster@gw.example.com',
      subject: DEFAULT_NOTICE_SUBJECT,
      text: DEFAULT_NOTICE_TEXT,
      now,
    });
    wellFormed(msg);
    const p = await parseMail(msg);
    expect(p.defects).toEqual([]);
    expect(p.contentType).toBe('text/plain');
    expect(header(p, 'From')).toBe('"Müller & \\"Söhne\\" GmbH" <postmaster@gw.example.com>');
    expect(header(p, 'To')).toBe('bob@partner.example');
    expect(header(p, 'Subject')).toBe('Confidential message from alice@example.com');
    expect(header(p, 'Auto-Submitted')).toBe('auto-generated');
    expect(header(p, 'Message-ID')).toMatch(/^<[a-z0-9]+\.Q1\.webmail\.[0-9a-f]{12}@gw\.example\.com>$/);
    // Not threaded to the original: its Message-ID is not the recipient's business either.
    expect(head(msg)).not.toMatch(/^(In-Reply-To|References):/im);
    const text = p.payload!.toString('utf8');
    // The link on a line of its own, whole (a mail client makes it clickable).
    expect(text).toMatch(/\n {4}https:\/\/mail\.example\.com\/webmail\/\r?\n/);
    expect(text.replace(/\s+/g, ' ')).toContain('alice@example.com has sent you a confidential message. It is not in this e-mail');
    expect(text.replace(/\s+/g, ' ')).toContain('-- Müller & "Söhne" GmbH');
    for (const line of text.split(/\r?\n/)) expect(line.length).toBeLessThanOrEqual(78);
  });

  it("keeps an admin's template's placeholders and other braces apart, and hostile values in their place", async () => {
    const msg = webmailRecipientNotice({
      hostname: 'gw.example.com',
      queueId: 'Q2',
      sender: 'eve@example.com\r\nBcc: x@evil.example',
      recipient: 'bob@partner.example',
      url: 'https://mail.example.com/webmail/',
      organisation: 'Example',
      from: 'noreply@example.com',
      subject: 'Neue Nachricht von {sender} {unknown}',
      text: 'Hallo,\n{sender} schreibt Ihnen.\x07\nLesen: {url}\n{organisation}',
      now,
    });
    wellFormed(msg);
    expect(head(msg)).not.toMatch(/^Bcc:/im);
    const p = await parseMail(msg);
    expect(p.defects).toEqual([]);
    expect(header(p, 'Subject')).toBe('Neue Nachricht von eve@example.com Bcc: x@evil.example {unknown}');
    const text = p.payload!.toString('utf8');
    expect(text).toContain('schreibt Ihnen.?');
    expect(text).toContain('Lesen: https://mail.example.com/webmail/');
    expect(text).toMatch(/\nExample\r?\n?$/);
  });
});

describe('webmailPasswordNotice', () => {
  const original = originalHeadersOf(Buffer.from('Subject: =?UTF-8?Q?Angebot_f=C3=BCr_Sie?=\r\nMessage-ID: <o1@example.com>\r\n\r\nsecret body\r\n'));

  it('tells our sender the password of the new mailbox, threaded to their message', async () => {
    const msg = webmailPasswordNotice({ hostname: 'gw.example.com', queueId: 'Q1', sender: 'alice@example.com', recipient: 'bob@partner.example', password: 'abcd-efgh-jkmn-pqrs-t', url: 'https://mail.example.com/webmail/', originalHeaders: original, now });
    wellFormed(msg);
    const p = await parseMail(msg);
    expect(p.defects).toEqual([]);
    expect(header(p, 'To')).toBe('alice@example.com');
    expect(header(p, 'Subject')).toBe('Password for the webmail mailbox of bob@partner.example');
    expect(header(p, 'In-Reply-To')).toBe('<o1@example.com>');
    const text = p.payload!.toString('utf8');
    expect(text).toMatch(/\n {4}abcd-efgh-jkmn-pqrs-t\r?\n/);
    expect(text).toMatch(/\n {4}https:\/\/mail\.example\.com\/webmail\/\r?\n/);
    const flat = text.replace(/\s+/g, ' ');
    expect(flat).toContain('Your message "Angebot für Sie" to bob@partner.example waits in a secure webmail mailbox');
    expect(flat).toContain('by telephone or in person, never by e-mail');
    expect(flat).not.toContain('secret body');
  });

  it("says a reset's loss: the messages sealed to the old key are gone", async () => {
    const one = await parseMail(webmailPasswordNotice({ hostname: 'gw.example.com', queueId: 'Q2', sender: 'alice@example.com', recipient: 'bob@partner.example', password: 'p', url: 'https://x.example/webmail/', reset: { removedMessages: 1 }, now }));
    expect(header(one, 'Subject')).toBe('New password for the webmail mailbox of bob@partner.example');
    expect(one.payload!.toString('utf8').replace(/\s+/g, ' ')).toContain('An administrator made a new password for the webmail mailbox of bob@partner.example. The 1 message in it could only be read with the old password and was removed.');
    const none = await parseMail(webmailPasswordNotice({ hostname: 'gw.example.com', queueId: 'Q3', sender: 'alice@example.com', recipient: 'bob@partner.example', password: 'p', url: 'https://x.example/webmail/', reset: { removedMessages: 0 }, now }));
    expect(none.payload!.toString('utf8')).not.toContain('removed');
    expect(() => webmailPasswordNotice({ hostname: 'h', queueId: 'Q', sender: '', recipient: 'bob@partner.example', password: 'p', url: 'u' })).toThrow(/null sender/);
  });
});

describe('the delivery report on webmail', () => {
  it('says the message went into the mailbox and the recipient was sent the link', () => {
    expect(describeOutcome({ recipient: 'bob@partner.example', delivery: 'sent', encryption: 'webmail', signed: false })).toBe('put into the webmail mailbox of bob@partner.example (who was sent a notice with the link)');
  });
});
