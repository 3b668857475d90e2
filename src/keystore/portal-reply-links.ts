/**
 * What the portal does with a PDF reply link (issue 17), without the KEK and without postern.db:
 * find the link by its token's hash in portal.db, check the typed password against the verifier
 * stored with the link, then open the link's sealed data with the content root derived from the
 * same password. KEK-free like pdf-verifier.ts and portal-db.ts (role-imports.test.ts).
 *
 * Untrusted input: the token from the URL and the password from the form (format- and
 * length-checked before any look-up or scrypt). Secrets: the password; the opened data (the
 * original subject) is mail content, returned to the caller and never logged here.
 */
import { contentRoot, MAX_PDF_PASSWORD_BYTES, openReplyData, replyAad, replyTokenHash, verifyPdfPassword } from './pdf-verifier.js';
import type { PortalDb } from './portal-db.js';

/** What an opened reply link tells the reply page. */
export interface ReplyLinkContent {
  /** The original message's envelope sender: our user, whom the reply goes to. */
  sender: string;
  /** The outside recipient the PDF was made for (canonical): the replier. */
  recipient: string;
  /** The original Message-ID, for In-Reply-To and References. */
  messageId: string;
  subject: string;
  created: Date;
  expires: Date;
}

/**
 * The link's data, or null: unknown or expired token, wrong password, or a link whose data does
 * not open (altered row). A damaged verifier or KDF string throws PdfPasswordError (pdf-verifier.ts),
 * so the page can tell a broken row from a wrong password. Costs one scrypt for a wrong password
 * and two for the right one; the portal's lock-out counts the failures.
 */
export async function openReplyLink(db: PortalDb, token: string, password: string, now = new Date()): Promise<ReplyLinkContent | null> {
  const hash = replyTokenHash(token);
  if (!hash) return null;
  if (typeof password !== 'string' || !password || Buffer.byteLength(password.normalize('NFKC'), 'utf8') > MAX_PDF_PASSWORD_BYTES) return null;
  const link = await db.replyLink(hash, now);
  if (!link) return null;
  if (!(await verifyPdfPassword(link.verifier, password))) return null;
  const root = await contentRoot(password, link.contentKdf);
  try {
    const data = openReplyData(root, link.sealed, replyAad(hash, link.senderKey, link.recipientKey));
    if (!data) return null;
    return { sender: data.sender, recipient: link.recipient, messageId: data.messageId, subject: data.subject, created: link.created, expires: link.expires };
  } finally {
    root.fill(0);
  }
}
