/**
 * The human-readable first part, worded like Postfix's notices so that people (and helpdesks)
 * recognise them. It names recipients and reasons only; the message itself is never quoted here.
 */
import type { DsnInput, DsnRecipient } from './types.js';
import { hostToken, oneLine, rfc5322Date, validDate, wrap } from './fields.js';

const SIGNATURE = '                   The mail system';

function intro(input: DsnInput, returned: 'message' | 'headers'): string[] {
  const host = hostToken(input.reportingMta);
  const head = [`This is the mail system at host ${host}.`, ''];
  if (input.postmaster !== undefined) {
    return [
      ...head,
      'A message from the null sender (a delivery status notification or',
      'the like) could not be delivered, and there is no sender to tell.',
      'It comes to you, the postmaster, instead of being dropped.',
      '',
      `${returned === 'message' ? 'The undelivered message is' : 'Its headers are'} attached below.`,
    ];
  }
  if (input.kind === 'failure') {
    return [
      ...head,
      "I'm sorry to have to inform you that your message could not",
      `be delivered to one or more recipients. ${returned === 'message' ? "It's attached below." : 'Its headers are attached below.'}`,
      '',
      'For further assistance, please send mail to postmaster.',
      '',
      'If you do so, please include this problem report. You can',
      'delete your own text from the attached returned message.',
    ];
  }
  if (input.kind === 'delay') {
    const until = input.recipients
      .map((r) => r.willRetryUntil)
      .filter(validDate)
      .reduce<Date | undefined>((a, b) => (a && a > b ? a : b), undefined);
    return [
      ...head,
      '####################################################################',
      '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #',
      '####################################################################',
      '',
      'Your message could not be delivered yet to one or more recipients.',
      until ? `The mail system will keep trying until ${rfc5322Date(until)}.` : 'The mail system will keep trying for a while.',
      'Its headers are attached below.',
    ];
  }
  return [
    ...head,
    'Your message was successfully delivered to the destination(s)',
    'listed below. If the message was delivered to a mailbox you will',
    'receive no further notifications. Otherwise you may still receive',
    'notifications of mail delivery errors from other systems.',
  ];
}

function detail(r: DsnRecipient, utf8: boolean): string {
  const text = r.diagnostic ? oneLine(r.diagnostic.text, utf8) : '';
  const host = r.remoteMta ? hostToken(r.remoteMta) : '';
  if (r.action === 'delivered' || r.action === 'relayed') {
    const via = host ? `delivery via ${host}` : r.action;
    return text ? `${via}: ${text}` : via;
  }
  if (text) return r.diagnostic?.type === 'smtp' && host ? `host ${host} said: ${text}` : text;
  return r.action === 'failed' ? `delivery failed (status ${r.status})` : `delivery temporarily deferred (status ${r.status})`;
}

/** The text (CRLF line ends, ending with CRLF). */
export function humanText(input: DsnInput, utf8: boolean, returned: 'message' | 'headers'): string {
  const lines = [...intro(input, returned), '', SIGNATURE, ''];
  for (const r of input.recipients) {
    lines.push(...wrap('', `<${oneLine(r.address, utf8)}>: ${detail(r, utf8)}`, '    '), '');
  }
  return lines.join('\r\n') + '\r\n';
}
