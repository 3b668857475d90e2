/**
 * Opening a role's store at start (worker, admin, portal): a cluster database that cannot be
 * reached now (PostgreSQL down or failing over) is not a broken gateway. The role exits to be
 * started again with back-off, while smtpd keeps taking mail into the spool; anything else (a
 * wrong password, a KEK mismatch) stays fatal. Imports only the KEK-free sql/types.js, so the
 * portal may use it too.
 */
import { isStoreUnavailable } from '../keystore/sql/types.js';
import { StartLater } from './run.js';

export async function openStoreOrLater<T>(open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    if (isStoreUnavailable(err)) throw new StartLater(`the store cannot be reached: ${(err as Error).message}`, { cause: err });
    throw err;
  }
}
