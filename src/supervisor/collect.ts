/**
 * The supervisor's half of gathering metrics and recent log lines across roles: a 'collect' to
 * every live role process, their 'collected' answers matched by id, and after at most `timeoutMs`
 * whatever arrived — a role that is busy or dying must not make the admin's scrape hang, and
 * never holds up mail (the question and the answers are one IPC message each per process).
 */
import type { ChildProcess } from 'node:child_process';
import type { Collectable, CollectedFrom, RoleMessage, RoleName, SupervisorMessage } from './protocol.js';
import type { LogQuery } from '../log/index.js';

export const COLLECT_TIMEOUT_MS = 1000;

export interface CollectTarget {
  role: RoleName;
  index: number;
  child: ChildProcess;
}

interface Pending {
  expect: Map<ChildProcess, CollectTarget>;
  got: CollectedFrom[];
  finish: () => void;
}

export class Collector {
  private next = 1;
  private readonly pending = new Map<number, Pending>();

  /** Ask each target; resolves with the answers that came within `timeoutMs`. */
  collect(targets: readonly CollectTarget[], what: Collectable, query: LogQuery | undefined, timeoutMs = COLLECT_TIMEOUT_MS): Promise<CollectedFrom[]> {
    const live = targets.filter((t) => t.child.connected);
    if (live.length === 0) return Promise.resolve([]);
    const id = this.next++;
    return new Promise((resolve) => {
      const p: Pending = {
        expect: new Map(live.map((t) => [t.child, t])),
        got: [],
        finish: () => {
          clearTimeout(timer);
          this.pending.delete(id);
          resolve(p.got);
        },
      };
      const timer = setTimeout(p.finish, timeoutMs);
      timer.unref();
      this.pending.set(id, p);
      const m: SupervisorMessage = { type: 'collect', id, what, ...(query ? { query } : {}) };
      for (const t of live) {
        t.child.send(m, (err) => {
          // Gone between the look and the send: nothing will come from it.
          if (err) this.drop(id, t.child);
        });
      }
    });
  }

  /** A role's message; true when it was an answer to a collect. */
  answer(from: ChildProcess, m: RoleMessage): boolean {
    if (m?.type !== 'collected') return false;
    const p = this.pending.get(m.id);
    const t = p?.expect.get(from);
    if (!p || !t) return true;
    p.expect.delete(from);
    if (m.error === undefined) p.got.push({ role: t.role, index: t.index, pid: from.pid ?? 0, data: m.data });
    if (p.expect.size === 0) p.finish();
    return true;
  }

  /** A process exited: stop waiting for it. */
  drop(id: number | null, child: ChildProcess): void {
    for (const [pid, p] of this.pending) {
      if (id !== null && pid !== id) continue;
      if (p.expect.delete(child) && p.expect.size === 0) p.finish();
    }
  }
}
