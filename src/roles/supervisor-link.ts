/**
 * The admin role's questions to its supervisor over the IPC channel (protocol.ts 'request' and
 * 'reply'): the status of every role process, and a reload of the whole gateway as SIGHUP does.
 * A question not answered in time is an error, not a hang: the supervisor may be busy stopping.
 */
import type { RoleStatus, SupervisorLink } from '../admin/index.js';
import type { RoleMessage, SupervisorMessage } from '../supervisor/index.js';

export class SupervisorUnavailable extends Error {
  override readonly name = 'SupervisorUnavailable';
}

export function supervisorLink(send: ((m: RoleMessage) => void) | undefined): SupervisorLink & { close(): void } {
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
  const ask = <T>(what: 'status' | 'reload', timeoutMs: number) =>
    new Promise<T>((resolve, reject) => {
      if (!send || !process.connected) return reject(new SupervisorUnavailable('not running under the supervisor (postern start)'));
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new SupervisorUnavailable(`the supervisor did not answer ${what} in ${timeoutMs / 1000} s`));
      }, timeoutMs);
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      send({ type: 'request', id, what });
    });
  return {
    status: () => ask<RoleStatus[]>('status', 5_000),
    reload: () => ask<boolean>('reload', 60_000),
    close: () => {
      process.off('message', onMessage);
      for (const w of waiting.values()) {
        clearTimeout(w.timer);
        w.reject(new SupervisorUnavailable('the admin role is stopping'));
      }
      waiting.clear();
    },
  };
}
