/**
 * The watchdog over worker processes: a worker says it is alive over IPC every second or so
 * (roles/worker.ts); one that has said nothing for worker.transform_timeout is stuck in something
 * no timer inside it can interrupt — a synchronous loop a hostile message found, a regular
 * expression that backtracks without end — and is killed (SIGKILL: SIGTERM would wait for the very
 * loop that is stuck). The supervisor's exit handling does the rest as for any crash: the claims
 * of the dead worker go back to incoming/ with a crash mark, the worker is started again and
 * serves the other messages, and the message that was alone in it when it died three times is
 * held (worker/poison.ts). An async stall is the worker's own deadline's (worker/deadline.ts).
 *
 * A worker is watched only from its first heartbeat on, so start-up (module loading, unsealing
 * the keys) never counts.
 */

/** How often a worker says it is alive: often enough for a short transform_timeout, at most 1/s. */
export function heartbeatInterval(transformTimeoutMs: number): number {
  return Math.max(50, Math.min(1000, Math.floor(transformTimeoutMs / 4)));
}

export interface Watched {
  /** When the process last said it was alive (ms since epoch); 0: not yet, not watched. */
  lastBeat: number;
}

/** The watched processes silent for longer than `timeoutMs` at `now`. */
export function silentFor<T extends Watched>(watched: readonly T[], timeoutMs: number, now = Date.now()): T[] {
  return watched.filter((w) => w.lastBeat > 0 && now - w.lastBeat > timeoutMs);
}
