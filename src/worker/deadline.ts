/**
 * worker.transform_timeout: a deadline around one message's processing. What it can end is an
 * async stall — a directory look-up that never answers, a stream that never ends, a key server
 * that accepts and then says nothing: the attempt is abandoned (its result, if it ever comes, is
 * dropped), the message is deferred, and the worker's slot serves the next message. What it cannot
 * end is a synchronous loop: no timer fires while JavaScript runs in this thread; that case is
 * the supervisor's watchdog (supervisor/watchdog.ts), which restarts a worker whose event loop has
 * not answered for the same time, and the spool's crash marks (poison.ts) then hold the message.
 *
 * Why not run each transform in a worker_thread with resourceLimits instead (which could end
 * both)? Measured here (2 cores shared, load ~9): starting a thread took 170–245 ms and 8 MB of
 * RSS; a pool avoids that, but every message and result is copied across — a 4 KB round trip
 * 0.1 ms, a 10 MB one 120–190 ms — and the prepared keys, the keystore connection and the caches
 * would have to live in every thread, against a pass-through budget of ~2 ms of worker CPU per
 * message. The watchdog's heartbeat is one IPC message a second (~45 µs each).
 */
import { PosternError } from '../core/index.js';

/** The message took longer than worker.transform_timeout: temporary (451 4.3.0: tried again later). */
export class TransformTimeoutError extends PosternError {
  constructor(readonly ms: number) {
    super({ code: 451, status: '4.3.0', text: `processing took longer than worker.transform_timeout (${ms / 1000} s); the message is deferred` });
  }
}

/** `work`, or TransformTimeoutError once `ms` passed first. The timer never outlives the race. */
export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransformTimeoutError(ms)), ms);
  });
  // The abandoned attempt may still fail later: that rejection is expected and goes nowhere.
  work.catch(() => undefined);
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
