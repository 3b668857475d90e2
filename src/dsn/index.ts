/**
 * dsn: delivery status notifications (RFC 3464 in a multipart/report, RFC 6522) for failed,
 * delayed and delivered recipients, and the RFC 3461 rules for who wants which notice. Pure: the
 * relay passes in the envelope, the queued message and per-recipient outcomes, and spools the
 * returned message itself, from <> to the original sender.
 *
 * Untrusted input: everything in the envelope (sender, recipients, ORCPT and ENVID xtext, chosen
 * by the SMTP client), remote servers' reply lines and host names, and the original message. None
 * of it may add a header line or break the MIME structure: values are reduced to one printable
 * line and folded under 998 octets, and the original is returned verbatim only when its bytes are
 * SMTP-safe (otherwise its header block, quoted-printable if need be).
 *
 * Secrets: none. A returned original may be plaintext mail, so it goes back only to the envelope
 * sender, and only what RET= and returnLimit allow.
 */
export type { DsnKind, DsnRecipient, DsnInput, DsnMessage } from './types.js';
export { buildDsn, headerBlock, DEFAULT_RETURN_LIMIT } from './build.js';
export { wantsNotice, enhancedStatus } from './status.js';
export { keepOriginal, keptOriginal, ORIGINAL_NOTE, type KeptOriginal, type KeepOptions } from './original.js';
export { decodeXtext, decodeOrcpt, type OriginalRecipient } from './xtext.js';
export { field, hostToken, isAscii, oneLine, quotedPrintable, wrap } from './fields.js';
