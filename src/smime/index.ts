/**
 * smime: S/MIME 4.0 (RFC 8551) on CMS (RFC 5652) — sign, verify, encrypt, decrypt — with the gaps
 * of pkijs closed here (DESIGN.md §6): RSA PKCS#1 v1.5 decryption with implicit rejection (Marvin),
 * AuthEnvelopedData with AES-GCM (RFC 5083/5084), ECDH key agreement (RFC 5753), and verification
 * that checks chain, key usage, EKU, signing time and the From: binding. Pure: bytes and prepared
 * keys in, bytes and verdicts out; no I/O.
 *
 * Untrusted input: every CMS blob and MIME entity of incoming mail; any input gives a result or a
 * SmimeError, never a crash. Padding and decryption failures are indistinguishable on purpose.
 * Secrets: the prepared signers and decryption keys hold private keys (Node KeyObjects); none of
 * them, nor any content key, is ever part of an error or a log line.
 */
export { SmimeError, type SmimeErrorCode } from './errors.js';
export { prepareRecipient, prepareDecryptionKey, type SmimeRecipient, type SmimeDecryptionKey } from './recipient-keys.js';
export { encrypt, type EncryptOptions, type ContentCipher } from './encrypt.js';
export { decrypt, envelopeRecipients, type Decrypted } from './decrypt.js';
export { prepareSigner, type SmimeSigner, type SignHash } from './signer.js';
export { signDetached, signOpaque, type SignOptions } from './sign.js';
export { verifyDetached, verifyOpaque, type VerifyOptions, type SignerResult, type SignatureStatus } from './verify.js';
export { prepareTrustStore, type TrustStore } from './chain.js';
export { decodeCapabilities, encodeCapabilities, type Capabilities } from './capabilities.js';
export { signMessage, encryptMessage, type SignMessageOptions } from './message.js';
export { addressesOf } from '../mime/index.js';
export { openMessage, resultHeaders, smimeResults, type OpenOptions, type OpenResult, type EncryptionReport, type SignatureReport } from './open.js';
export { encryptChunks } from './encrypt-stream.js';
export { signedEntityChunks, signingBoundary, type StreamSignOptions } from './sign-stream.js';
export { smimeMessageChunks, type StreamMessageOptions } from './message-stream.js';
