/**
 * mime: reading and (later) building MIME. For now the facts the policy engine needs about a
 * message — headers, attachments, priority, sensitivity, crypto state — and subject commands.
 *
 * Untrusted input: whole messages from the Internet; parsing is bounded (depth, part count) and
 * never throws. Secrets: none.
 */
export { messageFacts, subjectCommands } from './facts.js';
export { splitHeader, parseHeaders, parseParams, decodeWords } from './header-fields.js';
export { editHeaders, encodeHeaderValue, type HeaderEdits } from './headers.js';
export { addAttachments, type Attachment } from './compose.js';
export { splitMessage, joinMessage, readEntity, decodeBody, toCrlf, canonicalEntity, multipartLayout, multipartSigned, pkcs7MimeEntity } from './entity.js';
