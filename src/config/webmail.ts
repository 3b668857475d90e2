/**
 * postern.yaml's `webmail` section after load: the recipient's notice given defaults that read
 * like a letter, its templates checked (a notice without the link would leave the recipient with
 * nothing to click), and the From: address in canonical form.
 *
 * The notice is all an outside recipient gets by mail, so its templates know only the sender,
 * the organisation and the link: never the message's subject or text.
 */
import { canonicalAddress } from '../core/address.js';
import type { RawConfig } from './schema.js';
import type { WebmailConfig } from './types.js';

export const DEFAULT_NOTICE_SUBJECT = 'Confidential message from {sender}';
export const DEFAULT_NOTICE_TEXT =
  '{sender} has sent you a confidential message. It is not in this e-mail: it waits for you in your secure mailbox at {organisation}:\n\n    {url}\n\nLog in with your e-mail address and your password. If this is the first message for you, {sender} will give you the password by telephone or in person (it is never sent by e-mail); you choose a new one when you first log in.\n\nMessages are kept there for a limited time only: save what you need.\n\n-- \n{organisation}';

/** The placeholders the templates may use; anything else in braces is left as written. */
export const NOTICE_PLACEHOLDERS = ['sender', 'organisation', 'url'] as const;

export function webmailConfig(raw: RawConfig, at: (key: (string | number)[], message: string) => void): WebmailConfig {
  const w = raw.webmail;
  if (w.notice_text !== undefined && !w.notice_text.includes('{url}')) at(['webmail', 'notice_text'], 'the notice must hold the mailbox link: put {url} into it');
  let from = `postmaster@${raw.hostname}`;
  if (w.notice_from !== undefined) {
    const c = canonicalAddress(w.notice_from);
    if (c) from = c;
    else at(['webmail', 'notice_from'], `${JSON.stringify(w.notice_from)} — expected a mail address like noreply@example.org`);
  }
  return {
    retention: w.retention,
    notice_subject: w.notice_subject ?? DEFAULT_NOTICE_SUBJECT,
    notice_text: w.notice_text ?? DEFAULT_NOTICE_TEXT,
    notice_from: from,
    ...(w.max_message_size !== undefined ? { max_message_size: w.max_message_size } : {}),
    ...(w.max_mailbox !== undefined ? { max_mailbox: w.max_mailbox } : {}),
  };
}
