/**
 * CHECKPOINT/RESTART (RFC 1845), the protocol side; the files are spool/partial.ts.
 *
 * A client that sees CHECKPOINT in our EHLO reply may give TRANSID=<local@domain> on MAIL FROM.
 * If that transaction's DATA is cut off (the connection lost, the DATA time limit), what arrived
 * up to the last checkpoint is kept; a later MAIL FROM with the same TRANSID from the same client
 * (address, EHLO name, TLS or not) is answered "355 <offset> is the transaction offset" instead
 * of 250, the envelope is the stored one, and after DATA/354 the client sends the message from
 * that offset on.
 *
 * The offset counts octets of the message data as the client holds it: after un-dot-stuffing,
 * without the terminating "." line (that is SMTP's encoding of the data, not the data; the RFC
 * counts "octets in the actual message data"), and without the Received header we add. It only
 * ever falls at the start of a line: a mark is set right after a CRLF of the client's data,
 * never after a lone CR or inside "CRLF." — so the resumed data starts where a DATA body starts
 * (at a line beginning, where the client dot-stuffs and we un-stuff alike) and the line-ending
 * checks start afresh. Checkpoints are written every CHECKPOINT_EVERY octets and when the
 * connection is lost; an offset is announced only once its checkpoint is on disk.
 *
 * BDAT: the RFC predates CHUNKING and says nothing of it. A TRANSID transaction whose content
 * comes by BDAT is received without checkpoints (a cut one is discarded as usual, and its TRANSID
 * then starts afresh); after a 355 the rest must come by DATA.
 *
 * Untrusted input: the TRANSID (syntax and length checked before it is used, and only ever hashed
 * into a file name), the envelope of a resumed transaction (compared with the stored one).
 */
import { addressKey, ParameterSyntaxError, ResumeFailedError, TransactionBusyError, TransactionChangedError, type Envelope, type PosternError, type Recipient } from '../core/index.js';
import type { PartialOwner, PartialStore, PartialWriter } from '../spool/index.js';

/** RFC 1845 §2: "transid-value may not be longer than 80 characters" (brackets included). */
export const TRANSID_MAX = 80;
/** Octets between two checkpoints while DATA goes on (each costs three fsyncs). */
export const CHECKPOINT_EVERY = 1 << 20;

const CR = 0x0d;
const LF = 0x0a;

/** RFC 2045 tspecials, which RFC 1845's transid-atom excludes with SPACE and CTLs. */
const TSPECIALS = new Set('()<>@,;:\\"/[]?='.split(''));

function isAtom(s: string): boolean {
  if (!s) return false;
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (c <= 0x20 || c >= 0x7f || TSPECIALS.has(ch)) return false;
  }
  return true;
}

function isToken(s: string): boolean {
  return s.split('.').every(isAtom);
}

/**
 * The TRANSID value, checked: "<" transid-local "@" transid-domain ">", each a dot-separated
 * series of atoms, at most 80 characters. Case is kept (the RFC: case-sensitive). Throws
 * ParameterSyntaxError (501 5.5.4) otherwise.
 */
export function parseTransid(value: string | true | undefined): string {
  if (typeof value !== 'string') throw new ParameterSyntaxError('TRANSID needs a value');
  if (value.length > TRANSID_MAX) throw new ParameterSyntaxError(`TRANSID longer than ${TRANSID_MAX} characters`);
  const m = /^<([^@]*)@([^@]*)>$/.exec(value);
  if (!m || !isToken(m[1]!) || !isToken(m[2]!)) throw new ParameterSyntaxError('TRANSID syntax is <local@domain>');
  return value;
}

/** What a MAIL FROM sets that must be the same when a transaction is resumed. */
export type MailRequest = Pick<Envelope, 'sender' | 'body' | 'smtputf8' | 'requireTls' | 'ret' | 'envid'>;

/** The field of `mail` that differs from the stored envelope, or null. */
export function envelopeChange(stored: Envelope, mail: MailRequest): string | null {
  if (addressKey(stored.sender) !== addressKey(mail.sender)) return 'sender';
  const same = (a: unknown, b: unknown) => (a ?? null) === (b ?? null);
  if (!same(stored.body ?? '7BIT', mail.body ?? '7BIT')) return 'BODY';
  if (!same(stored.smtputf8 === true, mail.smtputf8 === true)) return 'SMTPUTF8';
  if (!same(stored.requireTls === true, mail.requireTls === true)) return 'REQUIRETLS';
  if (!same(stored.ret, mail.ret)) return 'RET';
  if (!same(stored.envid, mail.envid)) return 'ENVID';
  return null;
}

