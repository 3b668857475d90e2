/**
 * The one error type of pki/. `code` lets callers (CLI, portal) react without parsing the text;
 * the message is for people and never contains key material or a password.
 */
export type PkiErrorCode =
  | 'malformed' // not the structure it claims to be (truncated, garbage, trailing data)
  | 'unsupported' // well-formed, but an algorithm or format Postern does not handle
  | 'password-required' // encrypted, and no password was given
  | 'wrong-password' // the password does not open it (MAC or decryption failed)
  | 'invalid'; // parsed, but the content is unusable (e.g. a key that does not load)

export class PkiError extends Error {
  readonly code: PkiErrorCode;
  constructor(message: string, code: PkiErrorCode = 'malformed', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PkiError';
    this.code = code;
  }
}
