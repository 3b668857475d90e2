/**
 * The registry of protection methods the worker iterates. Order matters where a choice is open:
 * for opening, the outermost layer's method goes first and the others follow; for facts, every
 * method is asked. A new method is one module implementing `Method` and one line here.
 */
import { pdf } from './pdf.js';
import { pgp } from './pgp.js';
import { smime } from './smime.js';
import { webmail } from './webmail.js';
import type { CryptoMethod, CryptoMethodId, Method, MethodId } from './types.js';

/** The methods whose crypto travels in mail: asked to recognise, open and sign. */
export const CRYPTO_METHODS: readonly CryptoMethod[] = [smime, pgp];
/** Every method a recipient's copy can be protected with. */
export const METHODS: readonly Method[] = [...CRYPTO_METHODS, pdf, webmail];

const byId = new Map<MethodId, Method>(METHODS.map((m) => [m.id, m]));
const cryptoById = new Map<CryptoMethodId, CryptoMethod>(CRYPTO_METHODS.map((m) => [m.id, m]));

export function methodOf(id: MethodId): Method {
  const m = byId.get(id);
  if (!m) throw new Error(`no such protection method: ${id}`);
  return m;
}

export function cryptoMethodOf(id: CryptoMethodId): CryptoMethod {
  const m = cryptoById.get(id);
  if (!m) throw new Error(`no such crypto method: ${id}`);
  return m;
}

export type { CryptoMethod, CryptoMethodId, KeyRecords, Method, MethodId, SideNotice, OpenChoice, OpenStep, Opened, SealInput, SealResult, TransformContext } from './types.js';