/** RCPT TO after a 355: accepted only for a recipient the stored transaction already has. */
export function isStoredRecipient(stored: readonly Recipient[], address: string): boolean {
  const key = addressKey(address);
  return stored.some((r) => addressKey(r.address) === key);
}

export type MailDecision =
  /**
   * A cut transaction of this client: answer `reply` (355) and take the stored envelope; DATA
   * resumes it (PartialStore.resume, which checks the body) from `offset`.
   */
  | { kind: 'resume'; offset: number; envelope: Envelope; reply: string }
  /** Nothing to resume: 250 as usual; DATA begins a checkpointed transaction with this TRANSID. */
  | { kind: 'fresh'; transid: string; dropped?: 'expired' }
  | { kind: 'refuse'; error: PosternError };

/**
 * The answer to MAIL FROM ... TRANSID=<...>. Nothing is opened here: a session that never gets
 * to DATA (RSET, QUIT, a lost connection) leaves the partial transaction as it was.
 */
export function decideMail(store: PartialStore, owner: PartialOwner, transid: string, mail: MailRequest): MailDecision {
  const r = store.peek(owner, transid);
  if (!r.ok) {
    if (r.reason === 'busy') return { kind: 'refuse', error: new TransactionBusyError() };
    return r.reason === 'none' ? { kind: 'fresh', transid } : { kind: 'fresh', transid, dropped: r.reason };
  }
  // Kept as it is for the client that sends the right MAIL FROM; it expires otherwise.
  const change = envelopeChange(r.record.envelope, mail);
  if (change) return { kind: 'refuse', error: new TransactionChangedError(change) };
  return { kind: 'resume', offset: r.record.offset, envelope: r.record.envelope, reply: `355 ${r.record.offset} is the transaction offset` };
}

/**
 * DATA of a transaction that MAIL FROM answered with 355: the partial transaction opened at the
 * offset announced. A ResumeFailedError when it is gone meanwhile (another connection of the same
 * client took it, or its bytes no longer match their checksum): the client sends it all again.
 */
export async function resumeAt(store: PartialStore, owner: PartialOwner, transid: string, offset: number): Promise<PartialWriter> {
  const r = store.resume(owner, transid);
  if (r.ok && r.writer.offset === offset) return r.writer;
  if (r.ok) await r.writer.keep();
  throw r.ok || r.reason !== 'busy' ? new ResumeFailedError() : new TransactionBusyError();
}

/**
 * Between the un-dot-stuffed DATA stream and a PartialWriter: splits each chunk after its last
 * CRLF so a mark can be set there, counts the client's octets, and says when a checkpoint is due.
 * The caller runs each piece through its line-ending checks, writes what they return, then calls
 * stored(piece).
 */
export class DataCheckpoints {
  private octets: number;
  private since = 0;
  /** The client's last octet before the current piece (a CR there pairs with an LF first in the next). */
  private lastByte = -1;

  constructor(
    private readonly writer: PartialWriter,
    private readonly every = CHECKPOINT_EVERY,
  ) {
    this.octets = writer.offset;
  }

  /** Octets of message data received, the resumed part included. */
  get offset(): number {
    return this.octets;
  }

  /** `chunk` as one or two pieces: the first ends right after its last CRLF (when there is one). */
  pieces(chunk: Buffer): Buffer[] {
    let at = chunk.lastIndexOf(LF);
    while (at >= 0) {
      const before = at > 0 ? chunk[at - 1] : this.lastByte;
      if (before === CR) break;
      at = at > 0 ? chunk.lastIndexOf(LF, at - 1) : -1;
    }
    if (at < 0 || at === chunk.length - 1) return [chunk];
    return [chunk.subarray(0, at + 1), chunk.subarray(at + 1)];
  }

  /** `piece` (from pieces()) has been written: mark it when it ends a line. */
  stored(piece: Buffer): void {
    if (piece.length === 0) return;
    const prev = piece.length > 1 ? piece[piece.length - 2]! : this.lastByte;
    this.octets += piece.length;
    this.since += piece.length;
    this.lastByte = piece[piece.length - 1]!;
    if (this.lastByte === LF && prev === CR) this.writer.mark(this.octets);
  }

  get due(): boolean {
    return this.since >= this.every;
  }

  /** Write a checkpoint at the last mark (InsufficientStorageError / SpoolWriteError on failure). */
  async checkpoint(): Promise<void> {
    this.since = 0;
    await this.writer.checkpoint();
  }
}

/** Who may resume a session's checkpointed transaction: its address, EHLO name, TLS or not. */
export function checkpointOwner(session: { remoteAddress: string; helo?: string; tls?: unknown }): PartialOwner {
  return { address: session.remoteAddress, helo: session.helo ?? '', tls: !!session.tls };
}
