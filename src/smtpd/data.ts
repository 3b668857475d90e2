/**
 * The DATA phase: stream the message into a spool writer (never the whole message in memory),
 * with our Received header in front, while checking size and line endings. The writer is created
 * when DATA starts so the queue id is known for the header; on any failure it is aborted, so
 * nothing of a refused or interrupted message is left in incoming/ or tmp/.
 */
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { BareNewlineError, LocalError, MessageTooBigError, NulByteError, PosternError, SmtpTimeLimitError, SpoolWriteError } from '../core/index.js';
import type { IncomingWriter, Spool } from '../spool/index.js';
import { LineEndingScanner } from './bare-newline.js';
import { buildEnvelope } from './envelope.js';
import { receivedHeader } from './received.js';
import type { SessionState } from './session.js';

export type DataOutcome =
  | { ok: true; id: string; size: number; recipients: number; sender: string; normalized: number }
  | {
      ok: false;
      error: PosternError;
      /** For the log: size, bare CR, bare LF, NUL, spool, disconnect, data_timeout, local. */
      reason: string;
      /** The client's idea of where DATA ended may differ from ours: close the connection. */
      hangUp: boolean;
    };

/** Wait for the disk after this many bytes, so a fast client cannot fill memory. */
const DRAIN_EVERY = 1 << 20;

type Failure = Extract<DataOutcome, { ok: false }>;

export async function receiveMessage(spool: Spool, stream: SMTPServerDataStream, session: SMTPServerSession, state: SessionState): Promise<DataOutcome> {
  const now = new Date();
  const envelope = buildEnvelope(session, state, now);
  const settings = state.settings;
  const scanner = new LineEndingScanner(settings.bareNewline === 'normalize_trusted' && state.trusted);
  let writer: IncomingWriter | null = null;
  let failure: Failure | null = null;
  let aborting: Promise<void> = Promise.resolve();
  let received = 0;
  // smtp.data_timeout: the whole message, however slowly it trickles in (idle_timeout is per
  // read). Ending the stream ends the loop below; the caller answers 421 and hangs up.
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    stream.destroy();
  }, settings.dataTimeout);

  const fail = (f: Failure): void => {
    if (failure) return;
    failure = f;
    if (writer) {
      aborting = writer.abort().catch(() => undefined);
      writer = null;
    }
  };

  try {
    writer = await spool.createIncoming(envelope);
    writer.write(
      receivedHeader({
        helo: session.hostNameAppearsAs || '',
        clientName: session.clientHostname && !session.clientHostname.startsWith('[') ? session.clientHostname : null,
        clientIp: session.remoteAddress,
        hostname: settings.hostname,
        protocol: envelope.client.protocol,
        queueId: writer.id,
        tls: state.tls,
        recipient: envelope.recipients.length === 1 ? envelope.recipients[0]!.address : undefined,
        utf8: envelope.smtputf8 === true,
        date: now,
      }),
    );
  } catch (err) {
    // Keep reading: the client is sending the message anyway, and gets 451 at the end.
    fail({ ok: false, error: asPosternError(err, true), reason: 'spool', hangUp: false });
  }

  try {
    let sinceDrain = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (failure) continue; // drain the rest of the message, store nothing
      if (received > settings.maxMessageSize) {
        fail({ ok: false, error: new MessageTooBigError(), reason: 'size', hangUp: false });
        continue;
      }
      const out = scanner.push(chunk);
      if (!out) {
        fail(byteFailure(scanner));
        continue;
      }
      writer!.write(out);
      sinceDrain += out.length;
      if (sinceDrain >= DRAIN_EVERY) {
        sinceDrain = 0;
        await writer!.drain();
      }
    }
  } catch (err) {
    if (timedOut) {
      // Wins over an earlier refusal (size, …): the stream is gone, so must the connection be.
      failure = null;
      fail({ ok: false, error: new SmtpTimeLimitError(settings.hostname, 'DATA'), reason: 'data_timeout', hangUp: true });
    } else {
      // The stream errors when the client goes away in the middle of DATA.
      const code = (err as NodeJS.ErrnoException).code;
      const gone = code === 'ECONNECTION' || code === 'ERR_STREAM_PREMATURE_CLOSE';
      fail({ ok: false, error: new LocalError(err), reason: gone ? 'disconnect' : 'local', hangUp: true });
    }
  } finally {
    clearTimeout(deadline);
  }

  if (!failure) {
    const tail = scanner.end();
    if (!tail) fail(byteFailure(scanner));
    else if (tail.length) writer!.write(tail);
  }
  const failed = failure as Failure | null;
  if (failed) {
    await aborting;
    return failed;
  }
  try {
    const id = await writer!.commit();
    return { ok: true, id, size: received, recipients: envelope.recipients.length, sender: envelope.sender, normalized: scanner.normalized };
  } catch (err) {
    return { ok: false, error: asPosternError(err, true), reason: 'spool', hangUp: false };
  }
}

function byteFailure(scanner: LineEndingScanner): Failure {
  const v = scanner.violation ?? 'bare LF';
  const error = v === 'NUL' ? new NulByteError() : new BareNewlineError();
  return { ok: false, error, reason: v, hangUp: true };
}

function asPosternError(err: unknown, spool: boolean): PosternError {
  if (err instanceof PosternError) return err;
  return spool ? new SpoolWriteError(err) : new LocalError(err);
}
