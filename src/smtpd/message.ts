/**
 * One message being received, whichever command carries it (DATA or BDAT chunks): the body sink
 * of a transaction. Content goes straight into a spool writer (never the whole message in
 * memory) behind our Received header, while size and line endings are checked; `finish` commits
 * (250 only after fsync), and on any failure the writer is aborted, so nothing of a refused or
 * interrupted message is left in incoming/ or tmp/. The readers (dot-reader.ts, chunking.ts) only
 * push bytes: what a message is and where it goes is decided here, in one place.
 */
import { BareNewlineError, LocalError, MessageTooBigError, NulByteError, PosternError, SmtpTimeLimitError, SpoolWriteError } from '../core/index.js';
import type { IncomingWriter, PartialStore, PartialWriter, Spool } from '../spool/index.js';
import { LineEndingScanner } from './bare-newline.js';
import { checkpointOwner, DataCheckpoints } from './checkpoint.js';
import { buildEnvelope } from './envelope.js';
import { receivedHeader } from './received.js';
import type { SessionState, Transaction } from './session.js';

export type Failure = {
  ok: false;
  error: PosternError;
  /** For the log: size, bare CR, bare LF, NUL, spool, disconnect, data_timeout, local. */
  reason: string;
  /** The client's idea of where the message ended may differ from ours: close the connection. */
  hangUp: boolean;
};

export type MessageOutcome = { ok: true; id: string; size: number; recipients: number; sender: string; normalized: number } | Failure;

/** Wait for the disk after this many bytes, so a fast client cannot fill memory. */
const DRAIN_EVERY = 1 << 20;

/** RFC 1845: where a TRANSID transaction is kept (and the one a 355 reopened). */
export interface CheckpointOptions {
  partials: PartialStore;
  resumed?: PartialWriter | undefined;
}

export class IncomingMessage {
  private writer: IncomingWriter | PartialWriter | null = null;
  /** A checkpointed DATA transaction (TRANSID): marks and checkpoints, kept when the client is lost. */
  private checkpoints: DataCheckpoints | null = null;
  private failed: Failure | null = null;
  private aborting: Promise<void> = Promise.resolve();
  private sinceDrain = 0;
  /** Octets of content received so far (after dot-unstuffing), the Received header not counted. */
  received = 0;
  /** After abort(): the offset a checkpointed transaction was kept at for a resume (0: not kept). */
  keptAt = 0;

  private constructor(
    private readonly maxSize: number,
    /** null: BINARYMIME, stored as it is. */
    private readonly scanner: LineEndingScanner | null,
  ) {}

  /**
   * Start a message: the spool writer with the Received header. A spool that cannot take it is
   * not an error yet: the client is sending the message anyway, and is answered 451 at its end.
   */
  static async open(spool: Spool, state: SessionState, tx: Transaction, checkpoint?: CheckpointOptions): Promise<IncomingMessage> {
    const settings = state.settings;
    const binary = tx.body === 'BINARYMIME';
    const m = new IncomingMessage(settings.maxMessageSize, binary ? null : new LineEndingScanner(settings.bareNewline === 'normalize_trusted' && state.trusted));
    const resumed = checkpoint?.resumed;
    if (resumed) {
      // The stored transaction: its envelope and Received header are in the file already.
      m.writer = resumed;
      m.checkpoints = new DataCheckpoints(resumed);
      m.received = resumed.offset;
      m.sender = resumed.envelope.sender;
      m.recipients = resumed.envelope.recipients.length;
      return m;
    }
    const now = new Date();
    const envelope = buildEnvelope(state, tx, now);
    try {
      // RFC 1845 covers DATA only; BDAT content of a TRANSID transaction is received as usual.
      const partial = checkpoint && tx.transid && tx.transfer === 'DATA' && settings.checkpoint ? checkpoint.partials.begin(checkpointOwner(state), tx.transid, envelope) : null;
      if (partial) m.checkpoints = new DataCheckpoints(partial);
      m.writer = partial ?? (await spool.createIncoming(envelope));
      m.writer.write(
        receivedHeader({
          helo: state.helo ?? '',
          clientName: state.clientHostname,
          clientIp: state.remoteAddress,
          hostname: settings.hostname,
          protocol: envelope.client.protocol,
          queueId: m.writer.id,
          tls: state.tls,
          recipient: envelope.recipients.length === 1 ? envelope.recipients[0]!.address : undefined,
          utf8: envelope.smtputf8 === true,
          date: now,
        }),
      );
    } catch (err) {
      m.fail({ ok: false, error: asPosternError(err), reason: 'spool', hangUp: false });
    }
    m.sender = envelope.sender;
    m.recipients = envelope.recipients.length;
    return m;
  }

