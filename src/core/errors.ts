/**
 * Typed errors. Each carries the SMTP reply it maps to (basic code + RFC 3463 enhanced status),
 * so smtpd, the relay and the DSN writer phrase the same failure the same way.
 */

export interface SmtpReply {
  /** Basic reply code, e.g. 550. */
  code: number;
  /** Enhanced status code (RFC 3463), e.g. "5.7.1". */
  status: string;
  /** Human-readable text, no CR/LF. */
  text: string;
}

export class PosternError extends Error {
  readonly reply: SmtpReply;
  constructor(reply: SmtpReply, options?: { cause?: unknown }) {
    super(reply.text, options);
    this.name = new.target.name;
    this.reply = reply;
  }
  /** The reply as one SMTP line without CRLF: "550 5.7.1 relay access denied". */
  get smtpLine(): string {
    return `${this.reply.code} ${this.reply.status} ${this.reply.text}`;
  }
  get temporary(): boolean {
    return this.reply.code >= 400 && this.reply.code < 500;
  }
}

/** Client may not send to this recipient (open-relay attempt, unsafe address). */
export class RelayDeniedError extends PosternError {
  constructor(text = 'relay access denied') {
    super({ code: 554, status: '5.7.1', text });
  }
}

export class MessageTooBigError extends PosternError {
  constructor(text = 'message exceeds fixed maximum message size') {
    super({ code: 552, status: '5.3.4', text });
  }
}

export class TooManyRecipientsError extends PosternError {
  constructor(text = 'too many recipients') {
    super({ code: 452, status: '4.5.3', text });
  }
}

/** Bare CR or LF in DATA: the SMTP smuggling defence (like Postfix smtpd_forbid_bare_newline). */
export class BareNewlineError extends PosternError {
  constructor(text = 'bare <CR> or <LF> received; use <CR><LF> line endings') {
    super({ code: 550, status: '5.5.2', text });
  }
}

/** The message could not be made durable (disk full, I/O error): the client should retry. */
export class SpoolWriteError extends PosternError {
  constructor(cause: unknown, text = 'local error in processing; try again later') {
    super({ code: 451, status: '4.3.0', text }, { cause });
  }
}

/**
 * The spool's file system is full (ENOSPC, EDQUOT) or below smtp.min_free_space: RFC 3463's
 * "mail system full", as Postfix answers when queue_minfree is not met. Temporary: the client
 * keeps the message and tries again; the worker and relay leave their input in place.
 */
export class InsufficientStorageError extends PosternError {
  constructor(cause?: unknown, text = 'insufficient system storage') {
    super({ code: 452, status: '4.3.1', text }, { cause });
  }
}

/** NUL in DATA: refused in every mode (see smtpd/bare-newline.ts). */
export class NulByteError extends PosternError {
  constructor(text = 'NUL character in message data') {
    super({ code: 550, status: '5.6.0', text });
  }
}

/** A MAIL/RCPT parameter we do not implement (RFC 5321 4.1.1.11: 555). */
export class UnsupportedParameterError extends PosternError {
  constructor(text = 'unsupported MAIL FROM/RCPT TO parameter') {
    super({ code: 555, status: '5.5.4', text });
  }
}

export class ParameterSyntaxError extends PosternError {
  constructor(text: string) {
    super({ code: 501, status: '5.5.4', text });
  }
}

export class RecipientSyntaxError extends PosternError {
  constructor(text = 'bad recipient address syntax') {
    super({ code: 501, status: '5.1.3', text });
  }
}

/**
 * An address with no canonical form (core/address.ts): invisible characters, an invalid IDN, a
 * local part that is neither dot-atom nor quoted string. 553 as RFC 5321 §4.2.2 has it for
 * "mailbox name not allowed"; X.1.3 for a recipient, X.1.7 for the sender (RFC 3463).
 */
export class AddressNotCanonicalError extends PosternError {
  constructor(who: 'sender' | 'recipient', detail: string) {
    super({ code: 553, status: who === 'sender' ? '5.1.7' : '5.1.3', text: `${who} address rejected: ${detail}` });
  }
}

/** Non-ASCII in an address of a transaction without SMTPUTF8 (RFC 6531 §3.5, 553 5.6.7). */
export class NonAsciiAddressError extends PosternError {
  constructor(who: 'sender' | 'recipient') {
    super({ code: 553, status: '5.6.7', text: `non-ASCII ${who} address not permitted without SMTPUTF8` });
  }
}

