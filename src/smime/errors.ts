/**
 * The one error type of smime/. `code` lets the worker decide (hold, result header, defer) without
 * parsing text; the message is for admins and never contains key material. Decryption failures
 * that could act as a padding oracle (PKCS#1 v1.5, CBC padding) all surface as 'decrypt-failed'
 * with the same text, whatever went wrong inside.
 */
export type SmimeErrorCode =
  | 'malformed' // not valid CMS / not the structure it claims to be (truncated, garbage)
  | 'unsupported' // well-formed, but an algorithm or content type Postern does not handle
  | 'no-recipient' // encrypted, but to none of the keys we hold
  | 'decrypt-failed' // a key of ours was addressed, but the content did not decrypt (wrong key, tampered)
  | 'integrity' // AuthEnvelopedData tag or MAC mismatch (tampered or truncated ciphertext)
  | 'bad-key' // a certificate or private key of ours cannot be used (mismatch, wrong type, no key usage)
  | 'no-content'; // detached signature without the signed content, or an empty structure

export class SmimeError extends Error {
  readonly code: SmimeErrorCode;
  constructor(message: string, code: SmimeErrorCode = 'malformed', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SmimeError';
    this.code = code;
  }
}
