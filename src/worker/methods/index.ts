/**
 * The registry of protection methods the worker iterates. Order matters where a choice is open:
 * for opening, the outermost layer's method goes first and the others follow; for facts, every
 * method is asked. A new method (PDF mail, webmail) is one module implementing `Method` and one
 * line here.
 */
import { pgp } from './pgp.js';
import { smime } from './smime.js';
import type { Method, MethodId } from './types.js';

export const METHODS: readonly Method[] = [smime, pgp];

const byId = new Map<MethodId, Method>(METHODS.map((m) => [m.id, m]));

export function methodOf(id: MethodId): Method {
  const m = byId.get(id);
  if (!m) throw new Error(`no such protection method: ${id}`);
  return m;
}

export type { KeyRecords, Method, MethodId, OpenChoice, OpenStep, Opened, SealInput, SealResult, TransformContext } from './types.js';
