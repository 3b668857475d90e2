/**
 * mime: reading and building MIME — the facts the policy engine needs about a message (headers,
 * attachments, priority, sensitivity, crypto state), subject commands, header edits, the body
 * entity and its canonical form for signing (entity.ts), attachments added (compose.ts), remote
 * content neutralised (html.ts), header protection (RFC 9788: hp-*.ts).
 *
 * Untrusted input: whole messages from the Internet; parsing is bounded (depth, part count) and
 * never throws. Secrets: none.
 */
export { messageFacts, subjectCommands } from './facts.js';
export { messageFactsStreamed, type StreamedFacts } from './facts-stream.js';
export { splitHeader, parseHeaders, parseParams, decodeWords } from './header-fields.js';
export { editHeaders, encodeHeaderValue, type HeaderEdits } from './headers.js';
export { addAttachments, type Attachment } from './compose.js';
export { splitMessage, joinMessage, readEntity, decodeBody, toCrlf, canonicalEntity, multipartLayout, multipartSigned, pkcs7MimeEntity, pkcs7MimeMessage, withBase64Lines, newBoundary, encodeBase64Lines, encodeQuotedPrintable, headerFieldsRaw, multipartSignedHead, multipartSignedTail, pkcs7Head, type SignatureSpec, type SmimeType, type Entity, type SplitMessage, type MultipartLayout } from './entity.js';
export { stripRemoteContent, neutraliseRemoteContent } from './html.js';
export { addressesOf, signedMessageContext, fromBinding, bindSigner, sameMailbox, type FromBinding } from './addresses.js';
export { parameter } from './compose.js';
export { resultText, signatureField, signatureSummary, resultFields, encryptionFields, nestedCiphertextField, encryptionNotDoneField, unreadableSignatureField, type SignatureFacts, type MethodResults, type ResultMethod } from './results.js';
export { cryptoTree, cryptoMethods, comparePart, outside, cmsKind, firstPacketTag, fileName, type CryptoTree, type CryptoNode, type CryptoNodeKind, type CryptoMethod } from './crypto-tree.js';
export { bodyCiphertext, type BodyCiphertext } from './ciphertext.js';
export { protectedSection, type ProtectedSection, type HpForm } from './hp-section.js';
export { protectHeaders, OBSCURED_SUBJECT, type HeaderConfidentiality, type ProtectOptions, type ProtectedMessage } from './hp-compose.js';
export { planProtection, rewriteOuter, protectionField, outerFieldName, type ProtectionPlan, type ProtectionCover, type FieldChange } from './hp-apply.js';
export { withLegacyDisplay, LEGACY_DISPLAY_CLASS } from './hp-legacy.js';
export { checkMimeLimits, MIME_LIMITS, type MimeLimits } from './limits.js';
export { canonicalMultipartChunks } from './canonical-stream.js';
export { crlfChunks, base64LineChunks, canonicalScan, concatChunks, messageChunks, type CanonicalScan } from './stream.js';
export { scanBinary, scanBinaryChunks, type Layout as BinaryLayout } from './binary-scan.js';
export { dataFormOf, dataFormChunks, dataFormBuffer, type DataForm, type RangeReader } from './data-form.js';
