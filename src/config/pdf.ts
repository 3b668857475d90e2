/**
 * postern.yaml's `pdf` section after load: paths resolved against the config file and checked
 * readable (a missing logo is a config error with its line, not a worker failure on the first PDF),
 * and the texts a mail admin would otherwise have to write given defaults that read like a letter
 * (the instructions and the carrying mail's text are chosen per PDF when not configured: they
 * speak of the Reply button only where there is one).
 */
import { resolve } from 'node:path';
import type { RawConfig } from './schema.js';
import type { PdfConfig } from './types.js';

export const DEFAULT_COVER_TEXT =
  'This message was sent to you encrypted, so that only you can read it. Its text and all its attachments are in this PDF document, which opens with the password the sender gave you.';
export const DEFAULT_INSTRUCTIONS =
  'Keep this document safe: anyone with the password can read it. The attachments are in the document; your PDF reader lists them (in most readers under the paper-clip icon) and saves them.\n\nTo answer in confidence, use the Reply button below: it opens a web page where you enter the same password and write your reply. Do not answer by plain e-mail if the content is confidential.';
/** Without a Reply link (no portal.url, or the rule's `reply: false`): how to answer instead. */
export const DEFAULT_INSTRUCTIONS_NO_REPLY =
  'Keep this document safe: anyone with the password can read it. The attachments are in the document; your PDF reader lists them (in most readers under the paper-clip icon) and saves them.\n\nTo answer, write to the sender. Do not put confidential content into a plain e-mail: ask the sender how to send it safely.';
export const DEFAULT_MESSAGE_TEXT_NO_REPLY =
  '{sender} has sent you a confidential message. It is attached as an encrypted PDF document.\n\nOpen the attachment with any PDF reader and enter the password {sender} has given you (by telephone or in person; it is never sent by e-mail). If you do not have the password, ask {sender}.\n\n-- \n{organisation}';
export const DEFAULT_MESSAGE_TEXT =
  '{sender} has sent you a confidential message. It is attached as an encrypted PDF document.\n\nOpen the attachment with any PDF reader and enter the password {sender} has given you (by telephone or in person; it is never sent by e-mail). If you do not have the password, ask {sender}.\n\nThe PDF also has a Reply button for a confidential answer.\n\n-- \n{organisation}';

export async function pdfConfig(
  raw: RawConfig,
  base: string,
  readable: (path: string) => Promise<string | null>,
  at: (key: (string | number)[], message: string) => void,
): Promise<PdfConfig> {
  const p = raw.pdf;
  const logo = p.logo !== undefined ? resolve(base, p.logo) : undefined;
  if (logo) {
    const err = await readable(logo);
    if (err) at(['pdf', 'logo'], `${logo}: ${err}`);
    else if (!/\.(png|jpe?g)$/i.test(logo)) at(['pdf', 'logo'], `${logo}: expected a PNG or JPEG file (.png, .jpg, .jpeg)`);
  }
  const fonts = p.fonts?.map((f) => resolve(base, f));
  for (const [i, f] of (fonts ?? []).entries()) {
    const err = await readable(f);
    if (err) at(['pdf', 'fonts', i], `${f}: ${err}`);
  }
  // "mail.example.org" → "example.org": the organisation's own name is better, this is a start.
  const domain = raw.hostname.split('.').slice(-2).join('.');
  return {
    cipher: p.cipher,
    password_scope: p.password_scope,
    reply_validity: p.reply_validity,
    organisation: p.organisation ?? domain,
    ...(logo ? { logo } : {}),
    cover_text: p.cover_text ?? DEFAULT_COVER_TEXT,
    ...(p.instructions !== undefined ? { instructions: p.instructions } : {}),
    reply_label: p.reply_label,
    ...(p.message_text !== undefined ? { message_text: p.message_text } : {}),
    ...(p.message_html !== undefined ? { message_html: p.message_html } : {}),
    ...(fonts ? { fonts } : {}),
    max_attachments: p.max_attachments,
  };
}
