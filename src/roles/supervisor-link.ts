/**
 * A role's questions to its supervisor over the IPC channel (protocol.ts 'request' and 'reply'):
 * for the admin role the status of every role process, a reload of the whole gateway as SIGHUP
 * does, and the metrics and recent log lines of the other processes (the supervisor gathers
 * them); for smtpd an ETRN, which moves deferred/ entries it has no right to touch itself.
 * A question not answered in time is an error, not a hang: the supervisor may be busy stopping.
 */
import type { ProcessSnapshot, RoleStatus, SupervisorLink } from '../admin/index.js';
import type { LogQuery, LogRecord, MetricsSnapshot } from '../log/index.js';
import type { CollectedFrom, RoleMessage, SupervisorMessage, SupervisorRequest } from '../supervisor/index.js';

export class SupervisorUnavailable extends Error {
  override readonly name = 'SupervisorUnavailable';
}

/** The supervisor waits about a second for the roles; this is its answer's margin on top. */
const COLLECT_WAIT_MS = 5_000;

export function supervisorLink(
  send: ((m: RoleMessage) => void) | undefined,
): SupervisorLink & { metrics(): Promise<ProcessSnapshot[]>; etrn(pattern: string): Promise<string[]>; close(): void } {
  let next = 1;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  const onMessage = (m: SupervisorMessage) => {
    if (m?.type !== 'reply') return;
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    clearTimeout(w.timer);
    if (m.ok) w.resolve(m.data);
    else w.reject(new SupervisorUnavailable(m.error ?? 'the supervisor refused'));
  };
  process.on('message', onMessage);
  const ask = <T>(what: SupervisorRequest, timeoutMs: number, query?: LogQuery, pattern?: string) =>
    new Promise<T>((resolve, reject) => {
      if (!send || !process.connected) return reject(new SupervisorUnavailable('not running under the supervisor (postern start)'));
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new SupervisorUnavailable(`the supervisor did not answer ${what} in ${timeoutMs / 1000} s`));
      }, timeoutMs);
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      send({ type: 'request', id, what, ...(query ? { query } : {}), ...(pattern !== undefined ? { pattern } : {}) });
    });
  return {
    status: () => ask<RoleStatus[]>('status', 5_000),
    reload: () => ask<boolean>('reload', 60_000),
    metrics: async () => (await ask<CollectedFrom[]>('metrics', COLLECT_WAIT_MS)).map((c) => ({ ...c, data: c.data as MetricsSnapshot })),
    logs: async (query) => (await ask<CollectedFrom[]>('logs', COLLECT_WAIT_MS, query)).map((c) => c.data as LogRecord[]),
    // smtpd's ETRN: the entries the supervisor moved from deferred/ back to outgoing/.
    etrn: (pattern) => ask<string[]>('etrn', 30_000, undefined, pattern),
    close: () => {
      process.off('message', onMessage);
      for (const w of waiting.values()) {
        clearTimeout(w.timer);
        w.reject(new SupervisorUnavailable('the role is stopping'));
      }
      waiting.clear();
    },
  };
}