/** REQUIRETLS (RFC 8689) on MAIL FROM in a session without TLS: RFC 5248's "encryption needed". */
export class EncryptionNeededError extends PosternError {
  constructor(text = 'REQUIRETLS needs a TLS session; use STARTTLS first') {
    super({ code: 530, status: '5.7.10', text });
  }
}

/** A command in the wrong place (RFC 5321 503): DATA after BODY=BINARYMIME, DATA and BDAT mixed. */
export class BadSequenceError extends PosternError {
  constructor(text: string) {
    super({ code: 503, status: '5.5.1', text });
  }
}

/** Over max_connections: Postfix anvil's reply. */
export class TooManyConnectionsError extends PosternError {
  constructor(hostname: string) {
    super({ code: 421, status: '4.7.0', text: `${hostname} Error: too many connections` });
  }
}

/** Over max_connections_per_client: Postfix's anvil text, naming the counted client (IPv6: its /64). */
export class TooManyClientConnectionsError extends PosternError {
  constructor(hostname: string, client: string) {
    super({ code: 421, status: '4.7.0', text: `${hostname} Error: too many connections from ${client}` });
  }
}

/**
 * The client is too slow: DATA over smtp.data_timeout, or a session over smtp.session_timeout.
 * 4.4.2 ("bad connection"), as Postfix answers a timeout; the client keeps the message and retries.
 */
export class SmtpTimeLimitError extends PosternError {
  constructor(hostname: string, what: 'DATA' | 'session') {
    super({ code: 421, status: '4.4.2', text: `${hostname} Error: ${what === 'DATA' ? 'message not received in time' : 'session time limit exceeded'}; closing connection` });
  }
}

/** A bug or an unexpected failure in our handlers: the client should try again later. */
export class LocalError extends PosternError {
  constructor(cause: unknown) {
    super({ code: 451, status: '4.3.0', text: 'local error in processing; try again later' }, { cause });
  }
}

export class ShuttingDownError extends PosternError {
  constructor(hostname: string) {
    super({ code: 421, status: '4.3.2', text: `${hostname} service shutting down` });
  }
}

// RFC 1845 CHECKPOINT/RESTART (smtpd/checkpoint.ts).

/** A TRANSID that is still being received on another connection (not yet known to be dead). */
export class TransactionBusyError extends PosternError {
  constructor() {
    super({ code: 451, status: '4.3.0', text: 'this TRANSID is in use by another connection; try again later' });
  }
}

/** MAIL FROM of a resumed TRANSID whose sender or parameters differ from the stored ones. */
export class TransactionChangedError extends PosternError {
  constructor(what: string) {
    super({ code: 501, status: '5.5.4', text: `TRANSID belongs to a transaction with another ${what}` });
  }
}

/** DATA after a 355, but the partial transaction could not be resumed (gone, or damaged): send it all again. */
export class ResumeFailedError extends PosternError {
  constructor() {
    super({ code: 451, status: '4.3.0', text: 'the checkpointed transaction cannot be resumed; send the whole message again' });
  }
}

/** RCPT TO after a 355 naming a recipient the stored transaction does not have. */
export class ResumedRecipientError extends PosternError {
  constructor() {
    super({ code: 503, status: '5.5.1', text: 'a resumed transaction keeps its recipients' });
  }
}

/** BDAT after a 355: the RFC restarts DATA. */
export class ResumeNeedsDataError extends PosternError {
  constructor() {
    super({ code: 503, status: '5.5.1', text: 'a resumed transaction continues with DATA' });
  }
}

/** A spool entry on disk is damaged or of an unknown format. Never deleted; moved to corrupt/. */
export class CorruptEntryError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'CorruptEntryError';
  }
}

/** Configuration problems, each with the file, line and key (see config/). */
export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatConfigProblem).join('\n'));
    this.name = 'ConfigError';
  }
}

export interface ConfigProblem {
  file: string;
  /** 1-based; 0 when the problem has no place in the file (e.g. file missing). */
  line: number;
  column: number;
  /** Dotted key path, e.g. "smtp.max_message_size". Empty for the whole file. */
  key: string;
  message: string;
}

export function formatConfigProblem(p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
  return p.key ? `${where}: ${p.key}: ${p.message}` : `${where}: ${p.message}`;
}
