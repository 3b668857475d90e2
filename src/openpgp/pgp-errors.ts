/**
 * The message-level error type of openpgp/ (keys.ts has PgpKeyError for keys). `code` lets the
 * worker decide (hold, bounce, result header) without parsing text; the message is one sentence
 * for admins and never contains key material or plaintext.
 */
export type PgpErrorCode =
  | 'not-text' // inline PGP asked for a message that is not a single text/plain body
  | 'no-recipient' // nothing to encrypt to
  | 'bad-key' // a prepared key cannot do what was asked (no signing key, no secret)
  | 'sign-failed'
  | 'encrypt-failed';

export class PgpError extends Error {
  readonly code: PgpErrorCode;
  constructor(message: string, code: PgpErrorCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PgpError';
    this.code = code;
  }
}
