/**
 * The message content: DATA (RFC 5321, dot-terminated) and BDAT (RFC 3030 CHUNKING, counted
 * octets). Both feed one IncomingMessage per transaction (message.ts) and answer from its
 * outcome; what differs is only how the end is found. BDAT chunks are read to their last octet
 * whatever happens — a refused chunk, a message over the size limit, BDAT without MAIL — so that
 * the session stays in step with a client that pipelined them (RFC 3030 4.2).
 */
import { BadSequenceError, LocalError, MessageTooBigError, PosternError, ResumeNeedsDataError } from '../core/index.js';
import type { PartialWriter } from '../spool/index.js';
import { checkpointOwner, resumeAt } from './checkpoint.js';
import { countAccepted } from '../log/index.js';
import type { Connection } from './connection.js';
import { DotReader } from './dot-reader.js';
import { IncomingMessage, type MessageOutcome } from './message.js';
import { fromError, PROTOCOL, reply } from './replies.js';

/** Content is read in pieces of at most this size. */
const PIECE = 64 * 1024;
/** BDAT <chunk-size> is 1*DIGIT; twenty digits is more than any message we would take. */
const BDAT_LINE = /^BDAT +(\d{1,20})( +LAST)? *$/i;

export async function data(conn: Connection): Promise<void> {
  const tx = conn.state.tx;
  if (!tx || !tx.recipients.length) return conn.protocolError(PROTOCOL.needRcpt);
  if (tx.transfer) return conn.protocolError(fromError(new BadSequenceError('DATA after BDAT in one transaction')));
  if (tx.body === 'BINARYMIME') return conn.protocolError(fromError(new BadSequenceError('BODY=BINARYMIME needs BDAT, not DATA')));
  tx.transfer = 'DATA';
  // After a 355: the stored transaction, opened at the offset announced, or no 354 at all.
  let resumed: PartialWriter | undefined;
  if (tx.resume) {
    try {
      resumed = await resumeAt(conn.host.partials, checkpointOwner(conn.state), tx.transid!, tx.resume.offset);
    } catch (err) {
      conn.state.tx = null;
      return conn.sendError(err instanceof PosternError ? err : new LocalError(err), 'transid');
    }
  }
  const msg = await IncomingMessage.open(conn.host.spool, conn.state, tx, { partials: conn.host.partials, resumed });
  conn.message = msg;
  conn.startDataClock();
  conn.send(PROTOCOL.startData);
  const reader = new DotReader();
  for (;;) {
    const piece = await conn.input.some(PIECE, conn.beforeWait);
    if (!piece) return; // the client left or data_timeout: the connection aborts the message
    const step = reader.push(piece);
    for (const c of step.content) await msg.push(c);
    if (step.done) {
      conn.input.unread(step.rest!);
      break;
    }
  }
  await answer(conn, await msg.finish(), true);
}

/**
 * BDAT <size> [LAST]. The reply comes after the chunk is read: 250 with the octets taken, the
 * queue id at LAST, or the refusal of the message; after a refusal the transaction's later
 * chunks are read and answered with the same refusal until LAST or RSET.
 */
export async function bdat(conn: Connection, line: Buffer): Promise<void> {
  const m = BDAT_LINE.exec(line.toString('latin1'));
  const settings = conn.state.settings;
  // Without a size we cannot tell where the chunk ends, so nothing after it can be read as a
  // command: answer and close.
  if (!m) return conn.hangUp(reply(501, '5.5.4 Syntax: BDAT <chunk-size> [LAST]'), 'bdat_syntax');
  const size = Number(m[1]);
  const last = !!m[2];
  // One chunk over the limit on its own: reading it through to stay in step would mean taking
  // more than we ever accept; the client is told why and the connection closes.
  if (size > settings.maxMessageSize) return conn.hangUp(fromError(new MessageTooBigError()), 'size');

  const state = conn.state;
  const tx = state.tx;
  const refuse = (r: ReturnType<typeof reply>) => drain(conn, size).then((ok) => (ok ? conn.protocolError(r) : undefined));
  if (!state.helo) return refuse(PROTOCOL.heloFirst);
  if (!tx) return refuse(PROTOCOL.needMail);
  if (!tx.recipients.length) return refuse(PROTOCOL.needRcpt);
  if (tx.transfer === 'DATA') return refuse(fromError(new BadSequenceError('BDAT after DATA in one transaction')));
  if (tx.resume) return refuse(fromError(new ResumeNeedsDataError()));

  if (tx.failed) {
    // A refused message: its later chunks are thrown away, and answered as the first was.
    if (!(await drain(conn, size))) return;
    conn.send(fromError(tx.failed.error), tx.failed.reason);
    if (last) state.tx = null;
    return;
  }
  let msg = conn.message;
  if (!msg) {
    tx.transfer = 'BDAT';
    msg = await IncomingMessage.open(conn.host.spool, state, tx);
    conn.message = msg;
    conn.startDataClock();
  }
  let left = size;
  while (left > 0) {
    const piece = await conn.input.some(Math.min(PIECE, left), conn.beforeWait);
    if (!piece) return; // the client left or data_timeout: the connection aborts the message
    left -= piece.length;
    await msg.push(piece);
  }
  const failed = msg.failure;
  if (failed) {
    // Counted octets leave no doubt where the chunk ended: refused, but no reason to hang up.
    await msg.finish();
    tx.failed = { ...failed, hangUp: false };
    conn.send(fromError(failed.error), failed.reason);
    conn.messageAnswered();
    if (last) state.tx = null;
    return;
  }
  if (!last) return conn.send(reply(250, `2.0.0 ${size} octets received`));
  await answer(conn, await msg.finish(), false);
}

/** Read and forget `size` octets; false when the input ended first. */
async function drain(conn: Connection, size: number): Promise<boolean> {
  let left = size;
  while (left > 0) {
    const piece = await conn.input.some(Math.min(PIECE, left), conn.beforeWait);
    if (!piece) return false;
    left -= piece.length;
  }
  return true;
}

/** The reply to a whole message (end of DATA, or BDAT LAST); the transaction is over. */
async function answer(conn: Connection, outcome: MessageOutcome, dataCommand: boolean): Promise<void> {
  const state = conn.state;
  state.tx = null;
  if (outcome.ok) {
    conn.host.log.info(
      {
        event: 'smtpd.queued',
        queueId: outcome.id,
        client: state.remoteAddress,
        sender: outcome.sender,
        recipients: outcome.recipients,
        size: outcome.size,
        tls: !!state.tls,
        ...(dataCommand ? {} : { chunking: true }),
        ...(outcome.normalized ? { normalizedLineEndings: outcome.normalized } : {}),
      },
      'queued',
    );
    countAccepted();
    conn.host.onQueued?.(outcome.id);
    conn.send(reply(250, `2.0.0 Ok: queued as ${outcome.id}`));
  } else if (outcome.hangUp && dataCommand) {
    // After a bare CR/LF or NUL what the client pipelined behind the message may be a smuggled
    // one: answer, then hang up before reading any of it.
    conn.hangUp(fromError(outcome.error), outcome.reason);
  } else {
    conn.send(fromError(outcome.error), outcome.reason);
  }
  conn.resetErrors();
  conn.messageAnswered();
}
