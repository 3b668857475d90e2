/**
 * The one error type of the PDF security handler. `code` lets the caller decide (hold the message,
 * tell the admin) without parsing text. Messages never contain the password or any key.
 */
export type PdfSecurityErrorCode =
  | 'password-unusable' // the password cannot be used with the chosen cipher (or is empty / prohibited)
  | 'unsupported-document'; // the document holds something the handler cannot encrypt faithfully

export class PdfSecurityError extends Error {
  readonly code: PdfSecurityErrorCode;
  constructor(message: string, code: PdfSecurityErrorCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PdfSecurityError';
    this.code = code;
  }
}
