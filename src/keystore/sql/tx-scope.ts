/**
 * Which transaction the running code is in, for one store: how a store's queries deep inside a
 * transaction body find the transaction's connection without passing it along.
 *
 * Node 20's AsyncLocalStorage, once run, stays in a process-wide list until it is disabled, and
 * while that list is not empty every promise the process creates walks all of it (an async_hooks
 * init hook). Stores that never let go made promise-heavy code (the streaming MIME readers, the
 * OpenPGP streams) slower for the rest of the process: a loop over an async generator ran 5× slower
 * with one store that had had a transaction and 250× with a hundred (the unit files open hundreds;
 * the MIME corpus tests after them ran 20× slower). So the storage is enabled only while one of the
 * store's transactions runs.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export class TransactionScope<T> {
  private readonly storage = new AsyncLocalStorage<T>();
  /** Transactions of this store under way (PostgreSQL runs several at once, one per pooled connection). */
  private running = 0;

  /** The value of the transaction the caller runs in, if any. */
  current(): T | undefined {
    return this.running > 0 ? this.storage.getStore() : undefined;
  }

  /** `body` and everything it starts, awaited or not, sees `value` as current() while the transaction runs. */
  async run<R>(value: T, body: () => Promise<R>): Promise<R> {
    this.running++;
    try {
      return await this.storage.run(value, body);
    } finally {
      // Work a body left running (not awaited) sees no transaction afterwards, as it should: the
      // transaction it was started in is over.
      if (--this.running === 0) this.storage.disable();
    }
  }
}
