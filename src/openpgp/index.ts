/**
 * openpgp: OpenPGP with openpgp.js — the keys the keystore holds (read, describe, generate,
 * export), and messages: PGP/MIME (RFC 3156) and inline PGP, outbound (sign, encrypt) and inbound
 * (decrypt, verify, with the EFAIL and signature-spoofing rules of open.ts). Pure: bytes and
 * prepared keys in, bytes and verdicts out; no I/O.
 *
 * Untrusted input: keys from admins, key servers, WKD and Autocrypt headers, and every incoming
 * message (parsed by openpgp.js; every failure is a message or a report, never a crash).
 * Secrets: decrypted secret keys are returned to the keystore to be sealed; exported only
 * passphrase-protected; prepared signers and decryption keys hold them in memory, never in an
 * error or a log line.
 */
export { parsePgpKeys, generatePgpKey, mergePgpKey, revocationCertificateIssuer, applyRevocationCertificate, armorPublicKey, armorPublicKeys, exportSecretKey, PgpKeyError, type PgpKeyInfo, type PgpSubkeyInfo, type ParsedPgpKey } from './keys.js';
export { preparePgpRecipient, preparePgpSigner, preparePgpDecryptionKey, preparePgpVerificationKey, type PgpRecipient, type PgpSigner, type PgpDecryptionKey, type PgpVerificationKey } from './prepared.js';
export { PgpError, type PgpErrorCode } from './pgp-errors.js';
export { pgpSignMessage, pgpEncryptMessage, type PgpSignOptions, type PgpEncryptOptions } from './message.js';
export { pgpMessageChunks, type PgpStreamOptions } from './message-stream.js';
export { pgpInlineMessage } from './inline.js';
export { pgpOpenMessage, pgpResultHeaders, pgpResults, type PgpOpenOptions, type PgpOpenResult, type PgpEncryptionReport, type PgpSignatureReport } from './open.js';
export { WILDCARD_KEY_ID } from './pgp-decrypt.js';
export { decryptAttachments, type AttachmentResult } from './attachments.js';
export { isPgpCiphertext } from './ciphertext.js';
