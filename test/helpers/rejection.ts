import { expect } from 'vitest';

/** The error a promise rejects with, checked to be an instance of `type` (fails if it resolves). */
export async function rejection<E extends Error>(p: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  const outcome = await p.then(
    () => ({ resolved: true as const }),
    (err: unknown) => ({ resolved: false as const, err }),
  );
  if (outcome.resolved) throw new Error(`expected a ${type.name}, but the promise resolved`);
  expect(outcome.err).toBeInstanceOf(type);
  return outcome.err as E;
}