  private sender = '';
  private recipients = 0;

  /** The refusal decided so far (the rest of the message is read and thrown away). */
  get failure(): Failure | null {
    return this.failed;
  }

  /** Refuse the message: the first reason wins, unless `override` (a timeout ends the session). */
  fail(f: Failure, override = false): void {
    if (this.failed && !override) return;
    this.failed = f;
    if (this.writer) {
      const w = this.writer;
      this.writer = null;
      this.aborting = w.abort().catch(() => undefined);
    }
  }

  /** Content as it arrives. Resolves when the caller may read more (the disk kept up). */
  async push(chunk: Buffer): Promise<void> {
    this.received += chunk.length;
    if (this.failed) return;
    if (this.received > this.maxSize) return this.fail({ ok: false, error: new MessageTooBigError(), reason: 'size', hangUp: false });
    const cp = this.checkpoints;
    for (const piece of cp ? cp.pieces(chunk) : [chunk]) {
      let out: Buffer | null = piece;
      if (this.scanner) {
        out = this.scanner.push(piece);
        if (!out) return this.fail(this.byteFailure());
      }
      this.writer!.write(out);
      cp?.stored(piece);
      this.sinceDrain += out.length;
    }
    if (cp?.due) {
      try {
        await cp.checkpoint();
      } catch (err) {
        return this.fail({ ok: false, error: asPosternError(err), reason: 'spool', hangUp: false });
      }
    } else if (this.sinceDrain >= DRAIN_EVERY) {
      this.sinceDrain = 0;
      await this.writer?.drain();
    }
  }

  /** The whole message is in: commit it (durable in incoming/) or report why not. */
  async finish(): Promise<MessageOutcome> {
    if (!this.failed && this.scanner) {
      const tail = this.scanner.end();
      if (!tail) this.fail(this.byteFailure());
      else if (tail.length) this.writer!.write(tail);
    }
    if (this.failed) {
      await this.aborting;
      return this.failed;
    }
    const writer = this.writer!;
    this.writer = null;
    try {
      const id = await writer.commit();
      return { ok: true, id, size: this.received, recipients: this.recipients, sender: this.sender, normalized: this.scanner?.normalized ?? 0 };
    } catch (err) {
      return { ok: false, error: asPosternError(err), reason: 'spool', hangUp: false };
    }
  }

  /**
   * The client went away or ran out of time: throw the message away; resolves once it is gone.
   * A checkpointed one (RFC 1845) is kept instead, up to its last line start, for a resume.
   */
  async abort(f: Failure): Promise<Failure> {
    const w = this.writer;
    if (this.checkpoints && w && !this.failed && (f.reason === 'disconnect' || f.reason === 'data_timeout')) {
      this.writer = null;
      this.failed = f;
      this.keptAt = await (w as PartialWriter).keep();
      return f;
    }
    this.fail(f, true);
    await this.aborting;
    return f;
  }

  private byteFailure(): Failure {
    const v = this.scanner?.violation ?? 'bare LF';
    const error = v === 'NUL' ? new NulByteError() : new BareNewlineError();
    // With DATA the client's end of the message may not be ours (smuggling): hang up. BDAT
    // counts its octets, so the session stays in step and goes on.
    return { ok: false, error, reason: v, hangUp: true };
  }
}

export const timeoutFailure = (hostname: string): Failure => ({ ok: false, error: new SmtpTimeLimitError(hostname, 'DATA'), reason: 'data_timeout', hangUp: true });
export const disconnectFailure = (err?: unknown): Failure => ({ ok: false, error: new LocalError(err ?? new Error('client hung up')), reason: 'disconnect', hangUp: true });

function asPosternError(err: unknown): PosternError {
  return err instanceof PosternError ? err : new SpoolWriteError(err);
}
