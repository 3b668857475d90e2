/**
 * A directory scan on demand, at most once per interval and never two at once. Listing a queue
 * directory costs O(entries); under load a scan per event (every file created or removed) makes
 * the work per message grow with the backlog. New entries are announced by the roles over IPC,
 * so scans are only the safety net (start-up, a restarted peer, missed notifications).
 */
export interface Throttled {
  /** Run soon: now if the last run was long enough ago, else when the interval has passed. */
  request(): void;
  cancel(): void;
}

export function throttle(run: () => Promise<void>, minIntervalMs: number): Throttled {
  let last = -Infinity;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  let cancelled = false;

  const start = () => {
    timer = undefined;
    if (cancelled) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    last = Date.now();
    run()
      .catch(() => undefined) // the callee logs its own failures
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          request();
        }
      });
  };

  function request(): void {
    if (cancelled || timer) return;
    if (running) {
      again = true;
      return;
    }
    const wait = Math.max(0, last + minIntervalMs - Date.now());
    timer = setTimeout(start, wait);
  }

  return {
    request,
    cancel() {
      cancelled = true;
      if (timer) clearTimeout(timer);
    },
  };
}
